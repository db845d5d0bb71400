"""Flow logs derived from a packet capture, in each provider's format: what AWS, Google Cloud and Azure would have
logged of the same traffic had each host been a cloud VM whose filter admits only what answers (docs/sources.md,
"Flow logs from the captures").

The aggregation (:func:`flows`): packets of IPv4/IPv6 unicast TCP, UDP and ICMP echo, per 5-tuple per direction
per capture window (``window`` seconds, aligned to multiples of it, as a provider's aggregation interval); a
record's start is its first packet's time (whole seconds), its end its last's; its packets, bytes (IP length) and
TCP flags (OR-ed) are those of its packets. The connection's originator is the sender of its first packet. Where
the target refused (a TCP reset or ICMP unreachable as the answer, nothing else) or was absent (no answer at all)
the originator's records are REJECT and the target's answers are not logged. Multicast and broadcast packets (no
VPC carries them) and the unicast answers to them are left out (a filter that rejects lets none
through); else every record is ACCEPT. Records are logged at the target's interface (inbound and outbound) and,
in the formats that name the direction (AWS version 5, Google Cloud's reporter, Azure's), also at the
originator's (egress), which names the scanner's instance.

    python tests/flows/derive.py CAPTURE.pcap OUTDIR [--window 60]

writes aws-v2.log.gz, aws-v5.log, gcp.json and azure.json into OUTDIR.
"""

from __future__ import annotations

import argparse
import gzip
import ipaddress
import json
import socket
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import dpkt

ACCOUNT, REGION, ZONE, VPC, PROJECT, SUBSCRIPTION = ("123456789010", "eu-west-1", "euw1-az1", "vpc-0a1b2c3d",
                                                     "t1046-lab", "00000000-0000-0000-0000-000000000046")
V5_FIELDS = ("version", "account-id", "interface-id", "srcaddr", "dstaddr", "srcport", "dstport", "protocol",
             "packets", "bytes", "start", "end", "action", "log-status", "vpc-id", "subnet-id", "instance-id",
             "tcp-flags", "type", "pkt-srcaddr", "pkt-dstaddr", "region", "az-id", "sublocation-type",
             "sublocation-id", "pkt-src-aws-service", "pkt-dst-aws-service", "flow-direction", "traffic-path")


@dataclass
class Direction:
    """One direction of one connection within one window."""

    first: float
    last: float
    packets: int = 0
    octets: int = 0
    flags: int = 0


@dataclass
class Connection:
    """A 5-tuple as its originator sent it, its windows each way, and how the target answered."""

    proto: int
    source: str
    source_port: int
    target: str
    target_port: int
    out: dict[int, Direction] = field(default_factory=dict)
    back: dict[int, Direction] = field(default_factory=dict)
    refused: bool = False
    """The only answers were resets (or an ICMP unreachable)."""
    answered: bool = False
    """Anything but a reset came back."""

    @property
    def rejected(self) -> bool:
        return not self.answered


def _packets(path: Path) -> Iterator[tuple[float, dpkt.Packet]]:
    with path.open("rb") as stream:
        reader = dpkt.pcap.Reader(stream)
        link = reader.datalink()
        for ts, data in reader:
            frame = dpkt.ethernet.Ethernet(data) if link == dpkt.pcap.DLT_EN10MB else dpkt.sll.SLL(data)
            if isinstance(frame.data, dpkt.ip.IP | dpkt.ip6.IP6):
                yield float(ts), frame.data


def _address(ip: dpkt.Packet, which: str) -> str:
    raw = getattr(ip, which)
    return socket.inet_ntop(socket.AF_INET if len(raw) == 4 else socket.AF_INET6, raw)


