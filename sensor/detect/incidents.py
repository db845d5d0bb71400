"""What an incident says: its action, its main finding, its risk and confidence, and the alert that
reports one update of it. Pure functions of a track; the correlator decides when an update is due."""

from __future__ import annotations

import math

from sensor.alerts.alert import Alert
from sensor.alerts.catalogue import RULES, Action
from sensor.detect.evidence import Track
from sensor.detect.scans import SCAN_RULES

_MDNS_ACTIONS = (
    ("T1046-MDNS-DECOY", Action.MDNS_DECOY_LOOKUP),
    ("T1046-MDNS-SENSITIVE", Action.MDNS_SERVICE_BROWSE),
    ("T1046-MDNS-MANY-TYPES", Action.MDNS_SERVICE_BROWSE),
    ("T1046-MDNS-LEGACY", Action.MDNS_SERVICE_BROWSE),
    ("T1046-MDNS-ENUM", Action.MDNS_SERVICE_ENUMERATION),
)
_ZEEK_RULES = ("T1046-ZEEK-DETECTION", "T1046-ZEEK-NOTICE")
MAIN_FINDING: dict[Action, tuple[str, ...]] = {
    Action.PORT_SCAN: ("T1046-STEALTH", "T1046-VERTICAL", "T1046-HALF-OPEN", "T1046-SLOW", *_ZEEK_RULES,
                       "T1046-TRW", "T1046-HONEYPORT"),
    Action.ADDRESS_SCAN: ("T1046-STEALTH", "T1046-HORIZONTAL", "T1046-SLOW", "T1046-TRW", *_ZEEK_RULES,
                          "T1046-HALF-OPEN", "T1046-HONEYPORT"),
    Action.NETWORK_SCAN: ("T1046-TRW", "T1046-HORIZONTAL", "T1046-VERTICAL", "T1046-SLOW", *_ZEEK_RULES,
                          "T1046-STEALTH", "T1046-HALF-OPEN", "T1046-HONEYPORT"),
    Action.HONEYPORT_PROBE: ("T1046-HONEYPORT",),
    Action.MDNS_DECOY_LOOKUP: ("T1046-MDNS-DECOY",),
    Action.MDNS_SERVICE_BROWSE: ("T1046-MDNS-SENSITIVE", "T1046-MDNS-MANY-TYPES", "T1046-MDNS-LEGACY"),
    Action.MDNS_SERVICE_ENUMERATION: ("T1046-MDNS-ENUM",),
}
"""For each action, the rules that name an incident's main finding, strongest first (docs/alerts.md)."""


def action_of(track: Track) -> Action:
    """What the scanner did, from every rule of its incident and its shape (targets by ports)."""
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


def main_finding(track: Track, action: Action) -> str:
    """The rule that names the incident: the strongest of its rules for its action, not the latest."""
    rules = track.evidence().rules
    for rule in MAIN_FINDING[action]:
        if rule in rules:
            return rule
    return next(iter(rules))


def risk_of(track: Track) -> tuple[int, str]:
    """(risk score 0-100, confidence ``low``/``medium``/``high``) of the incident."""
    detail = track.evidence()
    rules = detail.rules
    base = max(RULES[rule].risk for rule in rules)
    independent = len(detail.sources) - 1
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


def incident_alert(track: Track, now: float, sample: int, *, closed: bool) -> Alert:
    """The next update of the track's incident (its update number moves on)."""
    detail = track.evidence()
    detail.update += 1
    targets, ports, probes, failed = track.counts()
    risk, confidence = risk_of(track)
    action = action_of(track)
    return Alert(
        incident_id=detail.incident_id,
        update=detail.update,
        ts=now,
        action=action,
        rule=RULES[main_finding(track, action)],
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
        transports=tuple(detail.transports),
        source_port=detail.first_peer if probes == 1 and targets == 1 and ports == 1 else None,
        aliases=track.aliases,
        cloud=tuple(detail.cloud),
    )
