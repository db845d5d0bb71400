"""Zeek log records → typed observations.

Identity is taken here, once, from the record's ``id.*`` fields. Works on logs of a plain Zeek and on
those written with this project's Zeek package (conn.log ``t1046_tags``, t1046.log, ``T1046::*`` notices).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Mapping
from datetime import datetime
from functools import partial
from itertools import compress
from typing import Any, cast

from sensor.observations import (
    MDNS_PORT,
    ConnAttempt,
    IPAddress,
    MdnsQuery,
    Observation,
    Outcome,
    Transport,
    ZeekDetection,
    ZeekNotice,
)
from sensor.zeek.logs import Record, RecordBatch, ZeekLog

FIELDS: dict[str | None, tuple[str, ...]] = {
    "conn": ("ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "proto", "service",
             "conn_state", "history", "resp_pkts", "t1046_tags"),
    "notice": ("ts", "uid", "note", "msg", "src", "dst", "p", "n", "id.orig_h", "id.resp_h", "id.resp_p"),
    "dns": ("ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "query", "qtype_name",
            "qclass"),
    "t1046": ("ts", "scanner", "kind", "n_targets", "n_ports", "n_probes", "n_failed", "targets", "ports",
              "first_seen", "last_seen", "uids", "msg", "mdns_query", "mdns_qtype", "mdns_qu",
              "mdns_legacy_unicast"),
}
SCAN_NOTE_PREFIXES = ("Scan::", "T1046::")
_ICMP_ECHO_REQUESTS = frozenset({8, 128})
_STEALTH_HISTORY = frozenset("FAIQr^")
"""History letters of a probe without a handshake: the originator's FIN (F), ACK (A) or odd flag mixes
(I, Q) -- a NULL probe leaves no letter --, at most a reset (r) in answer, and Zeek's direction flip (^).
Real traffic picked up mid-stream carries data or the responder's ACK (D, d, a) and stays OTHER."""
_ADDRESS_CACHE: dict[str, IPAddress] = {}
_ADDRESS_CACHE_SIZE = 1 << 18


def wanted_fields(kind: str | None) -> tuple[str, ...]:
    """The fields the mapper of ``kind`` reads (every known field when the kind is not known yet)."""
    if kind in FIELDS:
        return FIELDS[kind]
    return tuple(dict.fromkeys(name for names in FIELDS.values() for name in names))


class _HashOnce:
    """Mixin for address classes: the hash is computed once, when the address is made (parsed or
    unpickled). The stock one formats a hex string on every call, and the correlator hashes each address
    several times per record."""

    __slots__ = ()
    _hash: int

    def __hash__(self) -> int:
        return self._hash


class _HashedIPv4(_HashOnce, ipaddress.IPv4Address):
    __slots__ = ("_hash",)

    def __init__(self, address: int | str | bytes) -> None:
        super().__init__(address)
        self._hash = ipaddress.IPv4Address.__hash__(self)


class _HashedIPv6(_HashOnce, ipaddress.IPv6Address):
    __slots__ = ("_hash",)

    def __init__(self, address: int | str | bytes) -> None:
        super().__init__(address)
        self._hash = ipaddress.IPv6Address.__hash__(self)


def _parse_address(text: str) -> IPAddress:
    try:
        return _HashedIPv4(socket.inet_pton(socket.AF_INET, text))
    except OSError:
        pass
    try:
        return _HashedIPv6(socket.inet_pton(socket.AF_INET6, text))
    except OSError:
        return ipaddress.ip_address(text)


def address(text: str) -> IPAddress:
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


_NO_TAGS: frozenset[str] = frozenset()
_TRANSPORTS = {"tcp": Transport.TCP, "udp": Transport.UDP}
_ICMP, _ESTABLISHED, _UNANSWERED = Transport.ICMP, Outcome.ESTABLISHED, Outcome.UNANSWERED


def _conn(record: Record) -> ConnAttempt | None:
    get = record.get
    proto = record["proto"]
    source_port = int(get("id.orig_p", 0))
    tags = _NO_TAGS
    transport = _TRANSPORTS.get(proto)
    if transport is not None:
        raw_tags = get("t1046_tags")
        resp_pkts = get("resp_pkts")
        if raw_tags:
            tags = frozenset(raw_tags)
            outcome = conn_outcome(proto, get("conn_state", ""), get("history", ""), resp_pkts, tags)
        else:
            key = (proto, get("conn_state", ""), get("history", ""), bool(resp_pkts))
            found = (_VERDICTS.get(key) or _verdict(key))[1]
            if found is None:
                return None
            outcome = found
    elif proto == "icmp":
        if source_port not in _ICMP_ECHO_REQUESTS:
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
    )


def _dns(record: Record) -> MdnsQuery | None:
    """An mDNS question from dns.log: a request to port 5353 that carries its question type."""
    if int(record.get("id.resp_p", 0)) != MDNS_PORT or not record.get("query") or not record.get("qtype_name"):
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
}


def to_observation(kind: str | None, record: Record) -> Observation | None:
    """Map one record of a ``kind`` log; None for records that carry no evidence.

    Raises ``ValueError``/``KeyError``/``TypeError`` for a record whose needed fields are missing or bad.
    """
    mapper = MAPPERS.get(kind or "")
    return mapper(record) if mapper is not None else None


