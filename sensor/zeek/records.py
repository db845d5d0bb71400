"""Zeek log records → typed observations.

Identity is taken here, once, from the record's ``id.*`` fields. Works on logs of a plain Zeek and on
those written with this project's Zeek package (conn.log ``t1046_tags``, t1046.log, ``T1046::*`` notices).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sensor.observations import (
    MDNS_PORT,
    ConnAttempt,
    ConnRows,
    MdnsQuery,
    Observation,
    Outcome,
    Transport,
    ZeekDetection,
    ZeekNotice,
    address_key,
)
from sensor.zeek.identity import IDENTITY_FIELDS, IDENTITY_MAPPERS, dns_answer
from sensor.zeek.logs import Record, RecordBatch, ZeekLog

FIELDS: dict[str | None, tuple[str, ...]] = {
    "conn": ("ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "proto", "service",
             "conn_state", "history", "resp_pkts", "t1046_tags", "orig_l2_addr"),
    "notice": ("ts", "uid", "note", "msg", "sub", "src", "dst", "p", "n", "id.orig_h", "id.resp_h", "id.resp_p"),
    "dns": ("ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "query", "qtype_name",
            "qclass", "answers", "TTLs"),
    "t1046": ("ts", "scanner", "kind", "n_targets", "n_ports", "n_probes", "n_failed", "targets", "ports",
              "first_seen", "last_seen", "uids", "msg", "mdns_query", "mdns_qtype", "mdns_qu",
              "mdns_legacy_unicast"),
    **IDENTITY_FIELDS,
}
SCAN_NOTE_PREFIXES = ("Scan::", "T1046::")
ICMP_ECHO_REQUESTS = frozenset({8, 128})
_STEALTH_HISTORY = frozenset("FAIQr^")
"""History letters of a probe without a handshake: the originator's FIN (F), ACK (A) or odd flag mixes
(I, Q) -- a NULL probe leaves no letter --, at most a reset (r) in answer, and Zeek's direction flip (^).
Real traffic picked up mid-stream carries data or the responder's ACK (D, d, a) and stays OTHER."""
_ADDRESS_CACHE: dict[str, _Address] = {}
_ADDRESS_CACHE_SIZE = 1 << 18


def wanted_fields(kind: str | None) -> tuple[str, ...]:
    """The fields the mapper of ``kind`` reads (every known field when the kind is not known yet)."""
    if kind in FIELDS:
        return FIELDS[kind]
    return tuple(dict.fromkeys(name for names in FIELDS.values() for name in names))


class _Prepared:
    """Mixin for address classes: the hash and the correlator's integer key
    (:func:`~sensor.observations.address_key`) are computed once, when the address is made (parsed or
    unpickled). The stock hash formats a hex string on every call."""

    __slots__ = ()
    _hash: int

    def __hash__(self) -> int:
        return self._hash


class _PreparedIPv4(_Prepared, ipaddress.IPv4Address):
    __slots__ = ("_hash", "key")

    def __init__(self, address: int | str | bytes) -> None:
        super().__init__(address)
        self._hash = ipaddress.IPv4Address.__hash__(self)
        self.key = address_key(self)


class _PreparedIPv6(_Prepared, ipaddress.IPv6Address):
    __slots__ = ("_hash", "key")

    def __init__(self, address: int | str | bytes) -> None:
        super().__init__(address)
        self._hash = ipaddress.IPv6Address.__hash__(self)
        self.key = address_key(self)


_Address = _PreparedIPv4 | _PreparedIPv6


def _parse_address(text: str) -> _Address:
    try:
        return _PreparedIPv4(socket.inet_pton(socket.AF_INET, text))
    except OSError:
        pass
    try:
        return _PreparedIPv6(socket.inet_pton(socket.AF_INET6, text))
    except OSError:
        parsed = ipaddress.ip_address(text)  # a scoped IPv6 address, or the ValueError for a bad one
        return _PreparedIPv4(text) if parsed.version == 4 else _PreparedIPv6(text)


def address(text: str) -> _Address:
    """Parse an address (equal to, and hashing like, :func:`ipaddress.ip_address`'s), caching those that
    recur in a log."""
    found = _ADDRESS_CACHE.get(text)
    if found is None:
        if len(_ADDRESS_CACHE) >= _ADDRESS_CACHE_SIZE:
            _ADDRESS_CACHE.clear()
        found = _ADDRESS_CACHE[text] = _parse_address(text)
    return found


def timestamp(value: Any) -> float:
    """A Zeek time: epoch seconds (TSV, default JSON) or ISO 8601 (``JSON::TS_ISO8601``)."""
    if type(value) is float:
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    raise ValueError(f"{value!r} is not a time")


