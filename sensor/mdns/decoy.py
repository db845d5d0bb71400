"""Bonjour decoys: bait services advertised over mDNS with zeroconf, whose ports are honeyports.

Nobody has a reason to resolve ``backup-nas._smb._tcp.local`` but a host that browses for file shares and
then looks at what it found, so a lookup of a decoy (its SRV, TXT or its host's A record) is strong
evidence on its own (``T1046-MDNS-DECOY``), and a touch of its port afterwards (a honeyport hit) makes the
same incident a confirmed scanner. The decoy's SRV target is :func:`sensor.observations.decoy_host`, a host
name the detector knows too. Decoys are advertised on the IPv4 and IPv6 addresses of the watched interfaces.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from zeroconf import BadTypeInNameException, Error, IPVersion, NonUniqueNameException, ServiceInfo
from zeroconf._dns import DNSAddress
from zeroconf._protocol.outgoing import DNSOutgoing
from zeroconf.asyncio import AsyncZeroconf

from sensor.config import MdnsDecoy
from sensor.mdns.watch import interface_addresses
from sensor.observations import IPAddress, MdnsQuery, decoy_host

log = logging.getLogger(__name__)

_FLAGS_RESPONSE = 0x8400
"""QR (a response) and AA (authoritative), RFC 6762 section 18."""
_TYPE_A = 1
_TYPE_AAAA = 28
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


def address_answer(host: str, addresses: Sequence[IPAddress]) -> DNSOutgoing:
    """The multicast answer to a question for a decoy host's addresses (A and AAAA records)."""
    answer = DNSOutgoing(_FLAGS_RESPONSE)
    for address in addresses:
        kind = _TYPE_A if address.version == 4 else _TYPE_AAAA
        answer.add_answer_at_time(DNSAddress(f"{host}.", kind, _CLASS_IN_UNIQUE, _HOST_TTL, address.packed), 0)
    return answer


class DecoyAdvertiser:
    """Registers the configured decoys with one ``AsyncZeroconf`` on the watched interfaces."""

    def __init__(self, decoys: Sequence[MdnsDecoy], interfaces: Sequence[str]) -> None:
        self.decoys = tuple(decoys)
        self.interfaces = tuple(interfaces)
        self.registered: tuple[str, ...] = ()
        self._zeroconf: AsyncZeroconf | None = None
        self._addresses: list[IPAddress] = []
        self._hosts = {decoy_host(decoy.instance) for decoy in self.decoys}
        self._answered: dict[str, float] = {}

    async def start(self) -> tuple[str, ...]:
        """Advertise every decoy (probing takes about two seconds); return the names now advertised."""
        if not self.decoys:
            return ()
        addresses = interface_addresses(self.interfaces)  # IPv4 first
        v4 = [a for a in addresses if a.version == 4]
        v6 = [found[0] for name in self.interfaces  # one per interface: zeroconf joins ff02::fb by interface
              if (found := [a for a in interface_addresses([name]) if a.version == 6])]
        if not addresses:
            log.error("mdns: decoys not advertised: no address on %s", ", ".join(self.interfaces))
            return ()
        self._addresses = addresses
        version = IPVersion.All if v4 and v6 else IPVersion.V4Only if v4 else IPVersion.V6Only
        zeroconf = self._zeroconf = AsyncZeroconf(interfaces=[str(a) for a in (*v4, *v6)], ip_version=version)
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
        if self._zeroconf is None or host not in self._hosts or query.qtype.upper() not in ("A", "AAAA", "ANY"):
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
