"""Alerts → JSON documents: ECS (default) and OCSF Detection Finding (class 2004).

Owns the mapping of an :class:`~sensor.alerts.alert.Alert` onto the field definitions of one ECS release
(:data:`ECS_VERSION`) and one OCSF release (:data:`OCSF_VERSION`); docs/alerts.md maps every field. It renders
only what the Alert says: it decides nothing about the incident and reads no clock.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import communityid
import orjson

from sensor.alerts.alert import Alert
from sensor.alerts.catalogue import RULES
from sensor.alerts.headline import message
from sensor.alerts.identity import ecs_mac, related_fields, source_fields
from sensor.observations import CloudIdentity, IPAddress, Transport
from sensor.text import visible_document

PRODUCT = "t1046-sensor"
VENDOR = "t1046-sensor project"
VERSION = "0.1.0"
ECS_VERSION = "9.3.0"
"""The ECS release whose field definitions the ECS documents follow (``ecs.version``)."""
OCSF_VERSION = "1.1.0"
"""The OCSF release whose Detection Finding schema the OCSF documents follow (``metadata.version``)."""
_SEVERITY_NAMES = {1: "low", 2: "medium", 3: "high", 4: "critical"}
_CONFIDENCE_IDS = {"low": 1, "medium": 2, "high": 3}
_IANA_NUMBERS = {"tcp": 6, "udp": 17, "icmp": 1, "ipv6-icmp": 58}
"""IANA protocol numbers of the transports an alert can name (ECS ``network.iana_number``, OCSF ``protocol_num``)."""
_COMMUNITY_ID_PROTOCOLS = {Transport.TCP: communityid.PROTO_TCP, Transport.UDP: communityid.PROTO_UDP}


def rfc3339(ts: float) -> str:
    """RFC 3339 UTC with microseconds: ``2026-11-28T10:00:00.123456Z``."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _ms(ts: float) -> int:
    """OCSF ``timestamp_t``: milliseconds since the epoch."""
    return round(ts * 1000)


def printable(data: bytes) -> str:
    """Attacker-supplied bytes as safe text: printable ASCII kept, backslash and everything else as ``\\xNN``."""
    return "".join(chr(byte) if 0x20 <= byte < 0x7F and byte != 0x5C else f"\\x{byte:02x}" for byte in data)


def emitted(alert: Alert) -> float:
    """When the sensor emitted the update: the live pipeline's wall time (:attr:`Alert.created`).

    Without one (``replay``) it is the log time of the emission: the correlator's clock, or the update's newest
    evidence where that clock is held back behind it (``detection.lateness``), for the sensor cannot have
    emitted an update before it read the evidence in it.
    """
    return alert.created if alert.created is not None else max(alert.ts, alert.last_seen)


def single_port(alert: Alert) -> int | None:
    """The one target port of an incident with a single target and port."""
    return alert.ports[0] if alert.target is not None and alert.distinct_ports == 1 and alert.ports else None


def transport(alert: Alert) -> str | None:
    """The IANA keyword of the evidence's one transport (``tcp``, ``udp``, ``icmp``, ``ipv6-icmp``), if one."""
    if len(alert.transports) != 1:
        return None
    if alert.transports[0] is Transport.ICMP and family(alert) == 6:
        return "ipv6-icmp"
    return alert.transports[0].value


def community_id(alert: Alert) -> str | None:
    """The Community ID (v1, seed 0, as Zeek's community-id logging writes it) of a one-connection incident.

    Defined when the Alert names the connection's 5-tuple: the scanner's port (:attr:`Alert.source_port`),
    a single target and port, and a single TCP or UDP transport; ``None`` otherwise.
    """
    port = single_port(alert)
    if alert.scanner is None or alert.source_port is None or port is None or alert.target is None or len(
            alert.transports) != 1:
        return None
    protocol = _COMMUNITY_ID_PROTOCOLS.get(alert.transports[0])
    if protocol is None:
        return None
    flow = communityid.FlowTuple(protocol, str(alert.scanner), str(alert.target), alert.source_port, port)
    value: str | None = communityid.CommunityID().calc(flow)
    return value


def family(alert: Alert) -> int:
    """The IP version of the evidence: the scanner's (or, for an aggregate, its first target's or source's)."""
    known: tuple[IPAddress, ...] = (alert.scanner,) if alert.scanner is not None else (
        *alert.source_sample, *alert.targets)
    return known[0].version if known else 4


