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
    timestamp,
    verdict,
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


def wanted_fields(kind: str | None) -> tuple[str, ...]:
    """The fields the mapper of ``kind`` reads (every known field when the kind is not known yet)."""
    if kind in FIELDS:
        return FIELDS[kind]
    return tuple(dict.fromkeys(name for names in FIELDS.values() for name in names))


_ICMP, _ESTABLISHED, _UNANSWERED = Transport.ICMP, Outcome.ESTABLISHED, Outcome.UNANSWERED


def _conn(record: Record) -> ConnAttempt | None:
    get = record.get
    proto = record["proto"]
    source_port = int(get("id.orig_p", 0))
    tags = NO_TAGS
    transport = TRANSPORTS.get(proto)
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
    source = ADDRESS_CACHE.get(record["id.orig_h"])
    target = ADDRESS_CACHE.get(record["id.resp_h"])
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


CONN_TYPES = {"ts": "time", "uid": "string", "id.orig_h": "addr", "id.orig_p": "port", "id.resp_h": "addr",
              "id.resp_p": "port", "proto": "enum", "service": "string", "conn_state": "string", "history": "string",
              "resp_pkts": "count", "t1046_tags": "set[string]", "orig_l2_addr": "string"}
"""The types of the conn.log fields read, as Zeek writes them; a log declaring others is mapped row by row."""



def unusable(error: KeyError | ValueError | TypeError) -> str:
    """Why a record could not be mapped, in words: the field it lacks, or the bad value."""
    if isinstance(error, KeyError):
        return f"unusable record: no {error.args[0] if error.args else 'needed'} field"
    return f"unusable record: {error}"


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
            log.malformed.report(str(log.path), number, unusable(error))
            log.records_unusable += 1
            continue
        if observation is not None:
            made.append(observation)
    if batch.kind == "conn":  # JSON lines, or TSV lines read one by one: judged a block at a time all the same
        return ConnRows.of(attempt for attempt in made if isinstance(attempt, ConnAttempt))
    return made
