"""AWS VPC Flow Logs: the default (version 2) format and custom formats with the version 3-5 fields, as delivered
to S3 (a header line naming the fields, plain or gzip) or exported from CloudWatch Logs (each message after an
RFC 3339 stamp, or as JSON events); a format without a header is the default one unless the configuration names
it (``flows[].aws_fields``, AWS's own ``${field} …`` string).

A record is one direction of a flow on one network interface over its capture window: ``start`` is the event
time. ``pkt-srcaddr``/``pkt-dstaddr`` (the packet's own addresses behind a NAT gateway or a middlebox) are taken
before ``srcaddr``/``dstaddr`` where logged. A record captured leaving the source's interface (``flow-direction:
egress``, version 5) names that interface and instance: the scanner's identity in the alert. AWS logs no ICMP type,
so an ICMP flow is taken for an echo request (a ping sweep). ``NODATA`` and ``SKIPDATA`` records carry no flow.
"""

from __future__ import annotations

import re

from sensor.flows.records import PROTOCOLS, FlowRecord, Verdict
from sensor.observations import CloudIdentity, Transport
from sensor.zeek.fields import address

DEFAULT_FIELDS = ("version", "account-id", "interface-id", "srcaddr", "dstaddr", "srcport", "dstport", "protocol",
                  "packets", "bytes", "start", "end", "action", "log-status")
"""The default (version 2) format."""
KNOWN_FIELDS = frozenset({
    *DEFAULT_FIELDS, "vpc-id", "subnet-id", "instance-id", "tcp-flags", "type", "pkt-srcaddr", "pkt-dstaddr",
    "region", "az-id", "sublocation-type", "sublocation-id", "pkt-src-aws-service", "pkt-dst-aws-service",
    "flow-direction", "traffic-path", "ecs-cluster-arn", "ecs-cluster-name", "ecs-container-instance-arn",
    "ecs-container-instance-id", "ecs-container-id", "ecs-second-container-id", "ecs-service-name",
    "ecs-task-definition-arn", "ecs-task-arn", "ecs-task-id", "reject-reason", "resource-id",
    "encryption-status"})
"""Every field of versions 2-10 a custom format may name."""
_STAMP = re.compile(rb"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2}) ")
_VERDICTS = {"ACCEPT": Verdict.ACCEPT, "REJECT": Verdict.REJECT}


def fields_of(text: str) -> tuple[str, ...] | None:
    """The field names of a header line (``version account-id …``) or of a format string (``${version} …``);
    None when ``text`` is neither."""
    names = tuple(name.removeprefix("${").removesuffix("}") for name in text.split())
    return names if names and "srcaddr" in names and set(names) <= KNOWN_FIELDS else None


def message(line: bytes) -> bytes:
    """A line's record: what follows the RFC 3339 stamp of a CloudWatch Logs export, else the line itself."""
    found = _STAMP.match(line)
    return line[found.end():] if found else line


def looks_like(line: bytes) -> bool:
    """Whether a line is a header, or a record of the default format."""
    text = message(line).decode("ascii", "replace")
    if fields_of(text) is not None:
        return True
    values = text.split()
    return (len(values) == len(DEFAULT_FIELDS) and values[0].isdigit() and values[2].startswith("eni-")
            and values[-1] in ("OK", "NODATA", "SKIPDATA"))


def parse(values: list[str], names: tuple[str, ...]) -> FlowRecord | None:
    """The flow record of one line's ``values`` in the format ``names``; None for a record without a flow (NODATA,
    SKIPDATA) or of a protocol a scan detector does not judge. Raises ``ValueError``/``KeyError`` for a bad one."""
    if len(values) != len(names):
        raise ValueError(f"{len(values)} fields where the format has {len(names)}")
    record = {name: value for name, value in zip(names, values, strict=True) if value != "-"}
    if record.get("log-status", "OK") != "OK" or "srcaddr" not in record:
        return None
    transport = PROTOCOLS.get(int(record["protocol"]))
    if transport is None:
        return None
    verdict = _VERDICTS.get(record.get("action", ""))
    if verdict is None:
        raise ValueError(f"action {record.get('action')!r} is neither ACCEPT nor REJECT")
    source = address(record.get("pkt-srcaddr", record["srcaddr"]))
    target = address(record.get("pkt-dstaddr", record["dstaddr"]))
    if transport is Transport.ICMP:
        source_port, target_port = 8, 0
    else:
        source_port, target_port = int(record["srcport"]), int(record["dstport"])
    if not (0 <= source_port <= 0xFFFF and 0 <= target_port <= 0xFFFF):
        raise ValueError("port out of range")
    flags = int(record["tcp-flags"]) if "tcp-flags" in record and transport is Transport.TCP else None
    origin = None
    if record.get("flow-direction") == "egress":
        origin = CloudIdentity("aws", record.get("account-id", ""), record.get("region", ""),
                               record.get("az-id", ""), record.get("instance-id", ""), record.get("interface-id", ""),
                               record.get("vpc-id", ""))
    start = float(int(record["start"]))
    return FlowRecord(start, transport, source, source_port, target, target_port, verdict,
                      packets=int(record.get("packets", "0")), bytes=int(record.get("bytes", "0")), flags=flags,
                      end=float(int(record["end"])) if "end" in record else None,
                      reporter=record.get("interface-id", ""), origin=origin)
