"""ulogd2's JSON output (``ulogd_output_JSON``) of an NFLOG group: one JSON object per logged packet.

ulogd's stack ``NFLOG → BASE → IFINDEX → IP2STR → HWHDR → JSON`` (packaging/nftables/ulogd.conf) writes the
packet's headers as flat keys (``src_ip``, ``dest_ip``, ``ip.protocol``, ``src_port``, ``dest_port``,
``tcp.syn`` …, ``icmp.type``) and the rule's prefix as ``oob.prefix``, whose verdict word is read as for a
netfilter LOG line (:func:`sensor.flows.netfilter.verdict_of`). Time: ``oob.time.sec``/``oob.time.usec``, the
kernel's stamp of the packet (the ``timestamp`` key has no time zone). ulogd does not decode the packet an ICMP
error carries, so an ICMP unreachable answers nothing here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sensor.flows.netfilter import verdict_of
from sensor.flows.records import ACK, FIN, PROTOCOLS, PSH, RST, SYN, URG, FlowRecord
from sensor.observations import Transport
from sensor.zeek.fields import address

_FLAGS = {"tcp.fin": FIN, "tcp.syn": SYN, "tcp.rst": RST, "tcp.psh": PSH, "tcp.ack": ACK, "tcp.urg": URG}


def looks_like(record: Mapping[str, Any]) -> bool:
    """Whether a JSON object is one of ulogd's packets."""
    return "oob.prefix" in record or ("src_ip" in record and "oob.time.sec" in record)


def _integer(record: Mapping[str, Any], key: str, default: int | None = None) -> int:
    value = record.get(key, default)
    if type(value) is not int:
        raise ValueError(f"{key}: {value!r} is not an integer")
    return value


def parse(record: Mapping[str, Any]) -> FlowRecord | None:
    """The logged packet of one ulogd JSON object; None for a protocol a scan detector does not judge. Raises
    ``ValueError``/``KeyError``/``TypeError`` for an object it cannot read."""
    protocol = record.get("ip.protocol", record.get("ip6.nexthdr"))
    transport = PROTOCOLS.get(protocol) if type(protocol) is int else None
    if transport is None:
        return None
    if transport is Transport.ICMP:
        icmp = "icmpv6" if protocol == 58 else "icmp"
        source_port, target_port = _integer(record, f"{icmp}.type"), _integer(record, f"{icmp}.code", 0)
    else:
        source_port, target_port = _integer(record, "src_port"), _integer(record, "dest_port")
    if not (0 <= source_port <= 0xFFFF and 0 <= target_port <= 0xFFFF):
        raise ValueError("port out of range")
    ts = _integer(record, "oob.time.sec") + _integer(record, "oob.time.usec", 0) / 1e6
    prefix = record.get("oob.prefix", "")
    flags = (sum(bit for key, bit in _FLAGS.items() if record.get(key)) if transport is Transport.TCP else None)
    size = record.get("ip.totlen", record.get("raw.pktlen", 0))
    return FlowRecord(ts, transport, address(record["src_ip"]), source_port, address(record["dest_ip"]),
                      target_port, verdict_of(prefix if isinstance(prefix, str) else ""),
                      bytes=size if type(size) is int else 0, flags=flags,
                      reporter=str(record.get("oob.in", "")))
