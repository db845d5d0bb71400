"""The incident lifecycle and its update budget: which updates of a scanner's incident are due, and when
(docs/detection.md, "Incident lifecycle").

The first alert goes out when the incident opens. After it, updates coalesce: one goes out at once only
when the incident escalates (its action goes further, :data:`~sensor.detect.incidents.ACTION_RANK`, or its
severity rises past any it reported; a burst of escalations within ``escalation_every`` of the previous
update is one update, at the end of that spacing) or when its scanner starts again after its final extent
was sent; for growth alone (targets or ports doubled) at most one per ``update_every``; the final extent once the
scanner has been quiet for ``final_update_after`` or twice its own latest gap between probes, whichever
is longer (so a slow scan's pauses are not its end); ``closed: true`` when its source's evidence no longer
counts. Open incidents are capped (``max_incidents``), the least recently active closed first. Pure: ``now``
is the correlator's watermark, passed in.
"""

from __future__ import annotations

import hashlib
import heapq
from collections import OrderedDict
from dataclasses import dataclass

from sensor.alerts.alert import Alert, severity, severity_band
from sensor.config import SEVERITIES, DetectionConfig
from sensor.detect.evidence import Evidence, Extent, Track
from sensor.detect.history import profile
from sensor.detect.identity import Identities
from sensor.detect.incidents import ACTION_RANK, action_of, incident_alert, risk_of
from sensor.detect.order import END, Order, OrderKey
from sensor.observations import address_key

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
    aggregated: int = 0
    """Honeyport touches of unproven sources folded into the aggregate incident instead of one of their own."""


def grew(extent: Extent, sent: Extent) -> bool:
    """True when the incident grew materially since the extent ``sent``: new targets, ports, payloads,
    answering services, honeyports or mDNS names, or a tenth more probes (a retransmitted SYN is no news)."""
    return extent[1:] != sent[1:] or extent[0] > sent[0] + sent[0] // 10


def _tie(key: Key) -> tuple[int, str]:
    """What orders incidents due at the same instant: their source (and authorization), whatever order they were
    scheduled in, so that several correlators over parts of one stream agree (:mod:`sensor.detect.order`)."""
    return (key, "") if isinstance(key, int) else key


def _reach(track: Track, band: tuple[int, int]) -> tuple[int, int]:
    """(action rank, severity) of the incident now (``band``: an outbound scan's risk scores): going past what
    was reported is an escalation."""
    return ACTION_RANK[action_of(track)], severity(risk_of(track, band)[0])


