"""Every source's track, live and dormant: the one for a piece of evidence (made when need be), the close of
an incident whose evidence no longer counts, eviction past ``max_sources``, and expiry.

A live track is kept least recently active first; one idle for ``idle_timeout`` is forgotten and its incident
closed, or, when its failed contacts still count for the slow rules, sleeps among the dormant tracks for the
long window with its incident open, and is revived by its source's next evidence: one incident per scanner
while its evidence counts. Pure state: times are the evidence's and the watermark, passed in; no rule lives
here (:mod:`sensor.detect.scans`), nor what an incident reports (:mod:`sensor.detect.lifecycle`).
"""

from __future__ import annotations

from collections import OrderedDict

from sensor.alerts.alert import Alert
from sensor.config import DetectionConfig
from sensor.detect import scans
from sensor.detect.evidence import Track
from sensor.detect.history import Profiles
from sensor.detect.lifecycle import Incidents, Key
from sensor.detect.order import Bounds, Order, OrderKey
from sensor.observations import IPAddress


class Tracks:
    """The live and dormant tracks of one correlator."""

    def __init__(self, config: DetectionConfig, incidents: Incidents, live: OrderedDict[Key, Track],
                 dormant: OrderedDict[Key, Track], profiles: Profiles, order: Order) -> None:
        self._config = config
        self._order = order
        """The position of what is being judged: each track is stamped with that of its last touch."""
        self._incidents = incidents
        self._profiles = profiles
        """Where a forgotten track's history goes, and a new one's comes from."""
        self.live = live
        """Tracks by key, least recently active first (read directly by the correlator's batch path)."""
        self.dormant = dormant
        """Idle tracks whose failed contacts still count for slow scans (their incident open), oldest first."""
        self.peak = 0
        """The most live or dormant tracks kept at once (what says whether ``max_sources`` was ever reached)."""

    def __len__(self) -> int:
        return len(self.live) + len(self.dormant)

    def keyed(self, key: Key, source: IPAddress | None, seen_as: IPAddress | None, ts: float,
              now: float) -> tuple[Track, list[Alert]]:
        """The track of ``key`` for evidence at ``ts``, made if need be (of ``source``, or of the key's address
        when that is None: most tracks never need it); ``seen_as`` is the address the evidence came from. When
        ``ts`` comes after the track's evidence stopped counting (``idle_timeout`` after its last activity, or
        ``slow_window`` for one whose failed contacts count for the slow rules), its incident is closed and a
        new one starts from the failed contacts that still count. A record read long after the clock passed it
        is judged with the state of its own time."""
        tracks = self.live
        track = tracks.get(key)
        alerts: list[Alert] = []
        if track is None and key in self.dormant:
            track = tracks[key] = self.dormant.pop(key)
            self.peak = max(self.peak, len(tracks))
        if track is not None and ts > track.last_seen + self._counts_for(track) and self._incidents.is_open(key):
            alerts = self._incidents.close(track, now)
            if self._keeps(track):
                track.evidence().reopen()
            else:
                del tracks[key]
                self._profiles.forget(track)
                track = None
        if track is None:
            track, made = self.adopt(Track(source, None if isinstance(key, int) else key[1], key, ts), now)
            alerts += made
        else:
            self.revisit(track, ts)
        if seen_as is not None and seen_as != source:
            track.also(seen_as)
        return track, alerts

    def adopt(self, track: Track, now: float) -> tuple[Track, list[Alert]]:
        """Keep a new track (the least recently active one evicted first when ``max_sources`` are kept)."""
        alerts = self._evict(now) if len(self.live) >= self._config.max_sources else []
        self._profiles.recall(track)
        self.live[track.key] = track
        track.touched = self._order.at
        self.peak = max(self.peak, len(self.live))
        return track, alerts

    def revisit(self, track: Track, ts: float) -> None:
        """A live track has new evidence at ``ts``: it is the most recently active, its span and cadence move."""
        self.live.move_to_end(track.key)
        track.touched = self._order.at
        detail = track.detail
        if detail is not None:
            self._incidents.touched(track.key)
            if ts > track.last_seen:
                step = ts - track.last_seen
                detail.gap = max(step, detail.gap - step)
        track.seen(ts)

    def expiry(self, now: float) -> tuple[int | None, tuple[int, int] | None, int | None, bool]:
        """Where :meth:`expire` at ``now`` stops when these tracks are all there is: the position of the first live
        track that still counts (idle less than ``idle_timeout``), of the first dormant one that still counts (its
        sleep and its last touch), and of the first live one that would fall asleep still counting for the long
        window (:class:`~sensor.detect.order.Expiry`), and whether none of them would go whatever the bounds."""
        cutoff, slow_cutoff = now - self._config.idle_timeout, now - self._config.slow_window
        live: int | None = None
        sleeper: int | None = None
        going = False
        for track in self.live.values():
            if track.last_seen >= cutoff:
                live = track.touched
                break
            going = True
            if sleeper is None and track.last_seen >= slow_cutoff and self._keeps(track):
                sleeper = track.touched
        dormant = None
        for track in self.dormant.values():
            if track.last_seen >= slow_cutoff:
                dormant = (track.slept, track.touched)
                break
            going = True
        return live, dormant, sleeper, not going

    def expire(self, now: float, bounds: Bounds) -> list[tuple[OrderKey, Alert]]:
        """Close and forget the tracks idle for ``idle_timeout`` at ``now``, least recently active first, up to the
        first that still counts here or ``bounds.live`` (those whose failed contacts still count fall dormant,
        their incident open); then close and forget the dormant ones older than the long window, up to the first
        that still counts or ``bounds.dormant``. Each alert with its place in the order (its track's last touch;
        its sleep)."""
        alerts: list[tuple[OrderKey, Alert]] = []
        at = self._order.at
        cutoff = now - self._config.idle_timeout
        tracks = self.live
        while tracks:
            key, track = next(iter(tracks.items()))
            if track.last_seen >= cutoff or track.touched >= bounds.live:
                break
            del tracks[key]
            place: OrderKey = (at, 0, 0, track.touched)
            if self._keeps(track):
                alerts.extend((place, alert) for alert in self._sleep(key, track, now))
            else:
                alerts.extend((place, alert) for alert in self._forget(track, now))
        slow_cutoff = now - self._config.slow_window
        while self.dormant:
            track = next(iter(self.dormant.values()))
            if track.last_seen >= slow_cutoff or (track.slept, track.touched) >= bounds.dormant:
                break
            self.dormant.popitem(last=False)
            alerts.extend(((at, 0, 1, track.slept, track.touched), alert) for alert in self._forget(track, now))
        return alerts

    def _forget(self, track: Track, now: float) -> list[Alert]:
        """Close the track's incident, if any, and keep its history."""
        alerts = self._incidents.close(track, now)
        self._profiles.forget(track)
        return alerts

    def prune(self, now: float) -> None:
        """Forget the live tracks' failed contacts older than the long window at ``now``."""
        slow_cutoff = now - self._config.slow_window
        for track in self.live.values():
            if track.detail is not None and track.detail.failed_pairs:
                scans.prune_failed(track.detail, slow_cutoff)


    @staticmethod
    def _keeps(track: Track) -> bool:
        """True for a track whose failed contacts must outlive its quiet spell (they count for slow scans)."""
        return track.detail is not None and track.detail.failed_pairs > 0

    def _counts_for(self, track: Track) -> float:
        """Seconds after its last activity that a track's evidence goes on counting."""
        return self._config.slow_window if self._keeps(track) else self._config.idle_timeout

    def _sleep(self, key: Key, track: Track, now: float) -> list[Alert]:
        """Keep an idle track's failed contacts, and its incident, for the long window (bounded like the live
        tracks: the oldest dormant track is closed and forgotten first)."""
        alerts: list[Alert] = []
        if len(self.dormant) >= self._config.max_sources:
            alerts = self._forget(self.dormant.popitem(last=False)[1], now)
        self.dormant[key] = track
        track.slept = self._order.at
        self.peak = max(self.peak, len(self.dormant))
        return alerts

    def _evict(self, now: float) -> list[Alert]:
        _, track = self.live.popitem(last=False)
        self._incidents.stats.evicted_sources += 1
        return self._forget(track, now)
