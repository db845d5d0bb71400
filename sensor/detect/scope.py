"""What the correlator judges: which addresses are scan targets (unicast, inside ``local_nets``, not a
network's broadcast address) and which sources an allowlist entry authorizes at a given time."""

from __future__ import annotations

import ipaddress

from sensor.config import DetectionConfig
from sensor.observations import IPAddress

MEMO_SIZE = 1 << 18
"""Target verdicts remembered; the memo is cleared when it grows past this."""
_LIMITED_BROADCAST = ipaddress.IPv4Address("255.255.255.255")


class Scope:
    """The site's scope, from the detection configuration."""

    __slots__ = ("_config", "memo")

    def __init__(self, config: DetectionConfig) -> None:
        self._config = config
        self.memo: dict[int, bool] = {}
        """Verdicts of :meth:`is_target` by the address's key (read directly by the correlator's hot path)."""

    def is_target(self, address: IPAddress, key: int) -> bool:
        """True for a unicast address inside ``local_nets`` (not its broadcast address); remembered by its
        key (:func:`~sensor.observations.address_key`)."""
        verdict = False
        if not (address.is_multicast or address.is_unspecified or address == _LIMITED_BROADCAST):
            for network in self._config.local_nets:
                if address in network:
                    verdict = network.prefixlen >= network.max_prefixlen - 1 or address != network.broadcast_address
                    break
        if len(self.memo) >= MEMO_SIZE:
            self.memo.clear()
        self.memo[key] = verdict
        return verdict

    def authorization(self, source: IPAddress, port: int | None, ts: float) -> str | None:
        """The reason of the first allowlist entry that covers ``source`` (and ``port``) at ``ts``, if any."""
        for entry in self._config.allowlist:
            if entry.covers(source, port, ts):
                return entry.reason
        return None
