"""netfilter ``LOG`` lines (nftables ``log``, iptables ``-j LOG``) as the kernel writes them, read from a syslog
file or from journald's export (``journalctl -k -o json`` / ``-o short-iso-precise``).

A line is ``<time> <host> kernel: [<uptime>] <prefix>IN=… OUT=… SRC=… DST=… LEN=… PROTO=TCP SPT=… DPT=… SYN …``;
an ICMP error adds the packet it answers in brackets. The verdict is the operator's: the first of the words
*drop*/*deny*/*block*, *reject*, *accept*/*allow*, *answer*/*reply* in the prefix (``t1046 drop: ``, iptables'
``IPTables-Dropped:``, ufw's ``[UFW BLOCK]``, firewalld's ``filter_IN_public_REJECT:``); a prefix without one is
``unknown`` and judges nothing. Time: the syslog stamp (RFC 3339, or RFC 3164 in the year given and the local
time zone) or journald's ``__REALTIME_TIMESTAMP``; never the uptime stamp.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import orjson

from sensor.flows.records import ACK, FIN, PSH, RST, SYN, URG, FlowRecord, Verdict
from sensor.observations import IPAddress, Transport
from sensor.zeek.fields import address

_VERDICTS = re.compile(r"(drop|deny|denied|block|reject|accept|allow|pass|answer|reply)", re.IGNORECASE)
_WORDS = {"drop": Verdict.DROP, "deny": Verdict.DROP, "denied": Verdict.DROP, "block": Verdict.DROP,
          "reject": Verdict.REJECT, "accept": Verdict.ACCEPT, "allow": Verdict.ACCEPT, "pass": Verdict.ACCEPT,
          "answer": Verdict.ANSWER, "reply": Verdict.ANSWER}
_FLAGS = {"FIN": FIN, "SYN": SYN, "RST": RST, "PSH": PSH, "ACK": ACK, "URG": URG}
_PROTOCOLS = {"TCP": Transport.TCP, "UDP": Transport.UDP, "ICMP": Transport.ICMP, "ICMPv6": Transport.ICMP}
_RFC3164 = re.compile(r"^([A-Z][a-z]{2}) {1,2}(\d{1,2}) (\d{2}):(\d{2}):(\d{2}) ")
_MONTHS = {name: number for number, name in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), start=1)}
_UPTIME = re.compile(r"^\[\s*\d+\.\d+\]\s?")


def looks_like(line: bytes) -> bool:
    """Whether a line (or journald JSON record) carries a netfilter LOG message."""
    return b"IN=" in line and b" SRC=" in line and b" PROTO=" in line


def verdict_of(prefix: str) -> Verdict:
    """The verdict a log prefix names (its first verdict word), or ``unknown``."""
    found = _VERDICTS.search(prefix)
    return _WORDS[found.group(1).lower()] if found else Verdict.UNKNOWN


def parse_line(line: bytes, year: int) -> FlowRecord | None:
    """The logged packet of one line, or None for a line that is no netfilter LOG message (another program's
    line in the same file, a journald record of another transport). Raises ``ValueError`` for a netfilter line
    that cannot be read. ``year`` completes an RFC 3164 stamp, which has none."""
    if not looks_like(line):
        return None
    if line[:1] == b"{":
        return _journal(line)
    text = line.decode("utf-8", "replace")
    stamp, _, rest = text.partition(" ")
    found = _RFC3164.match(text)
    if found is not None:
        month, day, hour, minute, second = found.groups()
        if month not in _MONTHS:
            raise ValueError(f"{month!r} is not a month")
        ts = datetime(year, _MONTHS[month], int(day), int(hour), int(minute), int(second)).timestamp()
        rest = text[found.end():]
    else:
        ts = _iso(stamp)
    _, marker, message = rest.partition(" kernel: ")
    if not marker:
        return None  # not the kernel's line (a program logging the same words)
    return packet(ts, _UPTIME.sub("", message, count=1))


def _iso(stamp: str) -> float:
    if len(stamp) > 5 and stamp[-5] in "+-" and stamp[-3] != ":":  # journalctl's +0000
        stamp = f"{stamp[:-2]}:{stamp[-2:]}"
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def _journal(line: bytes) -> FlowRecord | None:
    try:
        record: Any = orjson.loads(line)
    except orjson.JSONDecodeError as error:
        raise ValueError(f"invalid JSON: {error}") from None
    if not isinstance(record, dict):
        raise ValueError("JSON line is not an object")
    if record.get("_TRANSPORT", "kernel") != "kernel":
        return None  # only the kernel's own records: another program's cannot be taken for the firewall's
    message = record.get("MESSAGE")
    if isinstance(message, list):  # journald exports a message that is not UTF-8 as its bytes
        message = bytes(value for value in message if isinstance(value, int) and 0 <= value < 256).decode(
            "utf-8", "replace")
    stamp = record.get("__REALTIME_TIMESTAMP")
    if not isinstance(message, str) or not isinstance(stamp, str | int):
        raise ValueError("journald record without MESSAGE or __REALTIME_TIMESTAMP")
    return packet(int(stamp) / 1e6, message)


def _fields(text: str) -> tuple[dict[str, str], set[str]]:
    values: dict[str, str] = {}
    words: set[str] = set()
    for token in text.split():
        key, equals, value = token.partition("=")
        if equals:
            values.setdefault(key, value)
        else:
            words.add(token)
    return values, words


def _endpoints(values: dict[str, str]) -> tuple[Transport, IPAddress, int, IPAddress, int] | None:
    transport = _PROTOCOLS.get(values.get("PROTO", ""))
    if transport is None:
        return None
    if transport is Transport.ICMP:
        source_port, target_port = int(values.get("TYPE", "-1")), int(values.get("CODE", "0"))
    else:
        source_port, target_port = int(values["SPT"]), int(values["DPT"])
    if not (0 <= source_port <= 0xFFFF and 0 <= target_port <= 0xFFFF):
        raise ValueError("port out of range")
    return transport, address(values["SRC"]), source_port, address(values["DST"]), target_port


def packet(ts: float, message: str) -> FlowRecord | None:
    """The logged packet of a kernel LOG message (``<prefix>IN=…``) stamped ``ts``; None for a protocol a scan
    detector does not judge. Raises ``ValueError`` (or ``KeyError``) for a message it cannot read."""
    start = message.find("IN=")
    if start < 0:
        raise ValueError("no IN= field")
    prefix, body = message[:start], message[start:]
    outer, _, inner_text = body.partition(" [")
    values, words = _fields(outer)
    found = _endpoints(values)
    if found is None:
        return None
    transport, source, source_port, target, target_port = found
    inner = None
    if inner_text and transport is Transport.ICMP:
        inner = _endpoints(_fields(inner_text.rstrip("] "))[0])
    flags = sum(bit for name, bit in _FLAGS.items() if name in words) if transport is Transport.TCP else None
    return FlowRecord(ts, transport, source, source_port, target, target_port, verdict_of(prefix),
                      bytes=int(values.get("LEN", "0") or 0), flags=flags, inner=inner, reporter=values.get("IN", ""))