def related_ips(alert: Alert) -> list[str]:
    """The scanner (or an aggregate's sampled sources), its other addresses and the sampled targets, each once,
    scanner first."""
    scanners = (alert.scanner,) if alert.scanner is not None else alert.source_sample
    return list(dict.fromkeys([*(str(scanner) for scanner in scanners), *(str(alias) for alias in alert.aliases),
                               *(str(target) for target in alert.targets)]))


def _identity(origin: CloudIdentity) -> dict[str, str]:
    """One cloud identity of the ``t1046.cloud`` sample: its non-empty fields."""
    return {name: value for name, value in (
        ("provider", origin.provider), ("account", origin.account), ("region", origin.region), ("zone", origin.zone),
        ("instance", origin.instance), ("interface", origin.interface), ("network", origin.network)) if value}


def cloud_fields(alert: Alert) -> dict[str, Any]:
    """ECS ``cloud.*`` and ``host.*`` of the scanner's interface or instance, from the first cloud identity a flow
    record named (the others are in ``t1046.cloud``); empty without one."""
    if not alert.cloud:
        return {}
    origin = alert.cloud[0]
    cloud: dict[str, Any] = {"provider": origin.provider}
    if origin.account:
        cloud["project" if origin.provider == "gcp" else "account"] = {"id": origin.account}
    if origin.region:
        cloud["region"] = origin.region
    if origin.zone:
        cloud["availability_zone"] = origin.zone
    if origin.instance:
        cloud["instance"] = {"name" if origin.provider == "gcp" else "id": origin.instance}
    fields: dict[str, Any] = {"cloud": cloud}
    host: dict[str, Any] = {}
    mac = ecs_mac(origin.interface) if origin.provider == "azure" else None
    if origin.instance or (origin.interface and mac is None):
        host["id"] = origin.instance or origin.interface
    if mac is not None:
        host["mac"] = [mac]
    if host:
        fields["host"] = host
    return fields


def identity_block(alert: Alert) -> dict[str, Any]:
    """``t1046.identity``: the time the identity is of (the newest evidence) and each fact with its source,
    sightings and the span it was taken to hold."""
    return {"at": rfc3339(alert.last_seen),
            "facts": [{"kind": fact.kind, "value": fact.value, "source": fact.source,
                       "first_seen": rfc3339(fact.first_seen), "last_seen": rfc3339(fact.last_seen),
                       "valid_from": rfc3339(fact.valid_from), "valid_until": rfc3339(fact.valid_until)}
                      for fact in alert.identity]}


def history_block(alert: Alert) -> dict[str, Any] | None:
    """``t1046.history``: whether the sensor knew the scanner before its evidence, since when, and its usual
    peers and ports; None for an aggregate of many sources."""
    history = alert.history
    if history is None:
        return None
    return {"seen_before": history.seen_before, "first_seen": rfc3339(history.first_seen),
            "seconds_before": round(max(0.0, history.evidence_began - history.first_seen), 3),
            "incidents_before": history.incidents_before,
            "usual_peers": [{"ip": str(target), "transport": transport.value, "port": port}
                            for target, transport, port in history.peers]}


def evidence(alert: Alert) -> dict[str, Any]:
    """The ``t1046`` object: the incident's evidence (ECS's custom field set; OCSF's ``unmapped.t1046``)."""
    block: dict[str, Any] = {
        "incident_id": alert.incident_id,
        "update": alert.update,
        "closed": alert.closed,
        "severity_name": _SEVERITY_NAMES[alert.severity],
        "confidence": alert.confidence,
        "rules": list(alert.rules),
        "evidence_sources": list(alert.evidence_sources),
        "transports": [str(value) for value in alert.transports],
        "certainty": {
            "source": "proven" if alert.proven else "unproven",
            "proven_by": list(alert.proven_by),
            "unproven": list(alert.unproven),
            "lockstep_sources": [str(address) for address in alert.lockstep],
        },
        "counts": {
            "probes": alert.probes,
            "failed": alert.failed,
            "half_open": alert.half_open,
            "distinct_ports": alert.distinct_ports,
            "distinct_hosts": alert.distinct_targets,
            "honeyport_hits": alert.honeyport_hits,
            "honeyports": alert.honeyports_touched,
            "services_found": alert.services_found,
            "arp_addresses": alert.arp_asked,
        },
        "discovered": [{"ip": str(found.target), "port": found.port, "transport": found.transport.value,
                        "service": found.service} for found in alert.services],
        "sample": {
            "targets": [str(t) for t in alert.targets],
            "ports": list(alert.ports),
            "mdns_names": list(alert.mdns_names),
            "honeyport_profiles": list(alert.honeyport_profiles),
            "honeyport_nodes": list(alert.honeyport_nodes),
            "honeyport_payloads": [printable(payload) for payload in alert.honeyport_payloads],
            "honeyport_touches": [{"time": rfc3339(touch.ts), "ip": str(touch.target), "port": touch.port,
                                   "transport": touch.transport.value, "profile": touch.profile,
                                   "touch": touch.touch.value, "payload": printable(touch.payload)}
                                  for touch in alert.touches],
            "honeyport_touch_kinds": [touch.value for touch in alert.touch_kinds],
        },
        "zeek": {"uids": list(alert.uids), "notes": list(alert.zeek_notes)},
    }
    if alert.shape is not None:
        block["scan_shape"] = alert.shape.value
    if alert.aliases:
        block["scanner_aliases"] = [str(alias) for alias in alert.aliases]
    if alert.scanner is None:
        block["aggregate"] = {"sources": alert.sources, "sample": [str(source) for source in alert.source_sample]}
    if alert.cloud:
        block["cloud"] = [_identity(origin) for origin in alert.cloud]
    if alert.identity:
        block["identity"] = identity_block(alert)
    if (history := history_block(alert)) is not None:
        block["history"] = history
    if alert.authorized is not None:
        block["authorized"] = {"reason": alert.authorized}
    return block


