"""Incidents as the report sees them: the updates of one ``t1046.incident_id`` folded into one record.

Everything enters through the ECS document of an alert (docs/alerts.md): the lines of an alerts JSONL file
written by ``run``'s file sink, and the alerts ``replay`` makes, rendered by :func:`sensor.alerts.render.to_ecs`.
So both inputs are read by one parser. This module reads no Zeek log and draws nothing.
"""

from __future__ import annotations

import ipaddress
import logging
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from sensor.errors import LogReadError, why_unreadable
from sensor.observations import IPAddress
from sensor.text import visible_document
from sensor.zeek.logs import open_log

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RuleFiring:
    """When a rule first appeared in an incident's ``t1046.rules``."""

    rule: str
    ts: float
    update: int


@dataclass(frozen=True, slots=True)
class TouchSeen:
    """A honeyport touch an alert sampled (``t1046.sample.honeyport_touches``)."""

    ts: float
    target: str
    port: int
    transport: str
    profile: str
    touch: str
    payload: str
    """As the alert carries it: printable ASCII, other bytes as ``\\xNN`` (still attacker text: escape it)."""


@dataclass(frozen=True, slots=True)
class Update:
    """One alert (one incident update), read from its ECS document."""

    incident_id: str
    update: int
    ts: float
    action: str
    rule: str
    rule_name: str
    rules: tuple[str, ...]
    scanner: IPAddress | None
    """``source.ip``; ``None`` for the aggregate of many unproven sources (:attr:`sources` of them)."""
    first_seen: float
    last_seen: float
    counts: tuple[tuple[str, int], ...]
    """``t1046.counts`` as (name, value) pairs, in the alert's order."""
    targets: tuple[str, ...]
    ports: tuple[int, ...]
    evidence_sources: tuple[str, ...]
    uids: tuple[str, ...]
    notes: tuple[str, ...]
    mdns_names: tuple[str, ...]
    honeyport_profiles: tuple[str, ...]
    honeyport_nodes: tuple[str, ...]
    honeyport_payloads: tuple[str, ...]
    """As the alert carries them: printable ASCII, other bytes as ``\\xNN`` (still attacker text: escape it)."""
    risk_score: int
    severity: str
    confidence: str
    authorized: str | None
    closed: bool
    message: str
    observer: str
    identity: tuple[tuple[str, str, str], ...] = ()
    """``t1046.identity``'s facts as (kind, value, source), best first (attacker-influenced text: escape it)."""
    history: dict[str, Any] | None = None
    """``t1046.history`` as the alert carries it."""
    touches: tuple[TouchSeen, ...] = ()
    sources: int = 0
    """How many sources an aggregate alert stands for (``t1046.aggregate.sources``)."""

    @property
    def who(self) -> str:
        """The scanner, or ``N sources`` for an aggregate."""
        return str(self.scanner) if self.scanner is not None else f"{self.sources} unproven sources"

    def count(self, name: str) -> int:
        """One of ``t1046.counts`` (0 when the alert does not carry it)."""
        return next((value for key, value in self.counts if key == name), 0)


@dataclass(frozen=True, slots=True)
class Incident:
    """An incident: its newest update, when each of its rules fired, and its updates, oldest first."""

    latest: Update
    firings: tuple[RuleFiring, ...]
    updates: int
    history: tuple[Update, ...] = ()

    @property
    def touches(self) -> tuple[TouchSeen, ...]:
        """Every honeyport its updates sampled, as the newest update that sampled it tells it (how it was
        touched, what it was sent), first touched first."""
        first: dict[tuple[str, int, str], TouchSeen] = {}
        for update in self.history:
            for touch in update.touches:
                key = (touch.target, touch.port, touch.transport)
                if key not in first or touch.ts <= first[key].ts:
                    first[key] = touch
        return tuple(sorted(first.values(), key=lambda touch: (touch.ts, touch.port)))

    @property
    def names(self) -> tuple[tuple[float, str], ...]:
        """Each mDNS name its updates sampled, with the time of the first update that named it."""
        first: dict[str, float] = {}
        for update in self.history:
            for name in update.mdns_names:
                first.setdefault(name, update.ts)
        return tuple((ts, name) for name, ts in first.items())

    @property
    def incident_id(self) -> str:
        """``t1046.incident_id``."""
        return self.latest.incident_id

    @property
    def scanner(self) -> IPAddress | None:
        """The scanner (``source.ip``; ``None`` for an aggregate of many sources)."""
        return self.latest.scanner


