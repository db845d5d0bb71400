"""What an incident says: its action, its main finding, its risk and confidence, how sure it is of its
source, what the scanner found, and the alert that reports one update of it. Pure functions of a track;
the correlator decides when an update is due (:mod:`sensor.detect.lifecycle`)."""

from __future__ import annotations

import math

from sensor.alerts.alert import Alert, Answered, IdentityFact, Profile, Touched
from sensor.alerts.catalogue import RULES, Action
from sensor.detect.evidence import Track
from sensor.detect.scans import SCAN_RULES
from sensor.observations import key_address

_MDNS_ACTIONS = (
    ("T1046-MDNS-DECOY", Action.MDNS_DECOY_LOOKUP),
    ("T1046-MDNS-SENSITIVE", Action.MDNS_SERVICE_BROWSE),
    ("T1046-MDNS-MANY-TYPES", Action.MDNS_SERVICE_BROWSE),
    ("T1046-MDNS-LEGACY", Action.MDNS_SERVICE_BROWSE),
    ("T1046-MDNS-ENUM", Action.MDNS_SERVICE_ENUMERATION),
)
_ZEEK_RULES = ("T1046-ZEEK-DETECTION", "T1046-ZEEK-NOTICE")
HONEYPORT_RULES = frozenset({"T1046-HONEYPORT", "T1046-HONEYPORTS", "T1046-HONEYPORT-MANY-SOURCES"})
"""Rules whose evidence is honeyport touches: their words are touches of named decoys, never failures."""
MAIN_FINDING: dict[Action, tuple[str, ...]] = {
    Action.PORT_SCAN: ("T1046-HONEYPORTS", "T1046-STEALTH", "T1046-VERTICAL", "T1046-HALF-OPEN", "T1046-SLOW",
                       *_ZEEK_RULES, "T1046-TRW", "T1046-HONEYPORT"),
    Action.ADDRESS_SCAN: ("T1046-HONEYPORTS", "T1046-STEALTH", "T1046-HORIZONTAL", "T1046-SLOW", "T1046-TRW",
                          *_ZEEK_RULES, "T1046-HALF-OPEN", "T1046-HONEYPORT"),
    Action.NETWORK_SCAN: ("T1046-HONEYPORTS", "T1046-TRW", "T1046-HORIZONTAL", "T1046-VERTICAL", "T1046-SLOW",
                          *_ZEEK_RULES, "T1046-STEALTH", "T1046-HALF-OPEN", "T1046-HONEYPORT"),
    Action.HONEYPORT_PROBE: ("T1046-HONEYPORTS", "T1046-HONEYPORT", "T1046-HONEYPORT-MANY-SOURCES"),
    Action.MDNS_DECOY_LOOKUP: ("T1046-MDNS-DECOY",),
    Action.MDNS_SERVICE_BROWSE: ("T1046-MDNS-SENSITIVE", "T1046-MDNS-MANY-TYPES", "T1046-MDNS-LEGACY"),
    Action.MDNS_SERVICE_ENUMERATION: ("T1046-MDNS-ENUM",),
}
"""For each action, the rules that name an incident's main finding, strongest first (docs/alerts.md): the one
table that decides every headline (``rule.*`` and ``message``)."""
ACTION_RANK = {
    Action.MDNS_SERVICE_ENUMERATION: 1,
    Action.MDNS_SERVICE_BROWSE: 2,
    Action.HONEYPORT_PROBE: 3,
    Action.MDNS_DECOY_LOOKUP: 3,
    Action.PORT_SCAN: 4,
    Action.ADDRESS_SCAN: 4,
    Action.NETWORK_SCAN: 4,
    Action.OUTBOUND_SCAN: 4,
}
"""How far an action goes: an incident whose action goes further (listing service types → browsing for
remote access → touching decoys → scanning) escalates; a scan's shape settling (port, address, network
scan) or its targets turning out to be mostly outside ``local_nets`` (an outbound scan) does not: the
severity of an outbound scan is its own (``outbound_severity``), and a rise in it escalates."""
LOCKSTEP_PROBES = 3
"""Probes two sources sent to the same services at the same moments before each counts as the other's
decoy (``nmap -D``)."""
_SHAPE_RULES = SCAN_RULES | {"T1046-HONEYPORTS"}
_TOUCH_RULES = frozenset({"T1046-HONEYPORT", "T1046-HONEYPORTS"})
UNPROVEN_TOUCH = 15
"""Risk a honeyport rule loses when nothing proves the toucher's address: its weight is that no legitimate
client touches a honeyport, which says nothing of a datagram or SYN that may bear another host's address."""
_STRONG_RULES = frozenset({"T1046-HONEYPORT", "T1046-HONEYPORTS", "T1046-MDNS-DECOY"})


def shape_of(track: Track) -> Action:
    """A scan's shape, from its targets by ports: a port, address or network scan."""
    detail = track.evidence()
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


