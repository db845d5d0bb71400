"""Honeyport touches from many unproven sources at once: one aggregate incident, not one per address.

A UDP datagram or a half-open SYN can carry any source address, so one sender can make a honeyport see
hundreds of sources — to bury the real scanner among decoys, or to frame the network's hosts. When
``spray_sources`` distinct sources touch honeyports that way within ``spray_window`` of each other, the
further unproven touches of sources that have no evidence of their own make one incident, the aggregate
(``T1046-HONEYPORT-MANY-SOURCES``): how many sources (those that made it one among them), a sample of
them, the honeyports and ports. A source that proves itself (a completed handshake) or already had an
incident keeps its own.

Bounded: the recent unproven sources are remembered for :data:`RECENT_SOURCES` sources at the most, the
aggregate counts :data:`MAX_MEMBERS` distinct sources at the most and samples a few. Pure: times are the
touches' own.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Collection

from sensor.alerts.alert import Alert
from sensor.config import DetectionConfig
from sensor.detect.evidence import Track
from sensor.detect.tracks import Tracks
from sensor.observations import HoneyportHit, IPAddress, address_key, key_address

AGGREGATE_KEY = -1
"""The aggregate's key among the tracks: no address has it."""
RECENT_SOURCES = 4096
MAX_MEMBERS = 65536
MEMBER_SAMPLE = 32


class SourceAggregate(Track):
    """The track of the aggregate incident: its evidence is that of every touch folded into it."""

    __slots__ = ("sample", "sources")

    def __init__(self, ts: float) -> None:
        super().__init__(None, None, AGGREGATE_KEY, ts)
        self.sources: dict[int, None] = {}
        """Keys of the distinct sources folded in (up to :data:`MAX_MEMBERS`)."""
        self.sample: list[IPAddress] = []
        """The first of them (up to :data:`MEMBER_SAMPLE`)."""

    @property
    def scanner(self) -> IPAddress | None:
        """No one source: the aggregate is about many."""
        return None

    def members(self) -> tuple[Collection[int], list[IPAddress]]:
        """The sources' keys and a sample of their addresses."""
        return self.sources, self.sample

    def joined(self, source: IPAddress, key: int | None = None) -> None:
        """A touch of ``source`` (whose key is ``key``, when known) was folded in, or counts for the aggregate."""
        key = address_key(source) if key is None else key
        if key not in self.sources and len(self.sources) < MAX_MEMBERS:
            self.sources[key] = None
            if len(self.sample) < MEMBER_SAMPLE:
                self.sample.append(source)


class Spray:
    """Which unproven honeyport touches belong to the aggregate, and the aggregate's track."""

    __slots__ = ("_config", "_recent")

    def __init__(self, config: DetectionConfig) -> None:
        self._config = config
        self._recent: OrderedDict[int, float] = OrderedDict()
        """Sources of recent unproven touches (by key) at their latest, most recently touched last."""

    def joins(self, source: int, ts: float) -> bool:
        """Note an unproven touch by ``source`` at ``ts``; True when ``spray_sources`` distinct sources (this one
        among them) made such touches within ``spray_window`` of it."""
        recent = self._recent
        recent[source] = max(ts, recent.get(source, ts))
        recent.move_to_end(source)
        if len(recent) > RECENT_SOURCES:
            recent.popitem(last=False)
        needed, window = self._config.spray_sources, self._config.spray_window
        for found, when in enumerate(reversed(recent.values()), start=1):  # the latest touchers: at most `needed`
            if abs(when - ts) > window:
                return False
            if found >= needed:
                return True
        return False

    def aggregate(self, tracks: Tracks, hit: HoneyportHit, now: float) -> tuple[Track, list[Alert]]:
        """The aggregate's track, with ``hit`` folded in (made when need be, as a source's track is)."""
        track = tracks.live.get(AGGREGATE_KEY)
        alerts: list[Alert] = []
        if track is None:
            made = SourceAggregate(hit.ts)
            window = self._config.spray_window
            for key, when in self._recent.items():
                if abs(when - hit.ts) <= window:
                    made.joined(key_address(key), key)
            track, alerts = tracks.adopt(made, now)
        else:
            tracks.revisit(track, hit.ts)
        if isinstance(track, SourceAggregate):
            track.joined(hit.source)
        return track, alerts
