"""Every source's track, live and dormant: the one for a piece of evidence (made when need be), the close of
an incident whose scanner came back after ``idle_timeout``, eviction past ``max_sources``, and expiry.

A live track is kept least recently active first; one idle for ``idle_timeout`` is forgotten, or, when its
failed contacts still count for the slow rules, sleeps among the dormant tracks for the long window and is
revived by its source's next evidence. Pure state: times are the evidence's and the watermark, passed in;
no rule lives here (:mod:`sensor.detect.scans`), nor what an incident reports (:mod:`sensor.detect.lifecycle`).
"""

from __future__ import annotations

from collections import OrderedDict

from sensor.alerts.alert import Alert
from sensor.config import DetectionConfig
from sensor.detect import scans
from sensor.detect.evidence import Track
from sensor.detect.lifecycle import Incidents, Key
from sensor.observations import IPAddress


class Tracks:
    """The live and dormant tracks of one correlator."""

    def __init__(self, config: DetectionConfig, incidents: Incidents, live: OrderedDict[Key, Track]) -> None:
        self._config = config
        self._incidents = incidents
        self.live = live
        """Tracks by key, least recently active first (read directly by the correlator's batch path)."""
        self.dormant: OrderedDict[Key, Track] = OrderedDict()
        """Idle tracks without an incident whose failed contacts still count for slow scans, oldest first."""

    def __len__(self) -> int:
        return len(self.live) + len(self.dormant)

    def keyed(self, key: Key, source: IPAddress | None, seen_as: IPAddress | None, ts: float,
              now: float) -> tuple[Track, list[Alert]]:
        """The track of ``key`` for evidence at ``ts``, made if need be (of ``source``, or of the key's address
        when that is None: most tracks never need it); ``seen_as`` is the address the evidence came from. When
        ``ts`` comes more than ``idle_timeout`` after the last activity of a track with an incident, that
        incident is closed; failed contacts stay for the long window (revived from the dormant tracks once
        idle), so a slow scanner's next incident starts from everything it did. A record read long after the
        clock passed it is judged with the state of its own time."""
        tracks = self.live
        track = tracks.get(key)
        alerts: list[Alert] = []
        if track is None and key in self.dormant:
            track = tracks[key] = self.dormant.pop(key)
        if track is not None and ts > track.last_seen + self._config.idle_timeout and self._incidents.is_open(key):
            alerts = self._incidents.close(track, now)
            if self._keeps(track):
                track.evidence().reopen()
            else:
                del tracks[key]
                track = None
        if track is None:
            if len(tracks) >= self._config.max_sources:
                alerts += self._evict(now)
            track = tracks[key] = Track(source, None if isinstance(key, int) else key[1], key, ts)
            if seen_as is not None and seen_as != source:
                track.also(seen_as)
            return track, alerts
        tracks.move_to_end(key)
        if track.detail is not None:
            self._incidents.touched(key)
        track.seen(ts)
        if seen_as is not None and seen_as != source:
            track.also(seen_as)
        return track, alerts

    def expire(self, now: float) -> list[Alert]:
        """Close and forget the tracks idle for ``idle_timeout`` at ``now`` (those whose failed contacts still
        count fall dormant), and forget the dormant ones older than the long window."""
        alerts: list[Alert] = []
        cutoff = now - self._config.idle_timeout
        tracks = self.live
        while tracks:
            key, track = next(iter(tracks.items()))
            if track.last_seen >= cutoff:
                break
            del tracks[key]
            alerts.extend(self._incidents.close(track, now))
            if self._keeps(track):
                track.evidence().reopen()
                self._sleep(key, track)
        slow_cutoff = now - self._config.slow_window
        while self.dormant and next(iter(self.dormant.values())).last_seen < slow_cutoff:
            self.dormant.popitem(last=False)
        return alerts

    def prune(self, now: float) -> None:
        """Forget the live tracks' failed contacts older than the long window at ``now``."""
        slow_cutoff = now - self._config.slow_window
        for track in self.live.values():
            if track.detail is not None and track.detail.failed_pairs:
                scans.prune_failed(track.detail, slow_cutoff)

    def close_all(self, now: float) -> list[Alert]:
        """Close every open incident and forget every track."""
        alerts: list[Alert] = []
        for track in self.live.values():
            alerts.extend(self._incidents.close(track, now))
        self.live.clear()
        self.dormant.clear()
        return alerts

    @staticmethod
    def _keeps(track: Track) -> bool:
        """True for a track whose failed contacts must outlive its quiet spell (they count for slow scans)."""
        return track.detail is not None and track.detail.failed_pairs > 0

    def _sleep(self, key: Key, track: Track) -> None:
        """Keep an idle track's failed contacts for the long window (bounded like the live tracks)."""
        if len(self.dormant) >= self._config.max_sources:
            self.dormant.popitem(last=False)
        self.dormant[key] = track

    def _evict(self, now: float) -> list[Alert]:
        _, track = self.live.popitem(last=False)
        self._incidents.stats.evicted_sources += 1
        return self._incidents.close(track, now)
