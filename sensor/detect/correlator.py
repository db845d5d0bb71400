"""The correlator: a pure object that turns observations into one incident per scanner.

It reads no clock and does no I/O: ``now`` is an argument of :meth:`Correlator.observe` and
:meth:`Correlator.tick`. In ``replay`` it is the logs' own time, in ``run`` wall time. Observation
times may run a little behind ``now`` (conn.log is written when a connection ends).

Evidence per scanner:

* **TRW** — a sequential hypothesis test on the outcome of first contacts to new targets (Jung, Paxson,
  Berger, Balakrishnan 2004). With θ0=0.8, θ1=0.2, P_D=0.99, P_F=0.01 a source whose every first
  contact fails is flagged on its 4th: ln 4 per failure against the threshold ln 99.
* **Vertical / horizontal** — distinct failed ports on one target, distinct failed targets on one
  port, within the short window.
* **Half-open** — SYN-ACKed contacts the originator reset before completing the handshake (SYN scan).
* **Slow** — distinct failed (target, port) pairs within the long window.
* Zeek's own notices and t1046.log lines, honeyport hits, mDNS browsing.

Every piece of per-source state is bounded: idle sources expire, and hard caps evict the least recently
active source (or close the least recently active incident) first.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

from sensor.alerts.alert import Alert
from sensor.alerts.catalogue import RULES, Action
from sensor.config import DetectionConfig
from sensor.detect.mdns import MdnsBrowseDetector
from sensor.observations import (
    FAILED_OUTCOMES,
    ConnAttempt,
    HoneyportHit,
    IPAddress,
    MdnsQuery,
    Observation,
    Outcome,
    Transport,
    ZeekDetection,
    ZeekNotice,
)

SCAN_RULES = frozenset(
    {"T1046-TRW", "T1046-VERTICAL", "T1046-HORIZONTAL", "T1046-HALF-OPEN", "T1046-STEALTH", "T1046-SLOW",
     "T1046-ZEEK-NOTICE", "T1046-ZEEK-DETECTION"}
)
_MDNS_ACTIONS = (
    ("T1046-MDNS-DECOY", Action.MDNS_DECOY_LOOKUP),
    ("T1046-MDNS-SENSITIVE", Action.MDNS_SERVICE_BROWSE),
    ("T1046-MDNS-MANY-TYPES", Action.MDNS_SERVICE_BROWSE),
    ("T1046-MDNS-LEGACY", Action.MDNS_SERVICE_BROWSE),
    ("T1046-MDNS-ENUM", Action.MDNS_SERVICE_ENUMERATION),
)
_ZEEK_KINDS = {
    "port_scan": Action.PORT_SCAN,
    "address_scan": Action.ADDRESS_SCAN,
    "random_scan": Action.NETWORK_SCAN,
    "network_scan": Action.NETWORK_SCAN,
    "honeyport_probe": Action.HONEYPORT_PROBE,
    "dark_address_probe": Action.HONEYPORT_PROBE,
    "mdns_service_enumeration": Action.MDNS_SERVICE_ENUMERATION,
    "mdns_service_browse": Action.MDNS_SERVICE_BROWSE,
    "mdns_browse": Action.MDNS_SERVICE_BROWSE,
}
STATE_VERSION = 3
"""Layout of the correlator's state: bump it when a change makes older checkpoints' pickles unusable, so a
restarted daemon drops their incidents instead of failing on them."""
_DISTINCT_CAP = 65536
_TARGET_CACHE = 1 << 18
_LIMITED_BROADCAST = ipaddress.IPv4Address("255.255.255.255")
_TOUCH_TAGS = frozenset({"honeyport", "dark_address"})
"""Values of the Zeek package's conn.log ``t1046_tags`` that make any touch significant."""
_NOT_FIRST_CONTACTS = frozenset({Outcome.HALF_OPEN, Outcome.STEALTH})
"""Outcomes the random walk leaves to their own rules: a benign stack makes neither."""
_ESTABLISHED, _HALF_OPEN, _STEALTH, _OTHER = Outcome.ESTABLISHED, Outcome.HALF_OPEN, Outcome.STEALTH, Outcome.OTHER
"""Module constants: reading an enum member off its class is a Python-level lookup, and ``_conn`` runs
for every conn.log record."""


