"""Bonjour decoys: bait services advertised over mDNS with zeroconf, whose ports are honeyports.

Nobody has a reason to resolve ``backup-nas._smb._tcp.local`` but a host that browses for file shares and
then looks at what it found, so a lookup of a decoy (its SRV, TXT or its host's A record) is strong
evidence on its own (``T1046-MDNS-DECOY``), and a touch of its port afterwards (a honeyport hit) makes the
same incident a confirmed scanner. The decoy's SRV target is :func:`sensor.observations.decoy_host`, a host
name the detector knows too. Decoys are advertised on the IPv4 addresses of the watched interfaces.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from ipaddress import IPv4Address

from zeroconf import BadTypeInNameException, Error, IPVersion, NonUniqueNameException, ServiceInfo
from zeroconf._dns import DNSAddress
from zeroconf._protocol.outgoing import DNSOutgoing
from zeroconf.asyncio import AsyncZeroconf

from sensor.config import MdnsDecoy
from sensor.mdns.watch import interface_addresses
from sensor.observations import MdnsQuery, decoy_host

log = logging.getLogger(__name__)

_FLAGS_RESPONSE = 0x8400
"""QR (a response) and AA (authoritative), RFC 6762 section 18."""
_TYPE_A = 1
_CLASS_IN_UNIQUE = 0x8001
_HOST_TTL = 120
_ANSWER_INTERVAL = 1.0
"""Seconds between two multicast answers for one decoy host (RFC 6762 section 6)."""


def decoy_service(decoy: MdnsDecoy) -> ServiceInfo:
    """The zeroconf service record set of one decoy: PTR, SRV (to its unpublished host) and TXT."""
    service_type = f"{decoy.service_type}.local."
    return ServiceInfo(
        service_type,
        f"{decoy.instance}.{service_type}",
        port=decoy.port,
        properties={},
        server=f"{decoy_host(decoy.instance)}.",
    )


def address_answer(host: str, addresses: Sequence[IPv4Address]) -> DNSOutgoing:
    """The multicast answer to a question for a decoy host's IPv4 address."""
    answer = DNSOutgoing(_FLAGS_RESPONSE)
    for address in addresses:
        answer.add_answer_at_time(DNSAddress(f"{host}.", _TYPE_A, _CLASS_IN_UNIQUE, _HOST_TTL, address.packed), 0)
    return answer


class DecoyAdvertiser:
    """Registers the configured decoys with one ``AsyncZeroconf`` on the watched interfaces."""

    def __init__(self, decoys: Sequence[MdnsDecoy], interfaces: Sequence[str]) -> None:
        self.decoys = tuple(decoys)
        self.interfaces = tuple(interfaces)
        self.registered: tuple[str, ...] = ()
        self._zeroconf: AsyncZeroconf | None = None
        self._addresses: list[IPv4Address] = []
        self._hosts = {decoy_host(decoy.instance) for decoy in self.decoys}
        self._answered: dict[str, float] = {}

    async def start(self) -> tuple[str, ...]:
        """Advertise every decoy (probing takes about two seconds); return the names now advertised."""
        addresses = [a for a in interface_addresses(self.interfaces) if isinstance(a, IPv4Address)]
        if not self.decoys:
            return ()
        if not addresses:
            log.error("mdns: decoys not advertised: no IPv4 address on %s", ", ".join(self.interfaces))
            return ()
        self._addresses = addresses
        zeroconf = self._zeroconf = AsyncZeroconf(interfaces=[str(a) for a in addresses],
                                                  ip_version=IPVersion.V4Only)
        registered: list[str] = []
        for decoy in self.decoys:
            try:
                info = decoy_service(decoy)
                await (await zeroconf.async_register_service(info))
            except (BadTypeInNameException, NonUniqueNameException, Error, ValueError) as error:
                log.error("mdns: decoy %s.%s not advertised: %s", decoy.instance, decoy.service_type,
                          error or type(error).__name__)
                continue
            registered.append(info.name)
            log.info("mdns: decoy %s advertised on port %d", info.name, decoy.port)
        self.registered = tuple(registered)
        return self.registered

    def answer(self, query: MdnsQuery) -> None:
        """Answer a question (seen by the watcher) for the address of a decoy host; ignore anything else."""
        host = query.name.lower().rstrip(".")
        if self._zeroconf is None or host not in self._hosts or query.qtype.upper() not in ("A", "ANY"):
            return
        if query.ts - self._answered.get(host, float("-inf")) < _ANSWER_INTERVAL:
            return
        self._answered[host] = query.ts
        self._zeroconf.zeroconf.async_send(address_answer(host, self._addresses))

    async def stop(self) -> None:
        """Withdraw the decoys (goodbye packets) and close zeroconf."""
        zeroconf, self._zeroconf = self._zeroconf, None
        if zeroconf is None:
            return
        await zeroconf.async_unregister_all_services()
        await zeroconf.async_close()
        self.registered = ()