def flows(path: Path, window: float = 60.0) -> list[Connection]:
    """The connections of a capture, aggregated per direction per window (see the module's docstring)."""
    found: dict[tuple[int, str, int, str, int], Connection] = {}
    unreachable: list[tuple[int, str, int, str, int]] = []
    multicast: set[tuple[int, str, int]] = set()
    """(protocol, sender, port) of multicast questions: a unicast packet to it answers them (mDNS's legacy
    unicast answers) and opens no connection."""
    for ts, ip in _packets(path):
        source, target = _address(ip, "src"), _address(ip, "dst")
        proto = ip.p if isinstance(ip, dpkt.ip.IP) else ip.nxt
        layer = ip.data
        if ipaddress.ip_address(target).is_multicast or target.endswith(".255"):
            if isinstance(layer, dpkt.udp.UDP):
                multicast.add((proto, source, layer.sport))
            continue
        if isinstance(layer, dpkt.udp.UDP) and (proto, target, layer.dport) in multicast:
            continue
        size = ip.len if isinstance(ip, dpkt.ip.IP) else ip.plen + 40
        flags = 0
        if proto in (6, 17) and isinstance(layer, dpkt.tcp.TCP | dpkt.udp.UDP):
            ports = (layer.sport, layer.dport)
            flags = layer.flags if proto == 6 else 0
        elif proto in (1, 58) and isinstance(layer, dpkt.icmp.ICMP | dpkt.icmp6.ICMP6):
            if (proto == 1 and layer.type == 3) or (proto == 58 and layer.type == 1):
                inner = layer.data.data if hasattr(layer.data, "data") else None
                if isinstance(inner, dpkt.ip.IP) and isinstance(inner.data, dpkt.udp.UDP | dpkt.tcp.TCP):
                    unreachable.append((inner.p, _address(inner, "src"), inner.data.sport, _address(inner, "dst"),
                                        inner.data.dport))
                continue
            if layer.type not in (8, 0, 128, 129):
                continue
            ports = (0, 0)
        else:
            continue
        key = (proto, source, ports[0], target, ports[1])
        reverse = (proto, target, ports[1], source, ports[0])
        connection = found.get(key) or found.get(reverse)
        if connection is None:
            connection = found[key] = Connection(proto, source, ports[0], target, ports[1])
        outward = (source, ports[0]) == (connection.source, connection.source_port)
        sides = connection.out if outward else connection.back
        bucket = int(ts // window)
        side = sides.setdefault(bucket, Direction(ts, ts))
        side.last, side.packets, side.octets, side.flags = ts, side.packets + 1, side.octets + size, side.flags | flags
        if not outward:
            if proto == 6 and flags & dpkt.tcp.TH_RST and not flags & dpkt.tcp.TH_SYN:
                connection.refused = True
            else:
                connection.answered = True
    for key in unreachable:
        if key in found:
            found[key].refused = True
    return list(found.values())


def _interface(address: str) -> str:
    return f"eni-{ipaddress.ip_address(address).packed.hex()[-12:]:0>17}"


def _instance(address: str) -> str:
    return f"i-{ipaddress.ip_address(address).packed.hex()[-12:]:0>17}"


def _mac(address: str) -> str:
    return "0022" + ipaddress.ip_address(address).packed.hex()[-8:].upper()


def aws_records(connections: list[Connection], v5: bool) -> list[str]:
    """AWS records: the default format (at the target's interface) or version 5 (at both interfaces)."""
    lines = []
    for c in connections:
        for outward, sides in ((True, c.out), (False, c.back)):
            if not outward and c.rejected:
                continue
            src, dst, sport, dport = ((c.source, c.target, c.source_port, c.target_port) if outward else
                                      (c.target, c.source, c.target_port, c.source_port))
            for side in sides.values():
                action = "REJECT" if c.rejected else "ACCEPT"
                counts = [str(c.proto), str(side.packets), str(side.octets), str(int(side.first)), str(int(side.last)),
                          action, "OK"]
                at_target = ["2", ACCOUNT, _interface(c.target), src, dst, str(sport), str(dport), *counts]
                if not v5:
                    lines.append(" ".join(at_target))
                    continue
                for interface_of, direction in ((c.target, "ingress" if outward else "egress"),
                                                (c.source, "egress" if outward else "ingress")):
                    flags = str(side.flags) if c.proto == 6 else "0"
                    logged = counts if interface_of == c.target else [*counts[:5], "ACCEPT", "OK"]
                    lines.append(" ".join(["5", ACCOUNT, _interface(interface_of), src, dst, str(sport), str(dport),
                                           *logged, VPC, "subnet-0e1f", _instance(interface_of), flags,
                                           "IPv4" if "." in src else "IPv6", src, dst, REGION, ZONE, "-", "-", "-",
                                           "-", direction, "1"]))
    return lines


def gcp_entries(connections: list[Connection]) -> list[dict[str, object]]:
    """Cloud Logging entries of VPC Flow Logs (reporter DEST at the target, SRC at the originator) and, for a
    rejected connection, of the firewall rule that denied it."""
    entries: list[dict[str, object]] = []
    def vm(address: str) -> dict[str, str]:
        return {"project_id": PROJECT, "region": "europe-west1", "zone": "europe-west1-b",
                "vm_name": f"vm-{address.replace('.', '-').replace(':', '-')}"}
    for c in connections:
        for outward, sides in ((True, c.out), (False, c.back)):
            src, dst, sport, dport = ((c.source, c.target, c.source_port, c.target_port) if outward else
                                      (c.target, c.source, c.target_port, c.source_port))
            for side in sides.values():
                start = _rfc3339(side.first)
                connection = {"src_ip": src, "src_port": sport, "dest_ip": dst, "dest_port": dport, "protocol": c.proto}
                if c.rejected:
                    if outward:
                        entries.append({"insertId": f"fw{len(entries)}", "timestamp": start,
                                        "logName": f"projects/{PROJECT}/logs/compute.googleapis.com%2Ffirewall",
                                        "jsonPayload": {"connection": connection, "disposition": "DENIED",
                                                        "instance": vm(dst), "src_instance": vm(src),
                                                        "rule_details": {"action": "DENY", "direction": "INGRESS"}}})
                    continue
                for reporter in ("SRC", "DEST"):
                    entries.append({"insertId": f"vf{len(entries)}", "timestamp": _rfc3339(side.last),
                                    "logName": f"projects/{PROJECT}/logs/compute.googleapis.com%2Fvpc_flows",
                                    "resource": {"type": "gce_subnetwork", "labels": {"project_id": PROJECT}},
                                    "jsonPayload": {"connection": connection, "reporter": reporter,
                                                    "bytes_sent": str(side.octets), "packets_sent": str(side.packets),
                                                    "start_time": start, "end_time": _rfc3339(side.last),
                                                    "src_instance": vm(src), "dest_instance": vm(dst),
                                                    "src_vpc": {"project_id": PROJECT, "vpc_name": "lab",
                                                                "subnetwork_name": "lab-a"}}})
    return entries


def azure_document(connections: list[Connection]) -> dict[str, object]:
    """A VNet flow log: one record per network interface, tuples at the end state (D for a rejected flow) with
    both directions' counts; inbound at the target's NIC, outbound at the originator's."""
    by_nic: dict[str, list[str]] = {}
    for c in connections:
        for bucket, out in sorted(c.out.items()):
            back = c.back.get(bucket, Direction(out.first, out.first))
            state, counts = ("D", (out.packets, out.octets, 0, 0)) if c.rejected else (
                "E", (out.packets, out.octets, back.packets, back.octets))
            for nic, direction in ((c.target, "I"), (c.source, "O")):
                by_nic.setdefault(nic, []).append(",".join(map(str, (
                    int(out.first * 1000), c.source, c.target, c.source_port, c.target_port, c.proto, direction,
                    state, "NX", *counts))))
    records = [{"time": "2026-01-01T00:00:00.0000000Z", "flowLogVersion": 4, "macAddress": _mac(nic),
                "category": "FlowLogFlowEvent", "operationName": "FlowLogFlowEvent",
                "targetResourceID": f"/SUBSCRIPTIONS/{SUBSCRIPTION}/RESOURCEGROUPS/LAB/PROVIDERS/MICROSOFT.NETWORK/"
                                    f"NETWORKINTERFACES/nic-{nic.replace('.', '-').replace(':', '-')}",
                "flowRecords": {"flows": [{"aclID": "acl-lab", "flowGroups": [
                    {"rule": "lab-rule", "flowTuples": tuples}]}]}} for nic, tuples in by_nic.items()]
    return {"records": records}


def _rfc3339(ts: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def write_all(capture: Path, out: Path, window: float = 60.0) -> dict[str, Path]:
    """Every provider's flow log of one capture, written into ``out``."""
    connections = flows(capture, window)
    out.mkdir(parents=True, exist_ok=True)
    written = {"aws-v2": out / "aws-v2.log.gz", "aws-v5": out / "aws-v5.log", "gcp": out / "gcp.json",
               "azure": out / "azure.json"}
    header = " ".join(("version", "account-id", "interface-id", "srcaddr", "dstaddr", "srcport", "dstport",
                       "protocol", "packets", "bytes", "start", "end", "action", "log-status"))
    with gzip.open(written["aws-v2"], "wt") as stream:
        stream.write("\n".join([header, *aws_records(connections, v5=False)]) + "\n")
    written["aws-v5"].write_text("\n".join([" ".join(V5_FIELDS), *aws_records(connections, v5=True)]) + "\n")
    written["gcp"].write_text("".join(json.dumps(entry) + "\n" for entry in gcp_entries(connections)))
    written["azure"].write_text(json.dumps(azure_document(connections)))
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("capture", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--window", type=float, default=60.0)
    args = parser.parse_args(argv)
    for name, path in write_all(args.capture, args.out, args.window).items():
        sys.stderr.write(f"{name}: {path}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
