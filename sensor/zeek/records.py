"""Zeek log records → typed observations.

Identity is taken here, once, from the record's ``id.*`` fields. Works on logs of a plain Zeek and on
those written with this project's Zeek package (conn.log ``t1046_tags``, t1046.log, ``T1046::*`` notices).
"""

from __future__ import annotations

from collections.abc import Callable

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
)
from sensor.zeek.fields import (
    ADDRESS_CACHE,
    ICMP_ECHO_REQUESTS,
    NO_TAGS,
    TRANSPORTS,
    address,
    conn_outcome,
    count,
    port,
    text,
    texts,
    timestamp,
    verdict,
)
from sensor.zeek.identity import IDENTITY_FIELDS, IDENTITY_MAPPERS, dns_answer
from sensor.zeek.logs import Record, RecordBatch, ZeekLog

FIELDS: dict[str | None, tuple[str, ...]] = {
    "conn": ("ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "proto", "service",
             "conn_state", "history", "resp_pkts", "missed_bytes", "t1046_tags", "orig_l2_addr"),
    "notice": ("ts", "uid", "note", "msg", "sub", "src", "dst", "p", "n", "id.orig_h", "id.resp_h", "id.resp_p"),
    "dns": ("ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "query", "qtype_name",
            "qclass", "answers", "TTLs"),
    "t1046_mdns": ("ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "query", "qtype_name",
                   "qclass"),
    "t1046": ("ts", "scanner", "kind", "n_targets", "n_ports", "n_probes", "n_failed", "targets", "ports",
              "first_seen", "last_seen", "uids", "msg", "mdns_query", "mdns_qtype", "mdns_qu",
              "mdns_legacy_unicast"),
    **IDENTITY_FIELDS,
}
SCAN_NOTE_PREFIXES = ("Scan::", "T1046::")


def wanted_fields(kind: str | None) -> tuple[str, ...]:
    """The fields the mapper of ``kind`` reads (every known field when the kind is not known yet)."""
    if kind in FIELDS:
        return FIELDS[kind]
    return tuple(dict.fromkeys(name for names in FIELDS.values() for name in names))


_ICMP, _ESTABLISHED, _UNANSWERED = Transport.ICMP, Outcome.ESTABLISHED, Outcome.UNANSWERED


def _conn(record: Record) -> ConnAttempt | None:
    get = record.get
    proto = text(record["proto"])
    source_port = port(get("id.orig_p", 0))
    tags = NO_TAGS
    transport = TRANSPORTS.get(proto)
    if transport is not None:
        raw_tags = texts(get("t1046_tags"))
        resp_pkts = count(get("resp_pkts"))
        state, history = text(get("conn_state", "")), text(get("history", ""))
        lossy = count(get("missed_bytes")) > 0
        if raw_tags:
            tags = frozenset(raw_tags)
            outcome = conn_outcome(proto, state, history, resp_pkts, tags, lossy)
        else:
            key = (proto, state, history, bool(resp_pkts), lossy)
            found = verdict(key)[1]
            if found is None:
                return None
            outcome = found
    elif proto == "icmp":
        if source_port not in ICMP_ECHO_REQUESTS:
            return None
        outcome = _ESTABLISHED if count(get("resp_pkts")) else _UNANSWERED
        transport = _ICMP
    else:
        return None
    source_text, target_text = record["id.orig_h"], record["id.resp_h"]
    source = ADDRESS_CACHE.get(source_text) if type(source_text) is str else None
    target = ADDRESS_CACHE.get(target_text) if type(target_text) is str else None
    return ConnAttempt(
        timestamp(record["ts"]),
        address(source_text) if source is None else source,
        source_port,
        address(target_text) if target is None else target,
        port(get("id.resp_p", 0)),
        transport,
        outcome,
        text(get("uid", "")),
        text(get("service") or ""),
        tags,
        source_mac=text(get("orig_l2_addr") or ""),
    )


def _notice(record: Record) -> ZeekNotice | None:
    note = text(record.get("note", ""))
    if not note.startswith(SCAN_NOTE_PREFIXES):
        return None
    source = record.get("src") or record.get("id.orig_h")
    if not source:
        return None
    target = record.get("dst") or record.get("id.resp_h")
    target_port = record.get("p") if record.get("p") is not None else record.get("id.resp_p")
    return ZeekNotice(
        ts=timestamp(record["ts"]),
        note=note,
        message=text(record.get("msg", "")),
        source=address(source),
        target=address(target) if target else None,
        target_port=port(target_port) if target_port is not None else None,
        count=count(record["n"]) if record.get("n") is not None else None,
        uid=text(record.get("uid", "")),
        sub=text(record.get("sub") or ""),
    )