_Verdict = tuple[Transport | None, Outcome | None]
_NEEDED = frozenset({"ts", "proto", "id.orig_h", "id.resp_h"})
"""The fields :func:`_conn` cannot do without."""
CONN_TYPES = {"ts": "time", "uid": "string", "id.orig_h": "addr", "id.orig_p": "port", "id.resp_h": "addr",
              "id.resp_p": "port", "proto": "enum", "service": "string", "conn_state": "string", "history": "string",
              "resp_pkts": "count", "t1046_tags": "set[string]"}
"""The types of the conn.log fields read, as Zeek writes them; a log declaring others is mapped row by row."""


def _conn_columns(columns: Mapping[str, list[Any]], count: int, unset: frozenset[str]) -> list[Observation] | None:
    """What :func:`_conn` makes of each row of conn records decoded as columns (of the :data:`CONN_TYPES`:
    times are floats, ports and counts ints, sets lists, None where unset), computed column by column; None
    when a row lacks a field :func:`_conn` needs or holds a bad address (the caller then maps row by row,
    reporting it). ``unset`` names the columns holding a None."""
    if not unset.isdisjoint(_NEEDED) or not _NEEDED.issubset(columns):
        return None
    absent: list[Any] = [None] * count

    def column(name: str, default: object) -> list[Any]:
        """A column with ``default`` where unset (or the whole column when the log lacks it)."""
        values = columns.get(name, absent)
        return values if name not in unset and values is not absent else [value or default for value in values]

    ts, protos, sources, targets = columns["ts"], columns["proto"], columns["id.orig_h"], columns["id.resp_h"]
    cache = _ADDRESS_CACHE
    try:
        source_ips = [cache.get(text) or address(text) for text in sources]
        target_ips = [cache.get(text) or address(text) for text in targets]
    except (ValueError, TypeError):
        return None
    source_ports = column("id.orig_p", 0)
    resp_pkts = columns.get("resp_pkts", absent)
    keys = list(zip(protos, column("conn_state", ""), column("history", ""), map(bool, resp_pkts), strict=True))
    memoised = list(map(_VERDICTS.get, keys))
    verdicts = cast(list[_Verdict], memoised) if None not in memoised else [
        _verdict(key) if verdict is None else verdict for key, verdict in zip(keys, memoised, strict=True)]
    transports = [verdict[0] for verdict in verdicts]
    outcomes = [verdict[1] for verdict in verdicts]
    tags: list[frozenset[str]] = [_NO_TAGS] * count
    raw_column = columns.get("t1046_tags", absent)
    for row in [row for row, raw_tags in enumerate(raw_column) if raw_tags] if any(raw_column) else ():
        raw_tags = raw_column[row]
        if transports[row] is not _ICMP and transports[row] is not None:
            tags[row] = frozenset(raw_tags)
            outcomes[row] = conn_outcome(protos[row], keys[row][1], keys[row][2], resp_pkts[row], tags[row])
    for row in [row for row, transport in enumerate(transports) if transport is _ICMP] if _ICMP in transports else ():
        if source_ports[row] in _ICMP_ECHO_REQUESTS:
            outcomes[row] = _ESTABLISHED if resp_pkts[row] else _UNANSWERED
        else:
            transports[row] = None
    made = map(_NEW_CONN, zip(ts, source_ips, source_ports, target_ips, column("id.resp_p", 0), transports,
                              outcomes, column("uid", ""), column("service", ""), tags, strict=True))
    if None in transports:
        return list(compress(made, [transport is not None for transport in transports]))
    return list(made)


def _verdict(key: tuple[str, str, str, bool]) -> _Verdict:
    """(transport, outcome) of an untagged conn record by (proto, conn_state, history, answered), memoised;
    ICMP's outcome is judged by its type (the source port), and (None, None) means no evidence."""
    proto = key[0]
    transport = _TRANSPORTS.get(proto)
    if transport is not None:
        verdict: _Verdict = (
            transport, conn_outcome(proto, key[1], key[2], int(key[3]), _NO_TAGS))
    else:
        verdict = (_ICMP, None) if proto == "icmp" else (None, None)
    if len(_VERDICTS) >= 4096:
        _VERDICTS.clear()
    _VERDICTS[key] = verdict
    return verdict


_VERDICTS: dict[tuple[str, str, str, bool], _Verdict] = {}
"""Memo of :func:`_verdict`, for records read row by row and column by column alike: a log holds only a
few hundred distinct (proto, state, history, answered) combinations."""
_NEW_CONN: Callable[[tuple[Any, ...]], ConnAttempt] = partial(tuple.__new__, ConnAttempt)
"""A :class:`ConnAttempt` from a tuple of all its fields, built in C."""


def observations(log: ZeekLog, batch: RecordBatch) -> list[Observation]:
    """The observations in one batch of a log's records; a record whose fields are missing or bad is reported
    to the log's malformed-line counter (numbered by its place among the log's records) and skipped."""
    if batch.kind == "conn" and batch.columns is not None and all(
            CONN_TYPES.get(name) == zeek_type for name, zeek_type in batch.types.items()):
        found = _conn_columns(batch.columns, batch.count, batch.unset)
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
    return made