def zeek_action(name: str) -> Action | None:
    """The action a Zeek notice name (``Scan::Port_Scan``) or t1046.log kind (``port_scan``) stands for."""
    key = name.rpartition("::")[2].lower()
    return _ZEEK_KINDS.get(key)


@dataclass(slots=True)
class CorrelatorStats:
    """Counters an operator wants to see (and a flood test asserts on)."""

    observations: int = 0
    ignored: int = 0
    alerts: int = 0
    suppressed: int = 0
    evicted_sources: int = 0
    closed_incidents: int = 0


class _Evidence:
    """What one source did that a detector can judge; created at its first piece of evidence, so the many
    sources that only ever make working connections cost a few bytes."""

    __slots__ = (
        "alerted", "alerted_extent", "failed", "failed_by_port", "failed_by_target", "failed_pairs", "half_open",
        "half_open_pairs", "honeyport_hits", "incident_id", "mdns_names", "nodes", "payloads", "ports", "profiles",
        "reported", "rules", "sources", "stealth_pairs", "targets", "uids", "update", "zeek_action", "zeek_notes",
    )

    def __init__(self) -> None:
        self.failed = 0
        self.half_open = 0
        self.targets: set[IPAddress] = set()
        self.ports: set[int] = set()
        self.failed_by_target: dict[IPAddress, dict[int, float]] = {}
        self.failed_by_port: dict[tuple[Transport, int], dict[IPAddress, float]] = {}
        self.failed_pairs = 0
        self.half_open_pairs: dict[tuple[IPAddress, int], float] = {}
        self.stealth_pairs: dict[tuple[IPAddress, int], float] = {}
        self.honeyport_hits = 0
        self.profiles: dict[str, None] = {}
        self.nodes: dict[str, None] = {}
        self.payloads: dict[bytes, None] = {}
        """Distinct first bytes clients sent to honeyports (a sample, each capped by the listener)."""
        """Honeyport nodes that saw the scanner (``name@address`` for remote ones)."""
        self.mdns_names: dict[str, None] = {}
        self.zeek_notes: dict[str, None] = {}
        self.uids: list[str] = []
        self.reported = (0, 0, 0, 0)
        """Largest (targets, ports, probes, failed) that Zeek itself reported for this scanner."""
        self.zeek_action: Action | None = None
        self.sources: dict[str, None] = {}
        """Which sensors contributed: zeek, honeyport, mdns."""
        self.rules: dict[str, None] = {}
        self.incident_id = ""
        self.update = 0
        self.alerted: tuple[Action, int, int, int, int] | None = None
        """(action, rules, evidence sources, targets, ports) at the last alert."""
        self.alerted_extent = (0, 0)
        """(probes, payloads sampled) at the last alert: the final update is sent only if they moved."""

    def count(self, targets: Iterable[IPAddress], ports: Iterable[int]) -> None:
        """Add probed targets and ports to the distinct counts (each capped at ``_DISTINCT_CAP``)."""
        for target in targets:
            if len(self.targets) < _DISTINCT_CAP:
                self.targets.add(target)
        for port in ports:
            if len(self.ports) < _DISTINCT_CAP:
                self.ports.add(port)

    def sample_uids(self, uids: Iterable[str], limit: int) -> None:
        """Keep Zeek uids up to ``limit`` of them."""
        for uid in uids:
            if uid and len(self.uids) < limit:
                self.uids.append(uid)

    def zeek_said(self, note: str, action: Action) -> None:
        """Zeek itself reported this source (a notice, a t1046.log line)."""
        self.sources.setdefault("zeek")
        self.zeek_notes.setdefault(note)
        self.zeek_action = self.zeek_action or action