def _threat() -> dict[str, Any]:
    """ECS ``threat.*``: MITRE ATT&CK T1046 under TA0007 (a new object per document: callers may mutate it)."""
    return {
        "framework": "MITRE ATT&CK",
        "technique": {"id": ["T1046"], "name": ["Network Service Discovery"],
                      "reference": ["https://attack.mitre.org/techniques/T1046/"]},
        "tactic": {"id": ["TA0007"], "name": ["Discovery"], "reference": ["https://attack.mitre.org/tactics/TA0007/"]},
    }


def to_ecs(alert: Alert, observer: str) -> dict[str, Any]:
    """The ECS document of an alert (docs/alerts.md, docs/alert.schema.json)."""
    authorized = alert.authorized is not None
    tags = ["t1046", alert.action.value] + (["authorized_scanner"] if authorized else [])
    source: dict[str, Any] = {} if alert.scanner is None else {"source": {"ip": str(alert.scanner)}}
    if alert.scanner is not None and alert.source_port is not None:
        source["source"]["port"] = alert.source_port
    if alert.scanner is not None:
        source["source"].update(source_fields(alert))
    network: dict[str, Any] = {"type": f"ipv{family(alert)}"}
    if (protocol := transport(alert)) is not None:
        network["transport"] = protocol
        network["iana_number"] = str(_IANA_NUMBERS[protocol])
    if (flow_id := community_id(alert)) is not None:
        network["community_id"] = flow_id
    document: dict[str, Any] = {
        "@timestamp": rfc3339(alert.last_seen),
        "ecs": {"version": ECS_VERSION},
        "message": message(alert),
        "tags": tags,
        "event": {
            "kind": "event" if authorized else "alert",
            "category": ["network", "intrusion_detection"],
            "type": ["info"],
            "action": alert.action.value,
            "id": alert.event_id,
            "severity": alert.severity,
            "risk_score": float(alert.risk_score),
            "created": rfc3339(emitted(alert)),
            "start": rfc3339(alert.first_seen),
            "end": rfc3339(alert.last_seen),
            "module": "t1046",
            "dataset": "t1046.alert",
        },
        "threat": _threat(),
        "rule": {
            "id": alert.rule.id,
            "name": alert.rule.name,
            "description": alert.rule.description,
            "category": "Network Service Discovery",
            "ruleset": PRODUCT,
        },
        **source,
        "network": network,
        "related": {"ip": related_ips(alert), **related_fields(alert)},
        "observer": {"name": observer, "product": PRODUCT, "vendor": VENDOR, "type": "ids", "version": VERSION},
        "t1046": evidence(alert),
        **cloud_fields(alert),
    }
    if alert.target is not None:
        document["destination"] = {"ip": str(alert.target)}
        if (port := single_port(alert)) is not None:
            document["destination"]["port"] = port
    return document


def _activity(alert: Alert) -> tuple[int, str]:
    """OCSF ``activity_id``/``activity_name``: Create for an incident's first update, Close for its final one."""
    if alert.update == 1:
        return 1, "Create"
    return (3, "Close") if alert.closed else (2, "Update")


def _analytic(rule_id: str) -> dict[str, Any]:
    rule = RULES[rule_id]
    return {"uid": rule.id, "name": rule.name, "desc": rule.description, "type_id": 1, "type": "Rule"}


