"""Bonjour decoys: bait services advertised over mDNS with zeroconf, whose ports are honeyports.

Nobody has a reason to resolve ``backup-nas._smb._tcp.local`` but a host that browses for file shares and
then looks at what it found, so a lookup of a decoy (its SRV, TXT or its host's A record) is strong
evidence on its own (``T1046-MDNS-DECOY``), and a touch of its port afterwards (a honeyport hit) makes the
same incident a confirmed scanner. The decoy's SRV target is :func:`sensor.mdnsdetect.decoy_host`, a host
name the detector knows too. Decoys are advertised on the IPv4 addresses of the watched interfaces.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from ipaddress import IPv4Address

from zeroconf import BadTypeInNameException, Error, IPVersion, NonUniqueNameException, ServiceInfo
from zeroconf.asyncio import AsyncZeroconf

from sensor.config import MdnsDecoy
from sensor.mdnsdetect import decoy_host
from sensor.mdnswatch import interface_addresses

log = logging.getLogger(__name__)


def decoy_service(decoy: MdnsDecoy, addresses: Sequence[IPv4Address]) -> ServiceInfo:
    """The zeroconf service record set of one decoy, pointing at ``addresses``."""
    service_type = f"{decoy.service_type}.local."
    return ServiceInfo(
        service_type,
        f"{decoy.instance}.{service_type}",
        port=decoy.port,
        properties={},
        server=f"{decoy_host(decoy.instance)}.",
        addresses=[address.packed for address in addresses],
    )


class DecoyAdvertiser:
    """Registers the configured decoys with one ``AsyncZeroconf`` on the watched interfaces."""

    def __init__(self, decoys: Sequence[MdnsDecoy], interfaces: Sequence[str]) -> None:
        self.decoys = tuple(decoys)
        self.interfaces = tuple(interfaces)
        self.registered: tuple[str, ...] = ()
        self._zeroconf: AsyncZeroconf | None = None

    async def start(self) -> tuple[str, ...]:
        """Advertise every decoy (probing takes about two seconds); return the names now advertised."""
        addresses = [a for a in interface_addresses(self.interfaces) if isinstance(a, IPv4Address)]
        if not self.decoys:
            return ()
        if not addresses:
            log.error("mdns: decoys not advertised: no IPv4 address on %s", ", ".join(self.interfaces))
            return ()
        zeroconf = self._zeroconf = AsyncZeroconf(interfaces=[str(a) for a in addresses],
                                                  ip_version=IPVersion.V4Only)
        registered: list[str] = []
        for decoy in self.decoys:
            try:
                info = decoy_service(decoy, addresses)
                await (await zeroconf.async_register_service(info))
            except (BadTypeInNameException, NonUniqueNameException, Error, ValueError) as error:
                log.error("mdns: decoy %s.%s not advertised: %s", decoy.instance, decoy.service_type,
                          error or type(error).__name__)
                continue
            registered.append(info.name)
            log.info("mdns: decoy %s advertised on port %d", info.name, decoy.port)
        self.registered = tuple(registered)
        return self.registered

    async def stop(self) -> None:
        """Withdraw the decoys (goodbye packets) and close zeroconf."""
        zeroconf, self._zeroconf = self._zeroconf, None
        if zeroconf is None:
            return
        await zeroconf.async_unregister_all_services()
        await zeroconf.async_close()
        self.registered = ()