def outbound(track: Track) -> bool:
    """True when the incident's targets lie mostly outside ``local_nets`` (or, with none counted, when Zeek
    reported an outbound scan)."""
    detail = track.evidence()
    return detail.outside * 2 > len(detail.targets) if detail.targets else detail.zeek_outbound


def action_of(track: Track) -> Action:
    """What the scanner did, from every rule of its incident and its shape (targets by ports); a scan of
    targets mostly outside ``local_nets`` is an outbound scan, whatever its shape."""
    detail = track.evidence()
    rules = detail.rules
    if not _SHAPE_RULES.isdisjoint(rules):
        return Action.OUTBOUND_SCAN if outbound(track) else shape_of(track)
    if not HONEYPORT_RULES.isdisjoint(rules):
        return Action.HONEYPORT_PROBE
    for rule, action in _MDNS_ACTIONS:
        if rule in rules:
            return action
    return detail.zeek_action or Action.NETWORK_SCAN


def main_finding(track: Track, action: Action) -> str:
    """The rule that names the incident: the strongest of its rules for its action (an outbound scan's: for its
    shape), not the latest."""
    rules = track.evidence().rules
    for rule in MAIN_FINDING[shape_of(track) if action is Action.OUTBOUND_SCAN else action]:
        if rule in rules:
            return rule
    return next(iter(rules))


def risk_of(track: Track, band: tuple[int, int]) -> tuple[int, str]:
    """(risk score 0-100, confidence ``low``/``medium``/``high``) of the incident; an outbound scan's risk score
    is held within ``band`` (the risk scores of ``outbound_severity``). Confidence is ``high`` only when some
    evidence proves the source address is the scanner's own; a honeyport touch whose source nothing proves
    weighs :data:`UNPROVEN_TOUCH` less."""
    detail = track.evidence()
    rules = detail.rules
    base = max(RULES[rule].risk - (UNPROVEN_TOUCH if rule in _TOUCH_RULES and not detail.proven else 0)
               for rule in rules)
    independent = len(detail.sources) - 1
    targets, ports, _, _ = track.counts()
    size = min(20, int(2 * math.log2(1 + targets * ports)))
    risk = min(100, base + 10 * independent + size + 5 * (len(rules) - 1))
    if action_of(track) is Action.OUTBOUND_SCAN:
        risk = min(max(risk, band[0]), band[1])
    if not _STRONG_RULES.isdisjoint(rules) or independent or len(rules) >= 3:
        confidence = "high"
    elif len(rules) >= 2 or not SCAN_RULES.isdisjoint(rules):
        confidence = "medium"
    else:
        confidence = "low"
    if confidence == "high" and not detail.proven:
        confidence = "medium"
    return risk, confidence


def lockstep_partners(track: Track) -> list[int]:
    """Keys of the sources that probed in lockstep with this one often enough to be its decoys (or it theirs)."""
    return sorted(key for key, count in track.evidence().lockstep.items() if count >= LOCKSTEP_PROBES)


def incident_alert(track: Track, now: float, sample: int, band: tuple[int, int], *, closed: bool,
                   identity: tuple[IdentityFact, ...] = (), history: Profile | None = None) -> Alert:
    """The next update of the track's incident (its update number moves on), naming its scanner by ``identity``
    and ``history``; ``band`` is the risk scores of an outbound scan (:func:`risk_of`)."""
    detail = track.evidence()
    detail.update += 1
    targets, ports, probes, failed = track.counts()
    risk, confidence = risk_of(track, band)
    action = action_of(track)
    partners = lockstep_partners(track)
    unproven = (*detail.doubt, "lockstep") if partners else tuple(detail.doubt)
    answered = sorted(detail.answered.items(), key=lambda item: (item[0][0].version, item[0][0], item[0][2]))
    touched = sorted(detail.touched.items(), key=lambda item: item[1][0])
    members = track.members()
    return Alert(
        incident_id=detail.incident_id,
        update=detail.update,
        ts=now,
        action=action,
        rule=RULES[main_finding(track, action)],
        shape=shape_of(track) if action is Action.OUTBOUND_SCAN else None,
        rules=tuple(detail.rules),
        scanner=track.scanner,
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
        source_port=detail.first_peer if probes == 1 and targets == 1 and ports == 1 and members is None else None,
        aliases=track.aliases,
        proven_by=tuple(detail.proof),
        unproven=unproven,
        lockstep=tuple(key_address(key) for key in partners[:sample]),
        services_found=len(detail.answered),
        services=tuple(Answered(target, transport, port, name)
                       for (target, transport, port), name in answered[:sample]),
        honeyports_touched=len(detail.touched),
        touch_kinds=tuple(detail.touch_kinds),
        touches=tuple(Touched(ts, target, transport, port, profile, touch, payload)
                      for (target, transport, port), (ts, profile, touch, payload) in touched[:sample]),
        arp_asked=detail.arp,
        sources=0 if members is None else len(members[0]),
        source_sample=() if members is None else tuple(members[1][:sample]),
        cloud=tuple(detail.cloud),
        identity=identity,
        history=history,
    )