def _ocsf_evidence(alert: Alert) -> dict[str, Any]:
    """The one ``evidences[]`` item: the scanner (``src_endpoint``; an aggregate's sampled sources in ``data``),
    its single target and the transport."""
    item: dict[str, Any] = {}
    if alert.scanner is not None:
        item["src_endpoint"] = {"ip": str(alert.scanner)}
        if alert.source_port is not None:
            item["src_endpoint"]["port"] = alert.source_port
        if alert.cloud:
            origin = alert.cloud[0]
            for key, value in (("instance_uid", origin.instance), ("interface_uid", origin.interface),
                               ("vpc_uid", origin.network), ("zone", origin.zone)):
                if value:
                    item["src_endpoint"][key] = value
    else:
        item["data"] = {"sources": alert.sources, "sample": [str(source) for source in alert.source_sample]}
    if alert.target is not None:
        item["dst_endpoint"] = {"ip": str(alert.target)}
        if (port := single_port(alert)) is not None:
            item["dst_endpoint"]["port"] = port
    if (protocol := transport(alert)) is not None:
        item["connection_info"] = {"protocol_name": protocol, "protocol_num": _IANA_NUMBERS[protocol],
                                   "direction_id": 0, "direction": "Unknown"}
    return item


def to_ocsf(alert: Alert, observer: str) -> dict[str, Any]:
    """The OCSF Detection Finding (class_uid 2004, :data:`OCSF_VERSION`) of an alert (docs/alerts.md)."""
    activity_id, activity_name = _activity(alert)
    observables = [] if alert.scanner is None else [{"name": "evidences[0].src_endpoint.ip", "type_id": 2,
                                                      "type": "IP Address", "value": str(alert.scanner)}]
    if alert.target is not None:
        observables.append({"name": "evidences[0].dst_endpoint.ip", "type_id": 2, "type": "IP Address",
                            "value": str(alert.target)})
    unmapped = evidence(alert)
    if (flow_id := community_id(alert)) is not None:
        unmapped["community_id"] = flow_id
    authorized = alert.authorized is not None
    return {
        "class_uid": 2004,
        "class_name": "Detection Finding",
        "category_uid": 2,
        "category_name": "Findings",
        "activity_id": activity_id,
        "activity_name": activity_name,
        "type_uid": 200400 + activity_id,
        "type_name": f"Detection Finding: {activity_name}",
        "time": _ms(alert.last_seen),
        "start_time": _ms(alert.first_seen),
        "end_time": _ms(alert.last_seen),
        "severity_id": alert.severity + 1,
        "severity": _SEVERITY_NAMES[alert.severity].capitalize(),
        "risk_score": alert.risk_score,
        "risk_level_id": alert.severity,
        "risk_level": _SEVERITY_NAMES[alert.severity].capitalize(),
        "confidence_id": _CONFIDENCE_IDS[alert.confidence],
        "confidence": alert.confidence.capitalize(),
        "status_id": 3 if authorized else 1,
        "status": "Suppressed" if authorized else "New",
        "message": message(alert),
        "metadata": {
            "version": OCSF_VERSION,
            "uid": alert.event_id,
            "correlation_uid": alert.incident_id,
            "logged_time": _ms(emitted(alert)),
            "product": {"name": PRODUCT, "vendor_name": VENDOR, "version": VERSION},
            "loggers": [{"name": observer}],
        },
        "finding_info": {
            "uid": alert.incident_id,
            "title": alert.rule.name,
            "desc": alert.rule.description,
            "types": [alert.action.value],
            "first_seen_time": _ms(alert.first_seen),
            "last_seen_time": _ms(alert.last_seen),
            "data_sources": list(alert.evidence_sources),
            "analytic": _analytic(alert.rule.id),
            "related_analytics": [_analytic(rule_id) for rule_id in alert.rules if rule_id != alert.rule.id],
            "attacks": [{
                "version": "16",
                "technique": {"uid": "T1046", "name": "Network Service Discovery"},
                "tactic": {"uid": "TA0007", "name": "Discovery"},
            }],
        },
        "evidences": [_ocsf_evidence(alert)],
        "observables": observables,
        "unmapped": {"t1046": unmapped},
    }


RENDERERS = {"ecs": to_ecs, "ocsf": to_ocsf}


def render_document(alert: Alert, observer: str, fmt: str = "ecs") -> bytes:
    """An alert's JSON document in the given format (``ecs`` or ``ocsf``), its strings escaped, no newline."""
    return orjson.dumps(visible_document(RENDERERS[fmt](alert, observer)))


def render_line(alert: Alert, observer: str, fmt: str = "ecs") -> bytes:
    """One JSON line (with its newline) for an alert in the given format."""
    return render_document(alert, observer, fmt) + b"\n"