def conn_outcome(proto: str, state: str, history: str, resp_pkts: int | None, tags: frozenset[str]) -> Outcome:
    """Judge a conn.log record as a first contact, from its ``conn_state`` and ``history``.

    ``history`` letters are upper case for the originator, lower case for the responder: ``S`` SYN,
    ``h`` SYN-ACK, ``A`` ACK, ``D`` data, ``R``/``r`` reset, ``F``/``f`` FIN.
    """
    if "icmp_unreachable" in tags or "rejected" in tags:
        return Outcome.REJECTED
    if "half_open" in tags:
        return Outcome.HALF_OPEN
    if "stealth" in tags:
        return Outcome.STEALTH
    if proto == "tcp":
        if state == "REJ":
            return Outcome.REJECTED
        if state in ("S0", "RSTOS0", "SH") and "S" in history:
            return Outcome.UNANSWERED
        if "S" not in history:
            return Outcome.STEALTH if history and _STEALTH_HISTORY.issuperset(history) else Outcome.OTHER
        if state in ("OTH", "RSTRH", "SHR"):
            return Outcome.OTHER
        if "h" in history and "A" not in history and "D" not in history:
            return Outcome.HALF_OPEN
        return Outcome.ESTABLISHED
    if proto == "udp":
        if "unanswered" in tags or (state == "S0" and not resp_pkts):
            return Outcome.UNANSWERED
        if "d" in history or (resp_pkts or 0) > 0:
            return Outcome.ESTABLISHED
        return Outcome.OTHER
    return Outcome.OTHER


NO_TAGS: frozenset[str] = frozenset()
_TRANSPORTS = {"tcp": Transport.TCP, "udp": Transport.UDP}
_ICMP, _ESTABLISHED, _UNANSWERED = Transport.ICMP, Outcome.ESTABLISHED, Outcome.UNANSWERED


def _conn(record: Record) -> ConnAttempt | None:
    get = record.get
    proto = record["proto"]
    source_port = int(get("id.orig_p", 0))
    tags = NO_TAGS
    transport = _TRANSPORTS.get(proto)
    if transport is not None:
        raw_tags = get("t1046_tags")
        resp_pkts = get("resp_pkts")
        if raw_tags:
            tags = frozenset(raw_tags)
            outcome = conn_outcome(proto, get("conn_state", ""), get("history", ""), resp_pkts, tags)
        else:
            key = (proto, get("conn_state", ""), get("history", ""), bool(resp_pkts))
            found = verdict(key)[1]
            if found is None:
                return None
            outcome = found
    elif proto == "icmp":
        if source_port not in ICMP_ECHO_REQUESTS:
            return None
        outcome = _ESTABLISHED if get("resp_pkts") else _UNANSWERED
        transport = _ICMP
    else:
        return None
    ts = record["ts"]
    source = _ADDRESS_CACHE.get(record["id.orig_h"])
    target = _ADDRESS_CACHE.get(record["id.resp_h"])
    return ConnAttempt(
        ts if type(ts) is float else timestamp(ts),
        address(record["id.orig_h"]) if source is None else source,
        source_port,
        address(record["id.resp_h"]) if target is None else target,
        int(get("id.resp_p", 0)),
        transport,
        outcome,
        get("uid", ""),
        get("service") or "",
        tags,
        source_mac=get("orig_l2_addr") or "",
    )


def _notice(record: Record) -> ZeekNotice | None:
    note = record.get("note", "")
    if not note.startswith(SCAN_NOTE_PREFIXES):
        return None
    source = record.get("src") or record.get("id.orig_h")
    if not source:
        return None
    target = record.get("dst") or record.get("id.resp_h")
    port = record.get("p") if record.get("p") is not None else record.get("id.resp_p")
    return ZeekNotice(
        ts=timestamp(record["ts"]),
        note=note,
        message=record.get("msg", ""),
        source=address(source),
        target=address(target) if target else None,
        target_port=int(port) if port is not None else None,
        count=int(record["n"]) if record.get("n") is not None else None,
        uid=record.get("uid", ""),
        sub=record.get("sub") or "",
    )


def _dns(record: Record) -> Observation | None:
    """An mDNS question from dns.log: a request to port 5353 that carries its question type; elsewhere, the
    names a DNS answer gives addresses (:func:`sensor.zeek.identity.dns_answer`)."""
    if int(record.get("id.resp_p", 0)) != MDNS_PORT:
        return dns_answer(record)
    if not record.get("query") or not record.get("qtype_name"):
        return None
    source_port = int(record.get("id.orig_p", 0))
    qclass = int(record.get("qclass") or 1)
    return MdnsQuery(
        ts=timestamp(record["ts"]),
        source=address(record["id.orig_h"]),
        source_port=source_port,
        name=record["query"],
        qtype=record["qtype_name"],
        unicast_response=bool(qclass & 0x8000),
        legacy_unicast=source_port != MDNS_PORT,
        target=address(record["id.resp_h"]),
        via="zeek",
        uid=record.get("uid", ""),
    )


