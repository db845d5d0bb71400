"""Scan rule families over connection evidence: the random walk over first contacts (TRW), distinct
failed ports on one target (vertical), distinct failed targets on one port (horizontal), half-open and
handshake-less (stealth) contacts, and slow vertical, horizontal and pair scans over the long window.

Each rule is asked when a contact is remembered and answers with the rule ids it fires; windows are
judged around the contact's own time (:mod:`sensor.detect.windows`). State lives in the track and
evidence records (:mod:`sensor.detect.evidence`); nothing here reads a clock.
"""

from __future__ import annotations

import math

from sensor.config import DetectionConfig
from sensor.detect.evidence import Evidence, Track
from sensor.detect.windows import densest
from sensor.observations import FAILED_OUTCOMES, IPAddress, Outcome, Transport

SCAN_RULES = frozenset(
    {"T1046-TRW", "T1046-VERTICAL", "T1046-HORIZONTAL", "T1046-HALF-OPEN", "T1046-STEALTH", "T1046-SLOW",
     "T1046-ZEEK-NOTICE", "T1046-ZEEK-DETECTION"}
)
_FAST_RULES = frozenset({"T1046-VERTICAL", "T1046-HORIZONTAL", "T1046-STEALTH", "T1046-HALF-OPEN"})
"""Rules of the short window: a scan that made one of them is not slow, however long it goes on."""
_NOT_FIRST_CONTACTS = frozenset({Outcome.HALF_OPEN, Outcome.STEALTH})
"""Outcomes the random walk leaves to their own rules: a benign stack makes neither."""


class RandomWalk:
    """TRW (Jung, Paxson, Berger, Balakrishnan 2004): a sequential hypothesis test on the outcomes of a
    source's first contacts to new targets. With θ0=0.8, θ1=0.2, P_D=0.99, P_F=0.01 a source whose every
    first contact fails is flagged on its 4th: ln 4 per failure against the threshold ln 99."""

    def __init__(self, config: DetectionConfig) -> None:
        self.max_contacts = config.max_pairs_per_source
        self._failure = math.log((1 - config.trw_theta1) / (1 - config.trw_theta0))
        self.success = math.log(config.trw_theta1 / config.trw_theta0)
        self.upper = math.log(config.trw_detection / config.trw_false_positive)
        self.lower = math.log((1 - config.trw_detection) / (1 - config.trw_false_positive))
        """The bounds and a success's step, read by the correlator's batch path, which walks a working first
        contact itself (``tests/detect/test_batch.py`` holds it to :meth:`step`)."""

    def step(self, track: Track, target: int, outcome: Outcome) -> list[str]:
        """Walk one step if ``target`` (an address's key) is a first contact of the track; ``["T1046-TRW"]`` at
        the upper bound."""
        if outcome in _NOT_FIRST_CONTACTS:
            return []
        contacted = track.contacted
        known = len(contacted)
        contacted[target] = None
        if len(contacted) == known:
            return []
        if known >= self.max_contacts:
            del contacted[next(iter(contacted))]
        track.llr += self._failure if outcome in FAILED_OUTCOMES else self.success
        if track.llr >= self.upper:
            return ["T1046-TRW"]
        if track.llr <= self.lower:
            track.llr = 0.0
        return []


def failed_pair(config: DetectionConfig, detail: Evidence, target: IPAddress, transport: Transport, port: int,
                ts: float) -> list[str]:
    """Remember a failed (target, port) contact at ``ts``; the vertical, horizontal and slow rules it fires.

    Slow: distinct failed ports on one target, distinct failed targets on one port, or distinct failed pairs,
    within the long window, for a scan that never made a short-window rule (the random walk, which has no
    window, does not make a scan fast)."""
    by_target = detail.failed_by_target.get(target)
    if by_target is None or port not in by_target:
        if detail.failed_pairs >= config.max_pairs_per_source:
            return []
        detail.failed_pairs += 1
    if by_target is None:
        by_target = detail.failed_by_target[target] = {}
    when = by_target[port] = max(ts, by_target.get(port, ts))
    by_port = detail.failed_by_port.setdefault((transport, port), {})
    by_port[target] = max(when, by_port.get(target, when))
    rules = detail.rules
    fired: list[str] = []
    if ("T1046-VERTICAL" not in rules and len(by_target) >= config.port_scan_ports
            and densest(by_target.values(), ts, config.window) >= config.port_scan_ports):
        fired.append("T1046-VERTICAL")
    if ("T1046-HORIZONTAL" not in rules and len(by_port) >= config.address_scan_targets
            and densest(by_port.values(), ts, config.window) >= config.address_scan_targets):
        fired.append("T1046-HORIZONTAL")
    if not fired and "T1046-SLOW" not in rules and _FAST_RULES.isdisjoint(rules) and (
            detail.failed_pairs >= config.slow_scan_pairs
            or (len(by_target) >= config.slow_port_scan_ports
                and densest(by_target.values(), ts, config.slow_window) >= config.slow_port_scan_ports)
            or (len(by_port) >= config.slow_address_scan_targets
                and densest(by_port.values(), ts, config.slow_window) >= config.slow_address_scan_targets)):
        fired.append("T1046-SLOW")
    return fired


def dominated(track: Track) -> bool:
    """Whether a failed outbound contact of the track (the one being judged, counted) is evidence: while the
    source's failed and half-open contacts are at least half of all its contacts. A host using the internet
    fails a few first contacts (an absent server, a blocked port) among many working ones, and a busy resolver
    or mail relay many among very many; those are counted (:attr:`~sensor.detect.evidence.Track.outbound_failed`)
    and are no evidence, so they neither add up to a sweep nor complete one with an internal failure. A
    scanner's contacts are mostly failures."""
    detail = track.detail
    failed = track.outbound_failed + 1 + (0 if detail is None else detail.failed + detail.half_open)
    return failed * 2 >= track.probes


def outbound_rules(fired: list[str]) -> list[str]:
    """The rules an outbound contact fired that count: all but the slow rules. Neither they nor the random walk
    judge outbound contacts: their premise, that a benign source's first contacts mostly succeed and that its
    failures are rare over a day, holds for a site's own hosts, not for the internet (Bro's own TRW judged
    inbound connections only)."""
    return [rule for rule in fired if rule != "T1046-SLOW"]


def distinct_pairs(config: DetectionConfig, detail: Evidence, pairs: dict[tuple[IPAddress, int], float],
                   target: IPAddress, port: int, ts: float, threshold: int, rule: str) -> list[str]:
    """Remember one (target, port) contact of a kind at ``ts``; ``rule`` when ``threshold`` distinct ones fall
    within one short window around it (counted only until the rule is part of the incident)."""
    key = (target, port)
    if key not in pairs and len(pairs) >= config.max_pairs_per_source:
        return []
    pairs[key] = max(ts, pairs.get(key, ts))
    if rule not in detail.rules and len(pairs) >= threshold and densest(pairs.values(), ts, config.window) >= threshold:
        return [rule]
    return []


def prune_failed(detail: Evidence, cutoff: float) -> None:
    """Forget failed contacts older than ``cutoff`` (the long window behind the correlator's clock)."""
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
