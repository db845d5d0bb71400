"""Azure flow logs: network security group (NSG) flow logs, versions 1 and 2, and virtual network (VNet) flow logs,
as Network Watcher writes them to a storage account (``PT1H.json``: ``{"records": [...]}``, one record a line).

A flow tuple counts both directions of one flow (version 2 and VNet: packets and bytes each way) at one state:
``B`` begin (no counts), ``C`` continuing, ``E`` end, and VNet's ``D`` denied; NSG's decision ``A``/``D``. Its
time stamp is the event time (seconds in NSG logs, milliseconds in VNet logs). A denied tuple is a dropped probe; a
begin-of-flow or version-1 tuple counts nothing and waits for the flow's counts. An outbound tuple (``O``) was
captured at the source's network interface: its MAC address and the resource that logged it name the scanner.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from sensor.flows.records import PROTOCOLS, FlowRecord, Verdict
from sensor.observations import CloudIdentity, Transport
from sensor.zeek.fields import address

_LETTERS = {"T": 6, "U": 17}


def looks_like(record: Mapping[str, Any]) -> bool:
    """Whether a JSON object is one record of an NSG or VNet flow log."""
    return (isinstance(record.get("properties"), dict) and "flows" in record["properties"]) or isinstance(
        record.get("flowRecords"), dict)


def _identity(resource: str) -> tuple[str, str, str]:
    """(subscription, resource name, network security group or network interface) of a resource id."""
    parts = resource.strip("/").split("/")
    upper = [part.upper() for part in parts]
    def after(name: str) -> str:
        return parts[upper.index(name) + 1] if name in upper[:-1] else ""
    return (after("SUBSCRIPTIONS"), parts[-1] if len(parts) > 1 else "",
            after("NETWORKSECURITYGROUPS") or after("NETWORKINTERFACES"))


def tuples(record: Mapping[str, Any]) -> Iterator[tuple[str, str, str]]:
    """(MAC address, resource id, flow tuple) of every tuple of one record."""
    if isinstance(record.get("flowRecords"), dict):
        for flow in record["flowRecords"].get("flows", []):
            for group in flow.get("flowGroups", []):
                for text in group.get("flowTuples", []):
                    yield str(record.get("macAddress", "")), str(record.get("targetResourceID", "")), text
        return
    for rule in record["properties"]["flows"]:
        for flow in rule.get("flows", []):
            for text in flow.get("flowTuples", []):
                yield str(flow.get("mac", record.get("macAddress", ""))), str(record.get("resourceId", "")), text


def parse(mac: str, resource: str, text: str) -> FlowRecord | None:
    """The flow record of one tuple; None for a protocol a scan detector does not judge. Raises
    ``ValueError`` for a tuple it cannot read."""
    if not isinstance(text, str):
        raise ValueError(f"{text!r} is not a flow tuple")
    values = text.split(",")
    if len(values) not in (8, 13):
        raise ValueError(f"{len(values)} values in a flow tuple (8 or 13 expected)")
    stamp, source, target, source_port, target_port, protocol, direction, decision = values[:8]
    vnet = protocol.isdigit()
    transport = PROTOCOLS.get(int(protocol) if vnet else _LETTERS.get(protocol, -1))
    if transport is None:
        return None
    if direction not in ("I", "O"):
        raise ValueError(f"direction {direction!r} is neither I nor O")
    state = decision if vnet else (values[8] if len(values) == 13 else "")
    denied = state == "D" if vnet else decision == "D"
    counts = [int(value) if value else 0 for value in values[9:13]] if len(values) == 13 else []
    counted = bool(counts) and state in ("C", "E")
    ts = int(stamp) / (1000 if vnet else 1)
    if transport is Transport.ICMP:
        ports = (8, 0)
    else:
        ports = (int(source_port), int(target_port))
        if not all(0 <= port <= 0xFFFF for port in ports):
            raise ValueError("port out of range")
    origin = None
    if direction == "O":
        subscription, _, network = _identity(resource)
        origin = CloudIdentity("azure", subscription, "", "", "", mac, network)
    return FlowRecord(ts, transport, address(source), ports[0], address(target), ports[1],
                      Verdict.DROP if denied else Verdict.ACCEPT,
                      packets=counts[0] if counted else int(denied), bytes=counts[1] if counted else 0,
                      reply_packets=counts[2] if counted else None, reply_bytes=counts[3] if counted else None,
                      reporter=mac, origin=origin, new=denied or counted)