def _t1046(record: Record) -> Observation | None:
    ts = timestamp(record["ts"])
    scanner = address(record["scanner"])
    kind = record.get("kind", "")
    query = record.get("mdns_query")
    if query:
        return MdnsQuery(
            ts=ts,
            source=scanner,
            source_port=0 if record.get("mdns_legacy_unicast") else MDNS_PORT,
            name=query,
            qtype=record.get("mdns_qtype") or "PTR",
            unicast_response=bool(record.get("mdns_qu")),
            legacy_unicast=bool(record.get("mdns_legacy_unicast")),
            via="zeek",
            uid=(record.get("uids") or [""])[0],
        )
    return ZeekDetection(
        ts=ts,
        scanner=scanner,
        kind=kind,
        n_targets=int(record.get("n_targets") or 0),
        n_ports=int(record.get("n_ports") or 0),
        n_probes=int(record.get("n_probes") or 0),
        n_failed=int(record.get("n_failed") or 0),
        targets=tuple(address(t) for t in record.get("targets") or ()),
        ports=tuple(int(p) for p in record.get("ports") or ()),
        first_seen=timestamp(record.get("first_seen", ts)),
        last_seen=timestamp(record.get("last_seen", ts)),
        uids=tuple(record.get("uids") or ()),
        message=record.get("msg", ""),
    )


MAPPERS: dict[str, Callable[[Record], Observation | None]] = {
    "conn": _conn,
    "notice": _notice,
    "dns": _dns,
    "t1046": _t1046,
    **IDENTITY_MAPPERS,
}


def to_observation(kind: str | None, record: Record) -> Observation | None:
    """Map one record of a ``kind`` log; None for records that carry no evidence.

    Raises ``ValueError``/``KeyError``/``TypeError`` for a record whose needed fields are missing or bad.
    """
    mapper = MAPPERS.get(kind or "")
    return mapper(record) if mapper is not None else None


_Verdict = tuple[Transport | None, Outcome | None]
NEEDED = frozenset({"ts", "proto", "id.orig_h", "id.resp_h"})
"""The fields :func:`_conn` cannot do without."""
CONN_TYPES = {"ts": "time", "uid": "string", "id.orig_h": "addr", "id.orig_p": "port", "id.resp_h": "addr",
              "id.resp_p": "port", "proto": "enum", "service": "string", "conn_state": "string", "history": "string",
              "resp_pkts": "count", "t1046_tags": "set[string]", "orig_l2_addr": "string"}
"""The types of the conn.log fields read, as Zeek writes them; a log declaring others is mapped row by row."""


def verdict(key: tuple[str, str, str, bool]) -> _Verdict:
    """(transport, outcome) of an untagged conn record by (proto, conn_state, history, answered), memoised;
    ICMP's outcome is judged by its type (the source port), and (None, None) means no evidence."""
    found = _VERDICTS.get(key)
    if found is not None:
        return found
    proto = key[0]
    transport = _TRANSPORTS.get(proto)
    if transport is not None:
        found = (transport, conn_outcome(proto, key[1], key[2], int(key[3]), NO_TAGS))
    else:
        found = (_ICMP, None) if proto == "icmp" else (None, None)
    if len(_VERDICTS) >= 4096:
        _VERDICTS.clear()
    _VERDICTS[key] = found
    return found


_VERDICTS: dict[tuple[str, str, str, bool], _Verdict] = {}
"""Memo of :func:`verdict`, for records read row by row and column by column alike: a log holds only a
few hundred distinct (proto, state, history, answered) combinations."""


def observations(log: ZeekLog, batch: RecordBatch) -> list[Observation] | ConnRows:
    """The observations in one batch of a log's records -- conn records as one :class:`ConnRows` (which
    iterates as :class:`ConnAttempt` tuples), computed a column at a time where the batch was decoded as
    columns; a record whose fields are missing or bad is reported to the log's malformed-line counter
    (numbered by its place among the log's records) and skipped."""
    if batch.kind == "conn" and batch.columns is not None and all(
            CONN_TYPES.get(name) == zeek_type for name, zeek_type in batch.types.items()):
        from sensor.zeek.conncolumns import conn_rows  # with pyarrow, as the columns are

        found = conn_rows(batch.columns, batch.count)
        if found is not None:
            return found
    mapper = MAPPERS.get(batch.kind or "")
    if mapper is None:
        return []
    made: list[Observation] = []
    for number, record in enumerate(batch.rows(), start=batch.first + 1):
        try:
            observation = mapper(record)
        except (KeyError, ValueError, TypeError) as error:
            log.malformed.report(str(log.path), number, f"unusable record: {error!r}")
            continue
        if observation is not None:
            made.append(observation)
    if batch.kind == "conn":  # JSON lines, or TSV lines read one by one: judged a block at a time all the same
        return ConnRows.of(attempt for attempt in made if isinstance(attempt, ConnAttempt))
    return made