def _time(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def _strings(values: Any) -> tuple[str, ...]:
    if not isinstance(values, list):
        raise TypeError(f"expected a list, not {type(values).__name__}")
    return tuple(str(value) for value in values)


def update_of(document: dict[str, Any]) -> Update:
    """The update an ECS alert document describes.

    Raises ``KeyError``/``TypeError``/``ValueError`` when a field the report needs is missing or bad. Every
    string is taken through :func:`sensor.text.visible` first: an alerts file may have been written by anyone,
    and the report shows its strings in HTML and in pictures alike.
    """
    document = visible_document(document)
    event, t1046, rule = document["event"], document["t1046"], document["rule"]
    sample, zeek = t1046.get("sample", {}), t1046.get("zeek", {})
    authorized = t1046.get("authorized")
    aggregate = t1046.get("aggregate")
    return Update(
        incident_id=str(t1046["incident_id"]),
        update=int(t1046["update"]),
        ts=_time(document["@timestamp"]),
        action=str(event["action"]),
        rule=str(rule["id"]),
        rule_name=str(rule.get("name", rule["id"])),
        rules=_strings(t1046.get("rules", [rule["id"]])),
        scanner=None if isinstance(aggregate, dict) else ipaddress.ip_address(document["source"]["ip"]),
        first_seen=_time(event["start"]),
        last_seen=_time(event["end"]),
        counts=tuple((str(name), int(value)) for name, value in t1046.get("counts", {}).items()),
        targets=_strings(sample.get("targets", [])),
        ports=tuple(int(port) for port in sample.get("ports", [])),
        evidence_sources=_strings(t1046.get("evidence_sources", [])),
        uids=_strings(zeek.get("uids", [])),
        notes=_strings(zeek.get("notes", [])),
        mdns_names=_strings(sample.get("mdns_names", [])),
        honeyport_profiles=_strings(sample.get("honeyport_profiles", [])),
        honeyport_nodes=_strings(sample.get("honeyport_nodes", [])),
        honeyport_payloads=_strings(sample.get("honeyport_payloads", [])),
        risk_score=int(event.get("risk_score", 0)),
        severity=str(t1046.get("severity_name", "")),
        confidence=str(t1046.get("confidence", "")),
        authorized=str(authorized["reason"]) if isinstance(authorized, dict) else None,
        closed=bool(t1046.get("closed", False)),
        message=str(document.get("message", "")),
        observer=str(document.get("observer", {}).get("name", "")),
        touches=tuple(TouchSeen(_time(touch["time"]), str(touch["ip"]), int(touch["port"]), str(touch["transport"]),
                                str(touch["profile"]), str(touch["touch"]), str(touch["payload"]))
                      for touch in sample.get("honeyport_touches", [])),
        sources=int(aggregate["sources"]) if isinstance(aggregate, dict) else 0,
        identity=tuple((str(fact["kind"]), str(fact["value"]), str(fact["source"]))
                       for fact in t1046.get("identity", {}).get("facts", [])),
        history=t1046.get("history") if isinstance(t1046.get("history"), dict) else None,
    )


def fold(updates: Iterable[Update]) -> list[Incident]:
    """Group updates by incident: the newest update of each, the first time each rule was listed.

    Incidents come out in the order they opened (first seen, then id), so a report reads like a timeline.
    """
    grouped: dict[str, list[Update]] = {}
    for update in updates:
        grouped.setdefault(update.incident_id, []).append(update)
    incidents = []
    for group in grouped.values():
        group.sort(key=lambda u: (u.update, u.ts))
        seen: dict[str, RuleFiring] = {}
        for update in group:
            for rule in (*update.rules, update.rule):
                if rule not in seen:
                    seen[rule] = RuleFiring(rule, update.ts, update.update)
        latest = group[-1]
        incidents.append(Incident(latest, tuple(sorted(seen.values(), key=lambda f: (f.ts, f.update))),
                                  len(group), tuple(group)))
    incidents.sort(key=lambda i: (i.latest.first_seen, i.incident_id))
    return incidents


def _first_line(path: Path) -> bytes:
    try:
        with open_log(path) as stream:
            for line in stream:
                if line.strip():
                    return line.strip()
    except OSError as error:
        raise LogReadError(why_unreadable(path, error)) from None
    except (EOFError, zlib.error):
        return b""  # a truncated or corrupt gzip file: no alerts file; reading it as a log reports it
    return b""


def is_alerts_file(path: Path) -> bool:
    """True when ``path`` is a file of alerts as JSON lines (ECS); a Zeek JSON log is not.

    Raises :class:`LogReadError` for OCSF alerts, which carry too little for a report.
    """
    if not path.is_file():
        return False
    line = _first_line(path)
    if not line.startswith(b"{"):
        return False
    try:
        document = orjson.loads(line)
    except orjson.JSONDecodeError:
        return False
    if not isinstance(document, dict):
        return False
    if "class_uid" in document and "finding_info" in document:
        raise LogReadError(f"{path}: OCSF alerts carry too little for a report; give the ECS alerts "
                           "(a file sink with the default format: ecs) or the Zeek logs")
    return "t1046" in document and "event" in document


def read_alerts(path: Path) -> tuple[list[Update], int]:
    """The updates in an ECS alerts JSONL file (plain or gzip), and how many lines were skipped: a line
    that is not an ECS alert is logged (the first few) and skipped."""
    try:
        stream = open_log(path)
    except OSError as error:
        raise LogReadError(why_unreadable(path, error)) from None
    updates: list[Update] = []
    skipped = 0
    with stream:
        for number, line in enumerate(stream, 1):
            if not line.strip():
                continue
            try:
                updates.append(update_of(orjson.loads(line)))
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as error:
                skipped += 1
                if skipped <= 3:
                    log.warning("%s:%d: skipped line that is not an ECS alert: %r", path, number, error)
    if skipped > 3:
        log.warning("%s: %d lines that are not ECS alerts skipped in all", path, skipped)
    return updates, skipped


def utc(ts: float, with_date: bool = True) -> str:
    """A time for people: ``2026-11-28 20:35:15 UTC`` (or only ``20:35:15``)."""
    moment = datetime.fromtimestamp(ts, UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC" if with_date else "%H:%M:%S")


def duration(seconds: float) -> str:
    """A span for people: ``5.6 ms``, ``0.8 s``, ``12 min``, ``3.5 h``."""
    if seconds < 0.1:
        return f"{seconds * 1000:.1f} ms"
    if seconds < 100:
        return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    if seconds < 3 * 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def headline(incident: Incident) -> str:
    """Who did what, when: ``10.200.0.10 port_scan, 2026-11-28 20:35:15 UTC for 1.2 s``."""
    latest = incident.latest
    same_day = utc(latest.first_seen)[:10] == utc(latest.last_seen)[:10]
    until = utc(latest.last_seen, with_date=not same_day)
    return (f"{latest.who} {latest.action}, {utc(latest.first_seen)} to {until}"
            f" ({duration(latest.last_seen - latest.first_seen)})")
