"""Sources that send the same probe at the same moment: the decoys of ``nmap -D``, which sends every probe
from each decoy address and from the scanner's own, microseconds apart. A source that keeps probing the
services another source probes at the same moments cannot be told from that source's decoy (or it from
its): both incidents say so (``lockstep`` among the reasons their source address is unproven).

Pure and bounded: the latest unproven probe of each service is remembered, for :data:`MAX_SERVICES`
services at the most, the least recently probed forgotten first.
"""

from __future__ import annotations

from collections import OrderedDict

from sensor.detect.lifecycle import Key

LOCKSTEP_SECONDS = 0.5
"""Seconds between two sources' probes of one service that make them one probe sent from two addresses."""
LOCKSTEP_PARTNERS = 8
"""Other sources counted per source, at the most."""
MAX_SERVICES = 65536


class Lockstep:
    """The latest unproven probe of each service, and who sent it."""

    __slots__ = ("_latest",)

    def __init__(self) -> None:
        self._latest: OrderedDict[int, tuple[Key, float]] = OrderedDict()
        """Service key (:func:`~sensor.observations.service_key`) to (track key, time) of its latest probe."""

    def probed(self, service: int, source: Key, ts: float) -> Key | None:
        """``source`` probed ``service`` at ``ts``: the other source that probed it within
        :data:`LOCKSTEP_SECONDS` just before, if any."""
        latest = self._latest
        previous = latest.get(service)
        latest[service] = (source, ts)
        latest.move_to_end(service)
        if len(latest) > MAX_SERVICES:
            latest.popitem(last=False)
        if previous is None or previous[0] == source or abs(ts - previous[1]) > LOCKSTEP_SECONDS:
            return None
        return previous[0]
