"""What the sensor knew of a source before it scanned: when it was first seen, the services its first working
connections went to (its usual peers and ports), and how many incidents it had before -- a small bounded
profile per source, so an alert can say "first seen a minute ago" or "a known backup server that never
scanned before" (docs/detection.md, "History").

A track keeps its own (:attr:`~sensor.detect.evidence.Track.usual`, filled only while it has left no evidence,
at a working first contact: the batch path's rare branch, not every record). When a track is forgotten its
profile is kept here, at most ``max_profiles`` of them (the oldest forgotten first), and handed back to the
source's next track. Pure state; no rule lives here.
"""

from __future__ import annotations

from collections import OrderedDict

from sensor.alerts.alert import Profile
from sensor.config import DetectionConfig
from sensor.detect.evidence import Track
from sensor.observations import service_of

USUAL_CAP = 4
"""Services of a source's first working connections kept in its profile."""
SEEN_BEFORE = 60.0
"""Seconds a source must have been seen working before its first evidence to count as known (a connect scan's
first open port is no usual peer)."""
_Kept = tuple[float, int, tuple[int, ...]]
"""A forgotten track's profile: its first sighting, its incidents, its usual services (keys)."""


class Profiles:
    """The profiles of the sources whose tracks were forgotten."""

    def __init__(self, config: DetectionConfig) -> None:
        self._cap = config.max_profiles
        self._kept: OrderedDict[int, _Kept] = OrderedDict()
        self.peak = 0
        """The most profiles kept at once (what says whether ``max_profiles`` was ever reached)."""

    def __len__(self) -> int:
        return len(self._kept)

    def forget(self, track: Track) -> None:
        """``track`` is being forgotten: keep its profile (its source's earlier one merged in)."""
        if not isinstance(track.key, int):
            return
        detail = track.detail
        incidents = 0 if detail is None else detail.generation + (1 if detail.rules else 0)
        first, before, usual = track.first_seen, 0, track.usual
        if track.known is not None:
            first, before = min(first, track.known[0]), track.known[1]
            usual = (*track.known[2], *(service for service in usual if service not in track.known[2]))[:USUAL_CAP]
        kept = self._kept
        kept.pop(track.key, None)
        if len(kept) >= self._cap:
            kept.popitem(last=False)
        kept[track.key] = (first, before + incidents, usual)
        self.peak = max(self.peak, len(kept))

    def recall(self, track: Track) -> None:
        """A new track of a source seen before takes over its profile."""
        if self._kept and isinstance(track.key, int):
            track.known = self._kept.pop(track.key, None)


def profile(track: Track) -> Profile:
    """What an alert says of the scanner's history."""
    detail = track.evidence()
    first, before, usual = track.first_seen, detail.generation, track.usual
    if track.known is not None:
        first, before = min(first, track.known[0]), before + track.known[1]
        usual = (*track.known[2], *(service for service in usual if service not in track.known[2]))[:USUAL_CAP]
    seen_before = track.known is not None or (bool(track.usual) and detail.began - track.first_seen >= SEEN_BEFORE)
    return Profile(first, detail.began, seen_before, before, tuple(service_of(service) for service in usual))
