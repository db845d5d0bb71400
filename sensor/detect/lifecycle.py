"""The incident lifecycle: which updates of a scanner's incident are due, and when (docs/detection.md).

An update at once when an incident opens, when a new rule fires, when its action or evidence sources
change or a honeyport client's first bytes arrive; for growth alone (targets or ports doubled) at most one
per ``update_every``; the final extent once the scanner is quiet for ``final_update_after``; ``closed: true``
when its source expires. Open incidents are capped (``max_incidents``), the least recently active closed
first. Pure: ``now`` is the correlator's watermark, passed in.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass

from sensor.alerts.alert import Alert
from sensor.alerts.catalogue import Action
from sensor.config import DetectionConfig
from sensor.detect.evidence import Evidence, Track
from sensor.detect.incidents import action_of, incident_alert

Key = int | tuple[int, str]
"""A track's key: :func:`~sensor.observations.address_key` of its source, paired with its authorization if it
has one. A bare integer hashes and compares in C, with no tuple to build or follow on every record."""


@dataclass(slots=True)
class CorrelatorStats:
    """Counters an operator wants to see (and a flood test asserts on)."""

    observations: int = 0
    ignored: int = 0
    alerts: int = 0
    suppressed: int = 0
    evicted_sources: int = 0
    closed_incidents: int = 0
    outages: int = 0
    """Failed contacts to services seen working recently: counted apart, not as probes."""


def _kind(track: Track) -> tuple[Action, int, int]:
    """(action, rules, evidence sources): an update is due at once when one of them changes."""
    detail = track.evidence()
    return action_of(track), len(detail.rules), len(detail.sources)


class Incidents:
    """The open incidents of one correlator's tracks, and the updates they are due."""

    def __init__(self, config: DetectionConfig, stats: CorrelatorStats, tracks: OrderedDict[Key, Track]) -> None:
        self._config = config
        self.stats = stats
        self._tracks = tracks
        self._open: OrderedDict[Key, None] = OrderedDict()
        """Keys of the tracks with an open incident, least recently active first."""
        self._unsent: OrderedDict[Key, None] = OrderedDict()
        """Open incidents that grew since their last update, least recently active first."""

    @property
    def count(self) -> int:
        """Number of incidents open now."""
        return len(self._open)

    def is_open(self, key: Key) -> bool:
        """True when the track of ``key`` has an open incident."""
        return key in self._open

    def touched(self, key: Key) -> None:
        """The track of ``key`` saw new evidence: its incident is the most recently active."""
        if key in self._open:
            self._open.move_to_end(key)

    def quiet(self, before: float, now: float) -> list[Alert]:
        """The final-extent updates of incidents that grew and whose scanner has been quiet since ``before``."""
        alerts: list[Alert] = []
        while self._unsent:
            track = self._tracks[next(iter(self._unsent))]
            if track.last_seen > before:
                break
            alerts.extend(self._settle(track, now))
        return alerts

    def flush(self, now: float) -> list[Alert]:
        """An update for every open incident that grew since its last one."""
        alerts: list[Alert] = []
        for key in list(self._unsent):
            alerts.extend(self._settle(self._tracks[key], now))
        return alerts

    def update(self, track: Track, fired: list[str], now: float) -> list[Alert]:
        """Add the rules ``fired`` by new evidence of ``track``; the updates that are due at once."""
        detail = track.detail
        if detail is None:
            if not fired:
                return []
            detail = track.evidence()
        new_rules = [rule for rule in dict.fromkeys(fired) if rule not in detail.rules]
        if new_rules and not detail.rules:
            if len(self._open) >= self._config.max_incidents:
                return self._close_oldest_incident(now, track, new_rules)
            self._open[track.key] = None
            detail.incident_id = hashlib.sha256(
                f"{track.source}|{track.authorized}|{track.first_seen:.6f}"
                f"{f'|{detail.generation}' if detail.generation else ''}".encode()).hexdigest()[:24]
        for rule in new_rules:
            detail.rules[rule] = None
        if not detail.rules:
            return []
        _, payloads, targets, ports = extent = track.extent()
        _, sent_payloads, sent_targets, sent_ports = detail.alerted_extent
        if detail.alerted is None or _kind(track) != detail.alerted or payloads != sent_payloads or (
                (targets >= 2 * sent_targets or ports >= 2 * sent_ports)
                and now >= detail.alerted_at + self._config.update_every):
            return self._emit(track, now, closed=False)
        if extent != detail.alerted_extent:
            self._unsent[track.key] = None
            self._unsent.move_to_end(track.key)
        return []

    def _settle(self, track: Track, now: float) -> list[Alert]:
        """The update with the incident's extent as it stands (it grew since the last one)."""
        self._unsent.pop(track.key, None)
        if track.extent() == track.evidence().alerted_extent:
            return []
        return self._emit(track, now, closed=False)

    def _close_oldest_incident(self, now: float, track: Track, new_rules: list[str]) -> list[Alert]:
        oldest = next(iter(self._open))
        alerts = self.close(self._tracks.pop(oldest), now)
        return alerts + self.update(track, new_rules, now)

    def close(self, track: Track, now: float) -> list[Alert]:
        """The incident's last update, ``closed: true`` (nothing for a source without an incident)."""
        detail = track.detail
        if detail is None or not detail.rules:
            return []
        key = track.key
        del self._open[key]
        self._unsent.pop(key, None)
        self.stats.closed_incidents += 1
        return self._emit(track, now, closed=True)

    def _emit(self, track: Track, now: float, *, closed: bool) -> list[Alert]:
        detail: Evidence = track.evidence()
        detail.alerted_extent = track.extent()
        detail.alerted = _kind(track)
        detail.alerted_at = now
        self._unsent.pop(track.key, None)
        alert = incident_alert(track, now, self._config.sample_size, closed=closed)
        if track.authorized is not None and self._config.allowlist_mode == "suppress":
            self.stats.suppressed += 1
            return []
        self.stats.alerts += 1
        return [alert]
