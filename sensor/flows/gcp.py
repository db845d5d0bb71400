"""Google Cloud VPC Flow Logs (and Firewall Rules Logging) as Cloud Logging exports them: one ``LogEntry`` JSON
object per line (a sink to Cloud Storage), or a JSON array of them (``gcloud logging read --format=json``).

A flow record (``jsonPayload.connection``, ``bytes_sent``, ``packets_sent``, ``start_time``) is one direction of a
flow as one side reported it (``reporter`` SRC or DEST: both sides of a flow inside a VPC report it, and the two are
counted once); ``start_time`` is the event time. A firewall rule's log (``jsonPayload.disposition``) counts no
packets: ``DENIED`` is a dropped probe, ``ALLOWED`` says nothing the flow records do not. ``src_instance`` names the
source's VM, project, region and zone: the scanner's identity in the alert.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sensor.flows.records import PROTOCOLS, FlowRecord, Verdict
from sensor.observations import CloudIdentity, Transport
from sensor.zeek.fields import address


def looks_like(record: Mapping[str, Any]) -> bool:
    """Whether a JSON object is a Cloud Logging entry of a flow or firewall log."""
    payload = record.get("jsonPayload")
    return isinstance(payload, dict) and isinstance(payload.get("connection"), dict)


def _time(value: Any) -> float:
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a time")
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def _count(payload: Mapping[str, Any], key: str) -> int:
    value = payload.get(key, 0)
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"{key}: {value!r} is not a count")
    return int(value)  # Cloud Logging writes int64 values as strings


def parse(entry: Mapping[str, Any]) -> FlowRecord | None:
    """The flow record of one LogEntry; None for a protocol a scan detector does not judge. Raises
    ``ValueError``/``KeyError``/``TypeError`` for an entry it cannot read."""
    payload = entry["jsonPayload"]
    connection = payload["connection"]
    transport = PROTOCOLS.get(int(connection.get("protocol", 0)))
    if transport is None:
        return None
    if transport is Transport.ICMP:
        source_port, target_port = 8, 0
    else:
        source_port, target_port = int(connection.get("src_port", 0)), int(connection.get("dest_port", 0))
    if not (0 <= source_port <= 0xFFFF and 0 <= target_port <= 0xFFFF):
        raise ValueError("port out of range")
    instance = payload.get("src_instance")
    origin = None
    if isinstance(instance, dict):
        vpc = payload.get("src_vpc")
        origin = CloudIdentity("gcp", str(instance.get("project_id", "")), str(instance.get("region", "")),
                               str(instance.get("zone", "")), str(instance.get("vm_name", "")), "",
                               str(vpc.get("vpc_name", "")) if isinstance(vpc, dict) else "")
    disposition = payload.get("disposition")
    if disposition is not None:  # a firewall rule's log: no counts
        denied = disposition == "DENIED"
        return FlowRecord(_time(entry.get("timestamp", payload.get("start_time"))), transport,
                          address(connection["src_ip"]), source_port, address(connection["dest_ip"]), target_port,
                          Verdict.DROP if denied else Verdict.ACCEPT, packets=1 if denied else 0, new=denied,
                          reporter=f"firewall/{payload.get('instance', {}).get('vm_name', '')}", origin=origin)
    start = _time(payload.get("start_time", entry.get("timestamp")))
    reporter = str(payload.get("reporter", ""))
    side = payload.get("src_instance" if reporter.startswith("SRC") else "dest_instance")
    return FlowRecord(start, transport, address(connection["src_ip"]), source_port, address(connection["dest_ip"]),
                      target_port, Verdict.ACCEPT, packets=_count(payload, "packets_sent"),
                      bytes=_count(payload, "bytes_sent"), end=_time(payload.get("end_time", payload.get(
                          "start_time", entry.get("timestamp")))),
                      reporter=f"{reporter}/{side.get('vm_name', '') if isinstance(side, dict) else ''}", origin=origin)
