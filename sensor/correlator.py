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
import math
from collections import OrderedDict
from dataclasses import dataclass

from sensor.alerts import Alert
from sensor.catalogue import RULES, Action
from sensor.config import DetectionConfig
from sensor.mdnsdetect import MdnsBrowseDetector
from sensor.observations import (
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
    {"T1046-TRW", "T1046-VERTICAL", "T1046-HORIZONTAL", "T1046-HALF-OPEN", "T1046-SLOW",
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
}
_DISTINCT_CAP = 65536
_TOUCH_TAGS = frozenset({"honeyport", "dark_address"})
"""Values of the Zeek package's conn.log ``t1046_tags`` that make any touch significant."""


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


class _Track:
    """Everything known about one source (per authorization), and its incident once a rule fires."""

    __slots__ = (
        "alerted", "alerted_probes", "authorized", "contacted", "established", "evidence", "failed", "failed_by_port",
        "failed_by_target", "failed_pairs", "first_seen", "half_open", "half_open_pairs", "honeyport_hits",
        "incident_id", "last_seen", "llr", "mdns_names", "ports", "probes", "profiles", "reported",
        "rules", "source", "targets", "uids", "update", "zeek_action", "zeek_notes",
    )

    def __init__(self, source: IPAddress, authorized: str | None, ts: float) -> None:
        self.source = source
        self.authorized = authorized
        self.first_seen = ts
        self.last_seen = ts
        self.llr = 0.0
        self.contacted: dict[IPAddress, None] = {}
        self.probes = 0
        self.failed = 0
        self.half_open = 0
        self.established = 0
        self.targets: set[IPAddress] = set()
        self.ports: set[int] = set()
        self.failed_by_target: dict[IPAddress, dict[int, float]] = {}
        self.failed_by_port: dict[tuple[Transport, int], dict[IPAddress, float]] = {}
        self.failed_pairs = 0
        self.half_open_pairs: dict[tuple[IPAddress, int], float] = {}
        self.honeyport_hits = 0
        self.profiles: dict[str, None] = {}
        self.mdns_names: dict[str, None] = {}
        self.zeek_notes: dict[str, None] = {}
        self.uids: list[str] = []
        self.reported = (0, 0, 0, 0)
        """Largest (targets, ports, probes, failed) that Zeek itself reported for this scanner."""
        self.zeek_action: Action | None = None
        self.evidence: dict[str, None] = {}
        self.rules: dict[str, None] = {}
        self.incident_id = ""
        self.update = 0
        self.alerted: tuple[Action, int, int, int, int] | None = None
        """(action, rules, evidence sources, targets, ports) at the last alert."""
        self.alerted_probes = 0

    def counts(self) -> tuple[int, int, int, int]:
        """(distinct targets, distinct ports, probes, failed), Zeek's own figures included."""
        targets, ports, probes, failed = self.reported
        return (max(len(self.targets), targets), max(len(self.ports), ports),
                max(self.probes, probes), max(self.failed, failed))


class Correlator:
    """Pure correlator: ``observe(observation, now)`` and ``tick(now)`` return the alerts they cause."""

    def __init__(self, config: DetectionConfig) -> None:
        self._config = config
        self._tracks: OrderedDict[tuple[IPAddress, str | None], _Track] = OrderedDict()
        self._incidents = 0
        self._mdns = MdnsBrowseDetector(config)
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
            if track.failed_pairs:
                self._prune_failed(track, slow_cutoff)
        self._mdns.expire(now)
        return alerts

    def close_all(self, now: float) -> list[Alert]:
        """Close every open incident (end of a replay, shutdown); return their final updates."""
        alerts: list[Alert] = []
        for track in self._tracks.values():
            alerts.extend(self._close(track, now))
        self._tracks.clear()
        self._incidents = 0
        return alerts

    @property
    def open_incidents(self) -> int:
        """Number of incidents open now."""
        return self._incidents

    @property
    def tracked_sources(self) -> int:
        """Number of sources whose state is kept now."""
        return len(self._tracks)

    # -- evidence intake ------------------------------------------------------------------------

    def _conn(self, conn: ConnAttempt, now: float) -> list[Alert]:
        if conn.outcome is Outcome.OTHER or not self._is_target(conn.target):
            self.stats.ignored += 1
            return []
        track, alerts = self._track(conn.source, conn.target_port, conn.ts, now)
        self._count_probe(track, conn.target, conn.target_port)
        if conn.uid and len(track.uids) < self._config.sample_size:
            track.uids.append(conn.uid)
        track.evidence.setdefault("zeek")
        fired = ["T1046-HONEYPORT"] if not _TOUCH_TAGS.isdisjoint(conn.zeek_tags) else []
        if conn.outcome is Outcome.HALF_OPEN:
            track.half_open += 1
            fired += self._half_open(track, conn, now)
        elif conn.outcome.failed:
            track.failed += 1
            fired += self._failed_pair(track, conn.target, conn.transport, conn.target_port, conn.ts, now)
        else:
            track.established += 1
        fired += self._trw(track, conn)
        return alerts + self._update(track, fired, now)

    def _honeyport(self, hit: HoneyportHit, now: float) -> list[Alert]:
        track, alerts = self._track(hit.source, hit.target_port, hit.ts, now)
        self._count_probe(track, hit.target, hit.target_port)
        track.honeyport_hits += 1
        track.failed += 1
        track.evidence.setdefault("honeyport")
        if len(track.profiles) < self._config.sample_size:
            track.profiles.setdefault(hit.profile)
        fired = ["T1046-HONEYPORT"]
        fired += self._failed_pair(track, hit.target, hit.transport, hit.target_port, hit.ts, now)
        return alerts + self._update(track, fired, now)

    def _mdns_query(self, query: MdnsQuery, now: float) -> list[Alert]:
        fired = self._mdns.rules_for(query, now)
        known = self._tracks.get((query.source, None))
        if not fired and known is None:
            self.stats.ignored += 1
            return []
        track, alerts = self._track(query.source, None, query.ts, now)
        if fired:
            track.evidence.setdefault("mdns" if query.via == "watcher" else "zeek")
            if len(track.mdns_names) < self._config.sample_size:
                track.mdns_names.setdefault(query.name.lower().rstrip("."))
            if query.uid and len(track.uids) < self._config.sample_size:
                track.uids.append(query.uid)
        return alerts + self._update(track, fired, now)

    def _zeek_notice(self, notice: ZeekNotice, now: float) -> list[Alert]:
        action = zeek_action(notice.note)
        if action is None:
            self.stats.ignored += 1
            return []
        track, alerts = self._track(notice.source, notice.target_port, notice.ts, now)
        track.evidence.setdefault("zeek")
        track.zeek_notes.setdefault(notice.note)
        track.zeek_action = track.zeek_action or action
        if notice.uid and len(track.uids) < self._config.sample_size:
            track.uids.append(notice.uid)
        if notice.target is not None and len(track.targets) < _DISTINCT_CAP:
            track.targets.add(notice.target)
        if notice.target_port is not None and len(track.ports) < _DISTINCT_CAP:
            track.ports.add(notice.target_port)
        return alerts + self._update(track, [self._rule_for_zeek(action, "T1046-ZEEK-NOTICE")], now)

    def _zeek_detection(self, detection: ZeekDetection, now: float) -> list[Alert]:
        action = zeek_action(detection.kind)
        if action is None:
            self.stats.ignored += 1
            return []
        port = detection.ports[0] if len(detection.ports) == 1 else None
        track, alerts = self._track(detection.scanner, port, detection.ts, now)
        track.first_seen = min(track.first_seen, detection.first_seen or detection.ts)
        track.evidence.setdefault("zeek")
        track.zeek_notes.setdefault(f"t1046.log:{detection.kind}")
        track.zeek_action = track.zeek_action or action
        old = track.reported
        track.reported = (max(old[0], detection.n_targets), max(old[1], detection.n_ports),
                          max(old[2], detection.n_probes), max(old[3], detection.n_failed))
        for target in detection.targets:
            if len(track.targets) < _DISTINCT_CAP:
                track.targets.add(target)
        for number in detection.ports:
            if len(track.ports) < _DISTINCT_CAP:
                track.ports.add(number)
        for uid in detection.uids:
            if len(track.uids) < self._config.sample_size:
                track.uids.append(uid)
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
        if conn.outcome is Outcome.HALF_OPEN or conn.target in track.contacted:
            return []
        if len(track.contacted) >= self._config.max_pairs_per_source:
            del track.contacted[next(iter(track.contacted))]
        track.contacted[conn.target] = None
        track.llr += self._llr_failure if conn.outcome.failed else self._llr_success
        if track.llr >= self._llr_upper:
            return ["T1046-TRW"]
        if track.llr <= self._llr_lower:
            track.llr = 0.0
        return []

    def _failed_pair(self, track: _Track, target: IPAddress, transport: Transport, port: int,
                     ts: float, now: float) -> list[str]:
        by_target = track.failed_by_target.get(target)
        if by_target is None or port not in by_target:
            if track.failed_pairs >= self._config.max_pairs_per_source:
                return []
            track.failed_pairs += 1
        if by_target is None:
            by_target = track.failed_by_target[target] = {}
        by_target[port] = max(ts, by_target.get(port, ts))
        by_port = track.failed_by_port.setdefault((transport, port), {})
        by_port[target] = by_target[port]
        config = self._config
        cutoff = now - config.window
        fired: list[str] = []
        if (len(by_target) >= config.port_scan_ports
                and sum(1 for when in by_target.values() if when >= cutoff) >= config.port_scan_ports):
            fired.append("T1046-VERTICAL")
        if (len(by_port) >= config.address_scan_targets
                and sum(1 for when in by_port.values() if when >= cutoff) >= config.address_scan_targets):
            fired.append("T1046-HORIZONTAL")
        if track.failed_pairs >= config.slow_scan_pairs and SCAN_RULES.isdisjoint(track.rules):
            fired.append("T1046-SLOW")
        return fired

    def _half_open(self, track: _Track, conn: ConnAttempt, now: float) -> list[str]:
        pairs = track.half_open_pairs
        key = (conn.target, conn.target_port)
        if key not in pairs and len(pairs) >= self._config.max_pairs_per_source:
            return []
        pairs[key] = max(conn.ts, pairs.get(key, conn.ts))
        threshold = self._config.half_open_probes
        cutoff = now - self._config.window
        if len(pairs) >= threshold and sum(1 for when in pairs.values() if when >= cutoff) >= threshold:
            return ["T1046-HALF-OPEN"]
        return []

    # -- state ----------------------------------------------------------------------------------

    def _is_target(self, address: IPAddress) -> bool:
        if address.is_multicast or address.is_unspecified or str(address) == "255.255.255.255":
            return False
        for network in self._config.local_nets:
            if address in network:
                return network.prefixlen >= network.max_prefixlen - 1 or address != network.broadcast_address
        return False

    def _authorization(self, source: IPAddress, port: int | None, ts: float) -> str | None:
        for entry in self._config.allowlist:
            if entry.covers(source, port, ts):
                return entry.reason
        return None

    def _track(self, source: IPAddress, port: int | None, ts: float, now: float) -> tuple[_Track, list[Alert]]:
        key = (source, self._authorization(source, port, ts))
        track = self._tracks.get(key)
        alerts: list[Alert] = []
        if track is None:
            if len(self._tracks) >= self._config.max_sources:
                alerts += self._evict(now)
            track = self._tracks[key] = _Track(source, key[1], ts)
        else:
            self._tracks.move_to_end(key)
            track.first_seen = min(track.first_seen, ts)
        track.last_seen = max(track.last_seen, ts)
        return track, alerts

    def _evict(self, now: float) -> list[Alert]:
        _, track = self._tracks.popitem(last=False)
        self.stats.evicted_sources += 1
        return self._close(track, now)

    def _count_probe(self, track: _Track, target: IPAddress, port: int) -> None:
        track.probes += 1
        if len(track.targets) < _DISTINCT_CAP:
            track.targets.add(target)
        if len(track.ports) < _DISTINCT_CAP:
            track.ports.add(port)

    def _prune_failed(self, track: _Track, cutoff: float) -> None:
        for target, ports in list(track.failed_by_target.items()):
            stale = [port for port, when in ports.items() if when < cutoff]
            for port in stale:
                del ports[port]
            track.failed_pairs -= len(stale)
            if not ports:
                del track.failed_by_target[target]
        for port_key, targets in list(track.failed_by_port.items()):
            for target in [t for t, when in targets.items() if when < cutoff]:
                del targets[target]
            if not targets:
                del track.failed_by_port[port_key]

    # -- incidents ------------------------------------------------------------------------------

    def _update(self, track: _Track, fired: list[str], now: float) -> list[Alert]:
        new_rules = [rule for rule in dict.fromkeys(fired) if rule not in track.rules]
        if new_rules and not track.rules:
            if self._incidents >= self._config.max_incidents:
                return self._close_oldest_incident(now, track, new_rules)
            self._incidents += 1
            track.incident_id = hashlib.sha256(
                f"{track.source}|{track.authorized}|{track.first_seen:.6f}".encode()).hexdigest()[:24]
        for rule in new_rules:
            track.rules[rule] = None
        if not track.rules:
            return []
        action = self._action(track)
        targets, ports, _, _ = track.counts()
        snapshot = (action, len(track.rules), len(track.evidence), targets, ports)
        last = track.alerted
        grown = last is None or snapshot[:3] != last[:3] or targets >= 2 * last[3] or ports >= 2 * last[4]
        if not grown:
            return []
        track.alerted = snapshot
        track.alerted_probes = track.probes
        rule = new_rules[-1] if new_rules else next(reversed(track.rules))
        return self._emit(track, rule, now, closed=False)

    def _close_oldest_incident(self, now: float, track: _Track, new_rules: list[str]) -> list[Alert]:
        alerts: list[Alert] = []
        for key, other in self._tracks.items():
            if other.rules and other is not track:
                del self._tracks[key]
                alerts += self._close(other, now)
                break
        return alerts + self._update(track, new_rules, now)

    def _close(self, track: _Track, now: float) -> list[Alert]:
        if not track.rules:
            return []
        self._incidents -= 1
        self.stats.closed_incidents += 1
        last = track.alerted
        if last is not None and (track.probes, *track.counts()[:2]) == (track.alerted_probes, *last[3:5]):
            return []
        return self._emit(track, next(reversed(track.rules)), now, closed=True)

    def _action(self, track: _Track) -> Action:
        if not SCAN_RULES.isdisjoint(track.rules) or (
                "T1046-HONEYPORT" in track.rules and ("T1046-VERTICAL" in track.rules
                                                      or "T1046-HORIZONTAL" in track.rules)):
            targets, ports, _, _ = track.counts()
            if targets == 0 and ports == 0 and track.zeek_action is not None:
                return track.zeek_action
            if targets <= 1:
                return Action.PORT_SCAN
            if ports <= 3 or ports * 4 <= targets:
                return Action.ADDRESS_SCAN
            if targets * 4 <= ports:
                return Action.PORT_SCAN
            return Action.NETWORK_SCAN
        if "T1046-HONEYPORT" in track.rules:
            return Action.HONEYPORT_PROBE
        for rule, action in _MDNS_ACTIONS:
            if rule in track.rules:
                return action
        return track.zeek_action or Action.NETWORK_SCAN

    def _risk(self, track: _Track) -> tuple[int, str]:
        base = max(RULES[rule].risk for rule in track.rules)
        independent = len(track.evidence) - 1
        targets, ports, _, _ = track.counts()
        size = min(20, int(2 * math.log2(1 + targets * ports)))
        risk = min(100, base + 10 * independent + size + 5 * (len(track.rules) - 1))
        strong = "T1046-HONEYPORT" in track.rules or "T1046-MDNS-DECOY" in track.rules
        if strong or independent or len(track.rules) >= 3:
            confidence = "high"
        elif len(track.rules) >= 2 or not SCAN_RULES.isdisjoint(track.rules):
            confidence = "medium"
        else:
            confidence = "low"
        return risk, confidence

    def _emit(self, track: _Track, rule_id: str, now: float, *, closed: bool) -> list[Alert]:
        track.update += 1
        targets, ports, probes, failed = track.counts()
        risk, confidence = self._risk(track)
        sample = self._config.sample_size
        alert = Alert(
            incident_id=track.incident_id,
            update=track.update,
            ts=now,
            action=self._action(track),
            rule=RULES[rule_id],
            rules=tuple(track.rules),
            scanner=track.source,
            first_seen=track.first_seen,
            last_seen=track.last_seen,
            probes=probes,
            failed=failed,
            half_open=track.half_open,
            distinct_targets=targets,
            distinct_ports=ports,
            targets=tuple(sorted(track.targets, key=lambda a: (a.version, a))[:sample]),
            ports=tuple(sorted(track.ports)[:sample]),
            evidence_sources=tuple(track.evidence),
            uids=tuple(track.uids),
            honeyport_hits=track.honeyport_hits,
            honeyport_profiles=tuple(track.profiles),
            mdns_names=tuple(track.mdns_names),
            zeek_notes=tuple(track.zeek_notes),
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
