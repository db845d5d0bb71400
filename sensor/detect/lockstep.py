"""Sources that send the same probe at the same moment: the decoys of ``nmap -D``, which sends every probe
from each decoy address and from the scanner's own, microseconds apart. A source that keeps probing the
services another source probes at the same moments cannot be told from that source's decoy (or it from
its): both incidents say so (``lockstep`` among the reasons their source address is unproven).

Pure and bounded: the latest unproven probe of each service is remembered, for :data:`MAX_SERVICES`
services at the most, the least recently probed forgotten first; each source counts
:data:`LOCKSTEP_PARTNERS` partners at the most.
"""

from __future__ import annotations

from collections import OrderedDict

from sensor.detect.evidence import Track
from sensor.detect.lifecycle import Key
from sensor.detect.tracks import Tracks

LOCKSTEP_SECONDS = 0.5
"""Seconds between two sources' probes of one service that make them one probe sent from two addresses."""
LOCKSTEP_PARTNERS = 8
"""Other sources counted per source, at the most."""
MAX_SERVICES = 65536


def _address_key(key: Key) -> int:
    return key if isinstance(key, int) else key[0]


class Probes:
    """The latest unproven probe of each service, and who sent it."""

    __slots__ = ("_latest",)

    def __init__(self) -> None:
        self._latest: OrderedDict[int, tuple[Key, float]] = OrderedDict()
        """Service key (:func:`~sensor.observations.service_key`) to (track key, time) of its latest probe."""

    def partner(self, service: int, source: Key, ts: float) -> Key | None:
        """Note that ``source`` probed ``service`` at ``ts``; the source that probed it within
        :data:`LOCKSTEP_SECONDS` just before, if any."""
        latest = self._latest
        previous = latest.get(service)
        latest[service] = (source, ts)
        latest.move_to_end(service)
        if len(latest) > MAX_SERVICES:
            latest.popitem(last=False)
        if previous is None or abs(ts - previous[1]) > LOCKSTEP_SECONDS:
            return None
        return previous[0]


class Lockstep(Probes):
    """The latest unproven probe of each service, who sent it, and the partners it makes."""

    __slots__ = ("_tracks",)

    def __init__(self, tracks: Tracks) -> None:
        super().__init__()
        self._tracks = tracks

    def probed(self, service: int, track: Track, ts: float) -> None:
        """``track``'s source probed ``service`` at ``ts`` (a probe that proves nothing of its address): when
        another source probed it within :data:`LOCKSTEP_SECONDS` just before, each counts for the other."""
        partner = self.partner(service, track.key, ts)
        if partner is None:
            return
        own = _address_key(track.key)
        if _address_key(partner) == own:
            return
        detail = track.evidence()
        key = _address_key(partner)
        if key in detail.lockstep or len(detail.lockstep) < LOCKSTEP_PARTNERS:
            detail.lockstep[key] = detail.lockstep.get(key, 0) + 1
        self.partnered(partner, own)

    def partnered(self, partner: Key, prober: int) -> None:
        """``prober`` probed in lockstep with ``partner``: it counts for ``partner``'s track, if that has evidence."""
        other = self._tracks.live.get(partner) or self._tracks.dormant.get(partner)
        detail = None if other is None else other.detail
        if detail is not None and (prober in detail.lockstep or len(detail.lockstep) < LOCKSTEP_PARTNERS):
            detail.lockstep[prober] = detail.lockstep.get(prober, 0) + 1