class Incidents:
    """The open incidents of one correlator's tracks, and the updates they are due."""

    def __init__(self, config: DetectionConfig, stats: CorrelatorStats, live: OrderedDict[Key, Track],
                 dormant: OrderedDict[Key, Track], identities: Identities, order: Order) -> None:
        self._config = config
        self._band = severity_band(SEVERITIES.index(config.outbound_severity) + 1)
        """The risk scores of an outbound scan (``outbound_severity``)."""
        self._order = order
        self._identities = identities
        """Who held each address when (what an alert names its scanner by)."""
        self.stats = stats
        self._live = live
        self._dormant = dormant
        self._open: OrderedDict[Key, Track] = OrderedDict()
        """The tracks with an open incident (live or dormant), least recently active first."""
        self._wake_at: dict[Key, float] = {}
        """Open incidents whose scanner has not been judged quiet since its latest evidence, and when time alone
        next acts on them (a held escalation, the quiet spell's end)."""
        self._scheduled: dict[Key, OrderKey] = {}
        """For each of :attr:`_wake_at`, where in the stream it was scheduled (what orders the updates flushed)."""
        self._popped: OrderKey | None = None
        """While time alone acts: the place of the incident it acts on."""
        self._due: list[tuple[float, int, str, Key]] = []
        """A heap of (wake at, source, authorization, key); entries whose time is no longer the key's are skipped."""
        self.peak = 0
        """The most incidents open at once (what says whether ``max_incidents`` was ever reached)."""

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

    def due(self, now: float) -> list[tuple[OrderKey, Alert]]:
        """The updates time alone makes due by ``now``: a held escalation whose spacing passed, the final
        extent of an incident whose scanner has gone quiet; each with its place (when it fell due, its source)."""
        alerts: list[tuple[OrderKey, Alert]] = []
        heap = self._due
        at = self._order.at
        while heap and heap[0][0] <= now:
            when, source, authorized, key = heapq.heappop(heap)
            if self._wake_at.get(key) != when:
                continue
            del self._wake_at[key]
            del self._scheduled[key]
            self._popped = place = (at, 0, 2, when, source, authorized)
            track = self._open[key]
            detail = track.evidence()
            if self._escalated(track, detail) and now >= detail.alerted_at + self._config.escalation_every:
                alerts.extend((place, alert) for alert in self._emit(track, now, closed=False))
            elif now >= self._quiet_at(track, detail):
                alerts.extend((place, alert) for alert in self._settle(track, now))
            else:
                self._schedule(track, detail)
        self._popped = None
        return alerts

    def flush(self, now: float) -> list[tuple[OrderKey, Alert]]:
        """An update for every open incident that grew or escalated since its last one (its scanner is not
        judged quiet yet: shutdown, the end of replay's logs), in the order they were scheduled, each with its
        place."""
        alerts: list[tuple[OrderKey, Alert]] = []
        for key in list(self._wake_at):
            track = self._open[key]
            detail = track.evidence()
            if grew(track.extent(), detail.alerted_extent) or self._escalated(track, detail):
                place = (END, *self._scheduled[key])
                alerts.extend((place, alert) for alert in self._emit(track, now, closed=False))
        return alerts

    def update(self, track: Track, fired: list[str], now: float, *, scanning: bool = True) -> list[Alert]:
        """Add the rules ``fired`` by new evidence of ``track``; the updates that are due at once. ``scanning``
        is False for evidence that is no probe in itself (a working connection of a known scanner), which
        after the scan settled waits for the next update rather than starting one."""
        detail = track.detail
        if detail is None:
            if not fired:
                return []
            detail = track.evidence()
        new_rules = [rule for rule in dict.fromkeys(fired) if rule not in detail.rules]
        if new_rules and not detail.rules:
            if len(self._open) >= self._config.max_incidents:
                return self._close_oldest_incident(now, track, new_rules)
            self._open[track.key] = track
            self.peak = max(self.peak, len(self._open))
            label = "many-sources" if track.scanner is None else track.scanner
            detail.incident_id = hashlib.sha256(
                f"{label}|{track.authorized}|{track.first_seen:.6f}"
                f"{f'|{detail.generation}' if detail.generation else ''}".encode()).hexdigest()[:24]
        for rule in new_rules:
            detail.rules[rule] = None
        if not detail.rules:
            return []
        if detail.settled and not scanning:
            return []
        if detail.alerted is None or detail.settled:
            return self._emit(track, now, closed=False)
        config = self._config
        if self._escalated(track, detail) and now >= detail.alerted_at + config.escalation_every:
            return self._emit(track, now, closed=False)
        extent = track.extent()
        targets, ports = extent[2:4]
        sent_targets, sent_ports = detail.alerted_extent[2:4]
        if grew(extent, detail.alerted_extent) and (targets >= 2 * sent_targets or ports >= 2 * sent_ports) \
                and now >= detail.alerted_at + config.update_every:
            return self._emit(track, now, closed=False)
        self._schedule(track, detail)
        return []

    def _escalated(self, track: Track, detail: Evidence) -> bool:
        """True when the incident's action or severity went past what its alerts reported."""
        rank, level = _reach(track, self._band)
        sent_rank, sent_level = detail.alerted or (0, 0)
        return rank > sent_rank or level > sent_level

    def _quiet_at(self, track: Track, detail: Evidence) -> float:
        """When the scanner counts as quiet: ``final_update_after`` after its latest evidence, or twice its
        cadence (:attr:`~sensor.detect.evidence.Evidence.gap`), within ``slow_window``."""
        config = self._config
        return track.last_seen + min(max(config.final_update_after, 2 * detail.gap), config.slow_window)

    def _schedule(self, track: Track, detail: Evidence) -> None:
        """(Re)schedule when time alone next acts on the incident: its quiet spell's end, or sooner the end of
        the spacing that holds an escalation back."""
        when = self._quiet_at(track, detail)
        if self._escalated(track, detail):
            when = min(when, detail.alerted_at + self._config.escalation_every)
        key = track.key
        known = self._wake_at.get(key)
        if known == when:
            return
        if known is None:
            order = self._order
            self._scheduled[key] = self._popped or (order.at, 1, order.scheduled)
            order.scheduled += 1
        self._wake_at[key] = when
        heapq.heappush(self._due, (when, *_tie(key), key))
        if len(self._due) > 4 * len(self._wake_at) + 1024:
            self._due = [(at, *_tie(key), key) for key, at in self._wake_at.items()]
            heapq.heapify(self._due)

    def _settle(self, track: Track, now: float) -> list[Alert]:
        """The scanner went quiet: the update with the incident's final extent if it grew since the last one;
        from now on, its next probe is news."""
        detail = track.evidence()
        alerts = self._emit(track, now, closed=False) if grew(track.extent(), detail.alerted_extent) else []
        detail.settled = True
        return alerts

    def _close_oldest_incident(self, now: float, track: Track, new_rules: list[str]) -> list[Alert]:
        oldest, closing = next(iter(self._open.items()))
        self._live.pop(oldest, None)
        self._dormant.pop(oldest, None)
        alerts = self.close(closing, now)
        return alerts + self.update(track, new_rules, now)

    def close(self, track: Track, now: float) -> list[Alert]:
        """The incident's last update, ``closed: true`` (nothing for a source without an incident)."""
        detail = track.detail
        if detail is None or not detail.rules or track.key not in self._open:
            return []
        key = track.key
        del self._open[key]
        self._wake_at.pop(key, None)
        self._scheduled.pop(key, None)
        self.stats.closed_incidents += 1
        return self._emit(track, now, closed=True)

    def _emit(self, track: Track, now: float, *, closed: bool) -> list[Alert]:
        detail: Evidence = track.evidence()
        rank, level = _reach(track, self._band)
        sent = detail.alerted or (0, 0)
        detail.alerted = (max(rank, sent[0]), max(level, sent[1]))
        detail.alerted_extent = track.extent()
        detail.alerted_at = now
        detail.settled = False
        if not closed:
            self._schedule(track, detail)
        sample = self._config.sample_size
        if track.members() is None:
            keys = (track.key if isinstance(track.key, int) else track.key[0],
                    *(address_key(alias) for alias in track.aliases))
            alert = incident_alert(track, now, sample, self._band, closed=closed, identity=self._identities.at(
                keys, track.first_seen, track.last_seen, sample), history=profile(track))
        else:
            alert = incident_alert(track, now, sample, self._band, closed=closed)
        if track.authorized is not None and self._config.allowlist_mode == "suppress":
            self.stats.suppressed += 1
            return []
        self.stats.alerts += 1
        if self._order.emitted is not None:
            self._order.emitted.append(self._order.at)
        return [alert]