class _Track:
    """One source (per authorization): the TRW walk over its first contacts, and its evidence if any."""

    __slots__ = ("authorized", "contacted", "detail", "first_seen", "last_seen", "llr", "probes", "source")

    def __init__(self, source: IPAddress, authorized: str | None, ts: float) -> None:
        self.source = source
        self.authorized = authorized
        self.first_seen = ts
        self.last_seen = ts
        self.llr = 0.0
        self.contacted: dict[IPAddress, None] = {}
        self.probes = 0
        self.detail: _Evidence | None = None

    def evidence(self) -> _Evidence:
        """The evidence record, created on first use."""
        if self.detail is None:
            self.detail = _Evidence()
        return self.detail

    def counts(self) -> tuple[int, int, int, int]:
        """(distinct targets, distinct ports, probes, failed), Zeek's own figures included."""
        detail = self.evidence()
        targets, ports, probes, failed = detail.reported
        return (max(len(detail.targets), targets), max(len(detail.ports), ports),
                max(self.probes, probes), max(detail.failed, failed))


class Correlator:
    """Pure correlator: ``observe(observation, now)`` and ``tick(now)`` return the alerts they cause."""

    def __init__(self, config: DetectionConfig) -> None:
        self._config = config
        self._tracks: OrderedDict[tuple[IPAddress, str | None], _Track] = OrderedDict()
        self._open: OrderedDict[tuple[IPAddress, str | None], None] = OrderedDict()
        """Keys of the tracks with an open incident, least recently active first."""
        self._mdns = MdnsBrowseDetector(config)
        self._targets: dict[IPAddress, bool] = {}
        """Memo of :meth:`_is_target`, cleared when it grows past ``_TARGET_CACHE``."""
        self.stats = CorrelatorStats()
        self._llr_failure = math.log((1 - config.trw_theta1) / (1 - config.trw_theta0))
        self._llr_success = math.log(config.trw_theta1 / config.trw_theta0)
        self._llr_upper = math.log(config.trw_detection / config.trw_false_positive)
        self._llr_lower = math.log((1 - config.trw_detection) / (1 - config.trw_false_positive))

    # -- public surface -------------------------------------------------------------------------

    def observe(self, observation: Observation, now: float) -> list[Alert]:
        """Take one observation seen at ``now``; return the alerts (new or updated incidents) it causes."""
        self.stats.observations += 1
        if isinstance(observation, ConnAttempt):
            return self._conn(observation, now)
        if isinstance(observation, HoneyportHit):
            return self._honeyport(observation, now)
        if isinstance(observation, MdnsQuery):
            return self._mdns_query(observation, now)
        if isinstance(observation, ZeekDetection):
            return self._zeek_detection(observation, now)
        return self._zeek_notice(observation, now)

    def tick(self, now: float) -> list[Alert]:
        """Expire idle sources (closing their incidents) and old window entries."""
        alerts: list[Alert] = []
        cutoff = now - self._config.idle_timeout
        while self._tracks:
            key, track = next(iter(self._tracks.items()))
            if track.last_seen >= cutoff:
                break
            del self._tracks[key]
            alerts.extend(self._close(track, now))
        slow_cutoff = now - self._config.slow_window
        for track in self._tracks.values():
            if track.detail is not None and track.detail.failed_pairs:
                self._prune_failed(track.detail, slow_cutoff)
        self._mdns.expire(now)
        return alerts

    def close_all(self, now: float) -> list[Alert]:
        """Close every open incident (end of a replay, shutdown); return their final updates."""
        alerts: list[Alert] = []
        for track in self._tracks.values():
            alerts.extend(self._close(track, now))
        self._tracks.clear()
        self._open.clear()
        return alerts

    @property
    def open_incidents(self) -> int:
        """Number of incidents open now."""
        return len(self._open)

    @property
    def tracked_sources(self) -> int:
        """Number of sources whose state is kept now."""
        return len(self._tracks)

    # -- evidence intake ------------------------------------------------------------------------

    def _conn(self, conn: ConnAttempt, now: float) -> list[Alert]:
        outcome = conn.outcome
        target = conn.target
        is_target = self._targets.get(target)
        if is_target is None:
            is_target = self._is_target(target)
        if outcome is _OTHER or not is_target:
            self.stats.ignored += 1
            return []
        track, alerts = self._track(conn.source, conn.target_port, conn.ts, now)
        track.probes += 1
        tags = conn.zeek_tags
        touch = not _TOUCH_TAGS.isdisjoint(tags)
        if outcome is _ESTABLISHED and track.detail is None and not tags:
            fired = self._trw(track, conn)
            return alerts + self._update(track, fired, now) if fired else alerts
        detail = track.evidence()
        detail.count((conn.target,), (conn.target_port,))
        detail.sample_uids((conn.uid,), self._config.sample_size)
        detail.sources.setdefault("zeek")
        fired = ["T1046-HONEYPORT"] if touch else []
        if "scan" in tags:
            fired.append("T1046-ZEEK-DETECTION")
            detail.zeek_notes.setdefault("conn.log:t1046_tags=scan")
        if outcome is _HALF_OPEN:
            detail.half_open += 1
            fired += self._distinct_pairs(detail, detail.half_open_pairs, conn, self._config.half_open_probes, now,
                                          "T1046-HALF-OPEN")
        elif outcome is _STEALTH:
            detail.failed += 1
            fired += self._distinct_pairs(detail, detail.stealth_pairs, conn, self._config.stealth_probes, now,
                                          "T1046-STEALTH")
            fired += self._failed_pair(detail, conn.target, conn.transport, conn.target_port, conn.ts, now)
        elif outcome in FAILED_OUTCOMES:
            detail.failed += 1
            fired += self._failed_pair(detail, conn.target, conn.transport, conn.target_port, conn.ts, now)
        fired += self._trw(track, conn)
        return alerts + self._update(track, fired, now)

    def _honeyport(self, hit: HoneyportHit, now: float) -> list[Alert]:
        track, alerts = self._track(hit.source, hit.target_port, hit.ts, now)
        detail = track.evidence()
        if hit.payload and len(detail.payloads) < self._config.sample_size:
            detail.payloads.setdefault(hit.payload)
        if hit.follow_up:
            return alerts
        track.probes += 1
        detail.count((hit.target,), (hit.target_port,))
        detail.honeyport_hits += 1
        detail.failed += 1
        detail.sources.setdefault("honeyport")
        if len(detail.profiles) < self._config.sample_size:
            detail.profiles.setdefault(hit.profile)
        if hit.node and len(detail.nodes) < self._config.sample_size:
            detail.nodes.setdefault(hit.node)
        fired = ["T1046-HONEYPORT"]
        fired += self._failed_pair(detail, hit.target, hit.transport, hit.target_port, hit.ts, now)
        return alerts + self._update(track, fired, now)

    def _mdns_query(self, query: MdnsQuery, now: float) -> list[Alert]:
        fired = self._mdns.rules_for(query, now)
        if not fired:
            self.stats.ignored += 1
            return []
        track, alerts = self._track(query.source, None, query.ts, now)
        detail = track.evidence()
        detail.sources.setdefault("mdns" if query.via == "watcher" else "zeek")
        if len(detail.mdns_names) < self._config.sample_size:
            detail.mdns_names.setdefault(query.name.lower().rstrip("."))
        detail.sample_uids((query.uid,), self._config.sample_size)
        return alerts + self._update(track, fired, now)

    def _zeek_notice(self, notice: ZeekNotice, now: float) -> list[Alert]:
        action = zeek_action(notice.note)
        if action is None:
            self.stats.ignored += 1
            return []
        track, alerts = self._track(notice.source, notice.target_port, notice.ts, now)
        detail = track.evidence()
        detail.zeek_said(notice.note, action)
        detail.sample_uids((notice.uid,), self._config.sample_size)
        detail.count(() if notice.target is None else (notice.target,),
                     () if notice.target_port is None else (notice.target_port,))
        return alerts + self._update(track, [self._rule_for_zeek(action, "T1046-ZEEK-NOTICE")], now)

    def _zeek_detection(self, detection: ZeekDetection, now: float) -> list[Alert]:
        action = zeek_action(detection.kind)
        if action is None:
            self.stats.ignored += 1
            return []
        port = detection.ports[0] if len(detection.ports) == 1 else None
        track, alerts = self._track(detection.scanner, port, detection.ts, now)
        track.first_seen = min(track.first_seen, detection.first_seen or detection.ts)
        detail = track.evidence()
        detail.zeek_said(f"t1046.log:{detection.kind}", action)
        old = detail.reported
        detail.reported = (max(old[0], detection.n_targets), max(old[1], detection.n_ports),
                           max(old[2], detection.n_probes), max(old[3], detection.n_failed))
        detail.count(detection.targets, detection.ports)
        detail.sample_uids(detection.uids, self._config.sample_size)
        return alerts + self._update(track, [self._rule_for_zeek(action, "T1046-ZEEK-DETECTION")], now)

    @staticmethod
    def _rule_for_zeek(action: Action, scan_rule: str) -> str:
        if action is Action.HONEYPORT_PROBE:
            return "T1046-HONEYPORT"
        if action is Action.MDNS_SERVICE_ENUMERATION:
            return "T1046-MDNS-ENUM"
        if action is Action.MDNS_SERVICE_BROWSE:
            return "T1046-MDNS-SENSITIVE"
        return scan_rule

    # -- detectors ------------------------------------------------------------------------------

    def _trw(self, track: _Track, conn: ConnAttempt) -> list[str]:
        outcome = conn.outcome
        if outcome in _NOT_FIRST_CONTACTS:
            return []
        contacted = track.contacted
        known = len(contacted)
        contacted[conn.target] = None
        if len(contacted) == known:
            return []
        if known >= self._config.max_pairs_per_source:
            del contacted[next(iter(contacted))]
        track.llr += self._llr_failure if outcome in FAILED_OUTCOMES else self._llr_success
        if track.llr >= self._llr_upper:
            return ["T1046-TRW"]
        if track.llr <= self._llr_lower:
            track.llr = 0.0
        return []

    def _failed_pair(self, detail: _Evidence, target: IPAddress, transport: Transport, port: int,
                     ts: float, now: float) -> list[str]:
        by_target = detail.failed_by_target.get(target)
        if by_target is None or port not in by_target:
            if detail.failed_pairs >= self._config.max_pairs_per_source:
                return []
            detail.failed_pairs += 1
        if by_target is None:
            by_target = detail.failed_by_target[target] = {}
        by_target[port] = max(ts, by_target.get(port, ts))
        by_port = detail.failed_by_port.setdefault((transport, port), {})
        by_port[target] = by_target[port]
        config = self._config
        cutoff = now - config.window
        fired: list[str] = []
        if ("T1046-VERTICAL" not in detail.rules and len(by_target) >= config.port_scan_ports
                and sum(1 for when in by_target.values() if when >= cutoff) >= config.port_scan_ports):
            fired.append("T1046-VERTICAL")
        if ("T1046-HORIZONTAL" not in detail.rules and len(by_port) >= config.address_scan_targets
                and sum(1 for when in by_port.values() if when >= cutoff) >= config.address_scan_targets):
            fired.append("T1046-HORIZONTAL")
        if detail.failed_pairs >= config.slow_scan_pairs and SCAN_RULES.isdisjoint(detail.rules):
            fired.append("T1046-SLOW")
        return fired

    def _distinct_pairs(self, detail: _Evidence, pairs: dict[tuple[IPAddress, int], float], conn: ConnAttempt,
                        threshold: int, now: float, rule: str) -> list[str]:
        """Remember one (target, port) contact of a kind; ``rule`` when ``threshold`` distinct ones fall
        within the short window (counted only until the rule is part of the incident: the count is linear)."""
        key = (conn.target, conn.target_port)
        if key not in pairs and len(pairs) >= self._config.max_pairs_per_source:
            return []
        pairs[key] = max(conn.ts, pairs.get(key, conn.ts))
        cutoff = now - self._config.window
        if (rule not in detail.rules and len(pairs) >= threshold
                and sum(1 for when in pairs.values() if when >= cutoff) >= threshold):
            return [rule]
        return []

    # -- state ----------------------------------------------------------------------------------

    def _is_target(self, address: IPAddress) -> bool:
        """True for a unicast address inside ``local_nets`` (not its broadcast address); the caller has looked
        in the memo already."""
        verdict = False
        if not (address.is_multicast or address.is_unspecified or address == _LIMITED_BROADCAST):
            for network in self._config.local_nets:
                if address in network:
                    verdict = network.prefixlen >= network.max_prefixlen - 1 or address != network.broadcast_address
                    break
        if len(self._targets) >= _TARGET_CACHE:
            self._targets.clear()
        self._targets[address] = verdict
        return verdict

    def _authorization(self, source: IPAddress, port: int | None, ts: float) -> str | None:
        for entry in self._config.allowlist:
            if entry.covers(source, port, ts):
                return entry.reason
        return None

    def _track(self, source: IPAddress, port: int | None, ts: float, now: float) -> tuple[_Track, list[Alert]]:
        key = (source, self._authorization(source, port, ts) if self._config.allowlist else None)
        tracks = self._tracks
        track = tracks.get(key)
        if track is None:
            alerts = self._evict(now) if len(tracks) >= self._config.max_sources else []
            track = tracks[key] = _Track(source, key[1], ts)
            return track, alerts
        tracks.move_to_end(key)
        if track.detail is not None and key in self._open:
            self._open.move_to_end(key)
        if ts < track.first_seen:
            track.first_seen = ts
        elif ts > track.last_seen:
            track.last_seen = ts
        return track, []

    def _evict(self, now: float) -> list[Alert]:
        _, track = self._tracks.popitem(last=False)
        self.stats.evicted_sources += 1
        return self._close(track, now)

    @staticmethod
    def _prune_failed(detail: _Evidence, cutoff: float) -> None:
        for target, ports in list(detail.failed_by_target.items()):
            stale = [port for port, when in ports.items() if when < cutoff]
            for port in stale:
                del ports[port]
            detail.failed_pairs -= len(stale)
            if not ports:
                del detail.failed_by_target[target]
        for port_key, targets in list(detail.failed_by_port.items()):
            for target in [t for t, when in targets.items() if when < cutoff]:
                del targets[target]
            if not targets:
                del detail.failed_by_port[port_key]

    # -- incidents ------------------------------------------------------------------------------

    def _update(self, track: _Track, fired: list[str], now: float) -> list[Alert]:
        detail = track.detail
        if detail is None:
            if not fired:
                return []
            detail = track.evidence()
        new_rules = [rule for rule in dict.fromkeys(fired) if rule not in detail.rules]
        if new_rules and not detail.rules:
            if len(self._open) >= self._config.max_incidents:
                return self._close_oldest_incident(now, track, new_rules)
            self._open[(track.source, track.authorized)] = None
            detail.incident_id = hashlib.sha256(
                f"{track.source}|{track.authorized}|{track.first_seen:.6f}".encode()).hexdigest()[:24]
        for rule in new_rules:
            detail.rules[rule] = None
        if not detail.rules:
            return []
        action = self._action(track)
        targets, ports, _, _ = track.counts()
        snapshot = (action, len(detail.rules), len(detail.sources), targets, ports)
        last = detail.alerted
        grown = last is None or snapshot[:3] != last[:3] or targets >= 2 * last[3] or ports >= 2 * last[4]
        if not grown:
            return []
        detail.alerted = snapshot
        detail.alerted_extent = (track.probes, len(detail.payloads))
        rule = new_rules[-1] if new_rules else next(reversed(detail.rules))
        return self._emit(track, rule, now, closed=False)

    def _close_oldest_incident(self, now: float, track: _Track, new_rules: list[str]) -> list[Alert]:
        oldest = next(iter(self._open))
        alerts = self._close(self._tracks.pop(oldest), now)
        return alerts + self._update(track, new_rules, now)

    def _close(self, track: _Track, now: float) -> list[Alert]:
        detail = track.detail
        if detail is None or not detail.rules:
            return []
        del self._open[(track.source, track.authorized)]
        self.stats.closed_incidents += 1
        last = detail.alerted
        extent = (track.probes, len(detail.payloads))
        if last is not None and (*extent, *track.counts()[:2]) == (*detail.alerted_extent, *last[3:5]):
            return []
        return self._emit(track, next(reversed(detail.rules)), now, closed=True)

    def _action(self, track: _Track) -> Action:
        detail = track.evidence()
        rules = detail.rules
        if not SCAN_RULES.isdisjoint(rules) or (
                "T1046-HONEYPORT" in rules and ("T1046-VERTICAL" in rules or "T1046-HORIZONTAL" in rules)):
            targets, ports, _, _ = track.counts()
            if targets == 0 and ports == 0 and detail.zeek_action is not None:
                return detail.zeek_action
            if targets <= 1:
                return Action.PORT_SCAN
            if ports <= 3 or ports * 4 <= targets:
                return Action.ADDRESS_SCAN
            if targets * 4 <= ports:
                return Action.PORT_SCAN
            return Action.NETWORK_SCAN
        if "T1046-HONEYPORT" in rules:
            return Action.HONEYPORT_PROBE
        for rule, action in _MDNS_ACTIONS:
            if rule in rules:
                return action
        return detail.zeek_action or Action.NETWORK_SCAN

    def _risk(self, track: _Track) -> tuple[int, str]:
        rules = track.evidence().rules
        base = max(RULES[rule].risk for rule in rules)
        independent = len(track.evidence().sources) - 1
        targets, ports, _, _ = track.counts()
        size = min(20, int(2 * math.log2(1 + targets * ports)))
        risk = min(100, base + 10 * independent + size + 5 * (len(rules) - 1))
        strong = "T1046-HONEYPORT" in rules or "T1046-MDNS-DECOY" in rules
        if strong or independent or len(rules) >= 3:
            confidence = "high"
        elif len(rules) >= 2 or not SCAN_RULES.isdisjoint(rules):
            confidence = "medium"
        else:
            confidence = "low"
        return risk, confidence

    def _emit(self, track: _Track, rule_id: str, now: float, *, closed: bool) -> list[Alert]:
        detail = track.evidence()
        detail.update += 1
        targets, ports, probes, failed = track.counts()
        risk, confidence = self._risk(track)
        sample = self._config.sample_size
        alert = Alert(
            incident_id=detail.incident_id,
            update=detail.update,
            ts=now,
            action=self._action(track),
            rule=RULES[rule_id],
            rules=tuple(detail.rules),
            scanner=track.source,
            first_seen=track.first_seen,
            last_seen=track.last_seen,
            probes=probes,
            failed=failed,
            half_open=detail.half_open,
            distinct_targets=targets,
            distinct_ports=ports,
            targets=tuple(sorted(detail.targets, key=lambda a: (a.version, a))[:sample]),
            ports=tuple(sorted(detail.ports)[:sample]),
            evidence_sources=tuple(detail.sources),
            uids=tuple(detail.uids),
            honeyport_hits=detail.honeyport_hits,
            honeyport_profiles=tuple(detail.profiles),
            honeyport_nodes=tuple(detail.nodes),
            honeyport_payloads=tuple(detail.payloads),
            mdns_names=tuple(detail.mdns_names),
            zeek_notes=tuple(detail.zeek_notes),
            risk_score=risk,
            confidence=confidence,
            authorized=track.authorized,
            closed=closed,
        )
        if track.authorized is not None and self._config.allowlist_mode == "suppress":
            self.stats.suppressed += 1
            return []
        self.stats.alerts += 1
        return [alert]
