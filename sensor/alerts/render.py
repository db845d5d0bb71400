"""Alerts → JSON documents: ECS (default) and OCSF Detection Finding (class 2004)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from sensor.alerts.alert import Alert

PRODUCT = "t1046-sensor"
VENDOR = "t1046-sensor project"
VERSION = "0.1.0"
_THREAT = {
    "framework": "MITRE ATT&CK",
    "technique": {
        "id": ["T1046"],
        "name": ["Network Service Discovery"],
        "reference": ["https://attack.mitre.org/techniques/T1046/"],
    },
    "tactic": {
        "id": ["TA0007"],
        "name": ["Discovery"],
        "reference": ["https://attack.mitre.org/tactics/TA0007/"],
    },
}
_SEVERITY_NAMES = {1: "low", 2: "medium", 3: "high", 4: "critical"}


def rfc3339(ts: float) -> str:
    """RFC 3339 UTC with microseconds: ``2026-11-28T10:00:00.123456Z``."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def printable(data: bytes) -> str:
    """Attacker-supplied bytes as safe text: printable ASCII kept, backslash and everything else as ``\\xNN``."""
    return "".join(chr(byte) if 0x20 <= byte < 0x7F and byte != 0x5C else f"\\x{byte:02x}" for byte in data)


def message(alert: Alert) -> str:
    """One human sentence about the incident."""
    targets = f"{alert.distinct_targets} target{'s' if alert.distinct_targets != 1 else ''}"
    ports = f"{alert.distinct_ports} port{'s' if alert.distinct_ports != 1 else ''}"
    what = {
        "port_scan": f"scanned {ports} on {alert.target or targets}",
        "address_scan": f"swept {targets} on {ports}",
        "network_scan": f"probed {targets} on {ports}",
        "honeyport_probe": f"touched honeyports ({alert.honeyport_hits} hit{'s' if alert.honeyport_hits != 1 else ''}"
                           f" on {ports})",
        "mdns_service_enumeration": "enumerated the service types advertised over mDNS",
        "mdns_service_browse": f"browsed mDNS for {', '.join(alert.mdns_names[:3]) or 'services'}",
        "mdns_decoy_lookup": f"looked up mDNS decoy {', '.join(alert.mdns_names[:1])}",
    }[alert.action.value]
    scan = alert.action.value in ("port_scan", "address_scan", "network_scan")
    failed = f", {alert.failed} of {alert.probes} probes failed" if scan and alert.probes else ""
    authorized = f" (authorized: {alert.authorized})" if alert.authorized else ""
    return f"{alert.scanner} {what}{failed}{authorized}."


def to_ecs(alert: Alert, observer: str) -> dict[str, Any]:
    """The ECS document of an alert (docs/alerts.md, docs/alert.schema.json)."""
    authorized = alert.authorized is not None
    tags = ["t1046", alert.action.value] + (["authorized_scanner"] if authorized else [])
    document: dict[str, Any] = {
        "@timestamp": rfc3339(alert.ts),
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
            "start": rfc3339(alert.first_seen),
            "end": rfc3339(alert.last_seen),
            "module": "t1046",
            "dataset": "t1046.alert",
        },
        "threat": _THREAT,
        "rule": {
            "id": alert.rule.id,
            "name": alert.rule.name,
            "description": alert.rule.description,
            "category": "Network Service Discovery",
            "ruleset": PRODUCT,
        },
        "source": {"ip": str(alert.scanner)},
        "observer": {"name": observer, "product": PRODUCT, "vendor": VENDOR, "type": "ids", "version": VERSION},
        "t1046": {
            "incident_id": alert.incident_id,
            "update": alert.update,
            "closed": alert.closed,
            "severity_name": _SEVERITY_NAMES[alert.severity],
            "confidence": alert.confidence,
            "rules": list(alert.rules),
            "evidence_sources": list(alert.evidence_sources),
            "counts": {
                "probes": alert.probes,
                "failed": alert.failed,
                "half_open": alert.half_open,
                "distinct_ports": alert.distinct_ports,
                "distinct_hosts": alert.distinct_targets,
                "honeyport_hits": alert.honeyport_hits,
            },
            "sample": {
                "targets": [str(t) for t in alert.targets],
                "ports": list(alert.ports),
                "mdns_names": list(alert.mdns_names),
                "honeyport_profiles": list(alert.honeyport_profiles),
                "honeyport_nodes": list(alert.honeyport_nodes),
                "honeyport_payloads": [printable(payload) for payload in alert.honeyport_payloads],
            },
            "zeek": {"uids": list(alert.uids), "notes": list(alert.zeek_notes)},
        },
    }
    if alert.target is not None:
        document["destination"] = {"ip": str(alert.target)}
        if alert.distinct_ports == 1 and alert.ports:
            document["destination"]["port"] = alert.ports[0]
    if authorized:
        document["t1046"]["authorized"] = {"reason": alert.authorized}
    return document


def to_ocsf(alert: Alert, observer: str) -> dict[str, Any]:
    """The OCSF 1.1 Detection Finding (class_uid 2004) of an alert."""
    severity_id = alert.severity + 1
    return {
        "class_uid": 2004,
        "class_name": "Detection Finding",
        "category_uid": 2,
        "category_name": "Findings",
        "activity_id": 1 if alert.update == 1 else 2,
        "activity_name": "Create" if alert.update == 1 else "Update",
        "type_uid": 200401 if alert.update == 1 else 200402,
        "time": int(alert.ts * 1000),
        "severity_id": severity_id,
        "severity": _SEVERITY_NAMES[alert.severity].capitalize(),
        "status_id": 1,
        "message": message(alert),
        "metadata": {
            "version": "1.1.0",
            "uid": alert.event_id,
            "correlation_uid": alert.incident_id,
            "product": {"name": PRODUCT, "vendor_name": VENDOR, "version": VERSION},
        },
        "finding_info": {
            "uid": alert.incident_id,
            "title": alert.rule.name,
            "desc": alert.rule.description,
            "types": [alert.action.value],
            "first_seen_time": int(alert.first_seen * 1000),
            "last_seen_time": int(alert.last_seen * 1000),
            "analytic": {"uid": alert.rule.id, "name": alert.rule.name, "type_id": 1, "type": "Rule"},
            "attacks": [{
                "version": "16",
                "technique": {"uid": "T1046", "name": "Network Service Discovery"},
                "tactic": {"uid": "TA0007", "name": "Discovery"},
            }],
        },
        "risk_score": alert.risk_score,
        "confidence": alert.confidence.capitalize(),
        "src_endpoint": {"ip": str(alert.scanner)},
        "observer": {"name": observer},
        "unmapped": {"t1046": {"action": alert.action.value, "rules": list(alert.rules),
                               "probes": alert.probes, "distinct_ports": alert.distinct_ports,
                               "distinct_hosts": alert.distinct_targets,
                               "honeyport_nodes": list(alert.honeyport_nodes),
                               "authorized": alert.authorized}},
    }


RENDERERS = {"ecs": to_ecs, "ocsf": to_ocsf}


def render_document(alert: Alert, observer: str, fmt: str = "ecs") -> bytes:
    """An alert's JSON document in the given format (``ecs`` or ``ocsf``), without a newline."""
    return orjson.dumps(RENDERERS[fmt](alert, observer))


def render_line(alert: Alert, observer: str, fmt: str = "ecs") -> bytes:
    """One JSON line (with its newline) for an alert in the given format."""
    return render_document(alert, observer, fmt) + b"\n"