def _dns(record: Record) -> Observation | None:
    """An mDNS question from dns.log (the last question of a query: Zeek keeps one) or from the package's
    t1046_mdns.log (every question, with dns.log's field names): a request to port 5353 that carries its
    question type; elsewhere, the names a DNS answer gives addresses (:func:`sensor.zeek.identity.dns_answer`)."""
    if port(record.get("id.resp_p", 0)) != MDNS_PORT:
        return dns_answer(record)
    if not record.get("query") or not record.get("qtype_name"):
        return None
    source_port = port(record.get("id.orig_p", 0))
    qclass = count(record.get("qclass") or 1)
    return MdnsQuery(
        ts=timestamp(record["ts"]),
        source=address(record["id.orig_h"]),
        source_port=source_port,
        name=text(record["query"]),
        qtype=text(record["qtype_name"]),
        unicast_response=bool(qclass & 0x8000),
        legacy_unicast=source_port != MDNS_PORT,
        target=address(record["id.resp_h"]),
        via="zeek",
        uid=text(record.get("uid", "")),
    )


def _t1046(record: Record) -> Observation | None:
    ts = timestamp(record["ts"])
    scanner = address(record["scanner"])
    kind = text(record.get("kind", ""))
    query = record.get("mdns_query")
    uids = texts(record.get("uids"))
    if query:
        return MdnsQuery(
            ts=ts,
            source=scanner,
            source_port=0 if record.get("mdns_legacy_unicast") else MDNS_PORT,
            name=text(query),
            qtype=text(record.get("mdns_qtype") or "PTR"),
            unicast_response=bool(record.get("mdns_qu")),
            legacy_unicast=bool(record.get("mdns_legacy_unicast")),
            via="zeek",
            uid=uids[0] if uids else "",
        )
    raw_targets, raw_ports = record.get("targets") or [], record.get("ports") or []
    if not isinstance(raw_targets, list) or not isinstance(raw_ports, list):
        raise TypeError("targets and ports must be lists")
    return ZeekDetection(
        ts=ts,
        scanner=scanner,
        kind=kind,
        n_targets=count(record.get("n_targets")),
        n_ports=count(record.get("n_ports")),
        n_probes=count(record.get("n_probes")),
        n_failed=count(record.get("n_failed")),
        targets=tuple(address(t) for t in raw_targets),
        ports=tuple(port(p) for p in raw_ports),
        first_seen=timestamp(record.get("first_seen", ts)),
        last_seen=timestamp(record.get("last_seen", ts)),
        uids=tuple(uids),
        message=text(record.get("msg", "")),
    )


MAPPERS: dict[str, Callable[[Record], Observation | None]] = {
    "conn": _conn,
    "notice": _notice,
    "dns": _dns,
    "t1046": _t1046,
    "t1046_mdns": _dns,
    **IDENTITY_MAPPERS,
}


def to_observation(kind: str | None, record: Record) -> Observation | None:
    """Map one record of a ``kind`` log; None for records that carry no evidence.

    Raises ``ValueError``/``KeyError``/``TypeError`` for a record whose needed fields are missing or bad.
    """
    mapper = MAPPERS.get(kind or "")
    return mapper(record) if mapper is not None else None


CONN_TYPES = {"ts": "time", "uid": "string", "id.orig_h": "addr", "id.orig_p": "port", "id.resp_h": "addr",
              "id.resp_p": "port", "proto": "enum", "service": "string", "conn_state": "string", "history": "string",
              "resp_pkts": "count", "t1046_tags": "set[string]", "orig_l2_addr": "string"}
"""The types of the conn.log fields read, as Zeek writes them; a log declaring others is mapped row by row."""



def unusable(error: KeyError | ValueError | TypeError | OverflowError) -> str:
    """Why a record could not be mapped, in words: the field it lacks, or the bad value."""
    if isinstance(error, KeyError):
        return f"unusable record: no {error.args[0] if error.args else 'needed'} field"
    return f"unusable record: {str(error)[:200]}"


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
        except (KeyError, ValueError, TypeError, OverflowError) as error:
            log.malformed.report(str(log.path), number, unusable(error))
            log.records_unusable += 1
            continue
        if observation is not None:
            made.append(observation)
    if batch.kind == "conn":  # JSON lines, or TSV lines read one by one: judged a block at a time all the same
        return ConnRows.of(attempt for attempt in made if isinstance(attempt, ConnAttempt))
    return made
