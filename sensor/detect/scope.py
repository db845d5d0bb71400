"""What the correlator judges: which contacts are scan contacts -- to a unicast target inside ``local_nets``
(not a network's broadcast address) from any source, or, with ``outbound_scans``, to a unicast target
outside them from a source inside them -- and which sources an allowlist entry authorizes at a given time."""

from __future__ import annotations

import ipaddress
from enum import Enum

from sensor.config import DetectionConfig
from sensor.observations import IPAddress

MEMO_SIZE = 1 << 18
"""Address verdicts remembered; the memo is cleared when it grows past this."""
_LIMITED_BROADCAST = ipaddress.IPv4Address("255.255.255.255")
NOWHERE = tuple(ipaddress.ip_network(network) for network in (
    "0.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16", "240.0.0.0/4", "::/127", "fe80::/10"))
"""Unicast-looking addresses outside ``local_nets`` that are no host on the internet either (this network,
loopback, link-local, reserved): never outbound targets (the Zeek package's ``T1046::nowhere``)."""


class Reach(Enum):
    """Where an address lies for the scope."""

    NONE = "none"
    """Never a scan target: multicast, broadcast, unspecified, :data:`NOWHERE`, or outside ``local_nets``
    while outbound scans are not judged."""
    INSIDE = "inside"
    """Unicast inside ``local_nets``: a target of every source, and an internal source."""
    OUTSIDE = "outside"
    """Unicast outside ``local_nets``: a target of internal sources only (an outbound scan)."""


class Scope:
    """The site's scope, from the detection configuration."""

    __slots__ = ("_config", "memo")

    def __init__(self, config: DetectionConfig) -> None:
        self._config = config
        self.memo: dict[int, Reach] = {}
        """Verdicts of :meth:`reach` by the address's key (read directly by the correlator's hot path)."""

    def reach(self, address: IPAddress, key: int) -> Reach:
        """Where ``address`` lies (:class:`Reach`); remembered by its key (:func:`~sensor.observations.address_key`)."""
        verdict = Reach.NONE
        if not (address.is_multicast or address.is_unspecified or address == _LIMITED_BROADCAST):
            for network in self._config.local_nets:
                if address in network:
                    inside = network.prefixlen >= network.max_prefixlen - 1 or address != network.broadcast_address
                    verdict = Reach.INSIDE if inside else Reach.NONE
                    break
            else:
                if self._config.outbound_scans and not any(address in network for network in NOWHERE):
                    verdict = Reach.OUTSIDE
        if len(self.memo) >= MEMO_SIZE:
            self.memo.clear()
        self.memo[key] = verdict
        return verdict

    def contact(self, source: IPAddress, source_key: int, target: IPAddress, target_key: int) -> Reach:
        """What a contact from ``source`` to ``target`` is: ``INSIDE`` to a target inside ``local_nets``,
        ``OUTSIDE`` an outbound one (an internal source, a target outside), ``NONE`` no scan contact."""
        reach = self.memo.get(target_key) or self.reach(target, target_key)
        if reach is Reach.OUTSIDE and (self.memo.get(source_key) or self.reach(source, source_key)) is not Reach.INSIDE:
            return Reach.NONE
        return reach

    def authorization(self, source: IPAddress, port: int | None, ts: float) -> str | None:
        """The reason of the first allowlist entry that covers ``source`` (and ``port``) at ``ts``, if any."""
        for entry in self._config.allowlist:
            if entry.covers(source, port, ts):
                return entry.reason
        return None
