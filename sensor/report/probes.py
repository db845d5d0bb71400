"""The probes behind each incident: the scanner's conn.log records, as compact arrays.

Read with the sensor's own Zeek log reader (:func:`sensor.zeek.logs.discover`, :class:`ZeekLog`,
:func:`sensor.zeek.records.observations`), so the report judges each connection exactly as the
correlator did. A probe belongs to the incident of its scanner whose first-to-last-seen window holds its
time. Only arrays are kept (17 bytes a probe) and a bounded set of uids to pivot on.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path

import numpy as np
import numpy.typing as npt

from sensor.observations import ConnAttempt, IPAddress, Outcome
from sensor.report.incidents import Incident
from sensor.zeek.logs import ZeekLog, discover
from sensor.zeek.malformed import MalformedLog
from sensor.zeek.records import observations, wanted_fields

PIVOTS = 40
"""Uids kept per incident of probes that found something (answered, half-open, honeyport)."""
WINDOW_SLACK = 0.001
"""Seconds of slack around an incident's window: its times went through RFC 3339 microseconds."""
_HONEYPORT_TAGS = frozenset({"honeyport", "dark_address"})


class Shown(IntEnum):
    """What a probe found, in the report's words and colours (the index orders the legend)."""

    ANSWERED = 0
    REFUSED = 1
    UNANSWERED = 2
    HALF_OPEN = 3
    STEALTH = 4
    HONEYPORT = 5
    OTHER = 6

    @property
    def label(self) -> str:
        """The legend's word for it."""
        return self.name.lower().replace("_", "-")


FOUND_SOMETHING = (Shown.ANSWERED, Shown.HALF_OPEN, Shown.HONEYPORT)
"""Outcomes that show a live service or a honeyport: what an analyst looks at first."""
_SHOWN = {
    Outcome.ESTABLISHED: Shown.ANSWERED,
    Outcome.REJECTED: Shown.REFUSED,
    Outcome.UNANSWERED: Shown.UNANSWERED,
    Outcome.HALF_OPEN: Shown.HALF_OPEN,
    Outcome.STEALTH: Shown.STEALTH,
    Outcome.OTHER: Shown.OTHER,
}


def shown(conn: ConnAttempt) -> Shown:
    """The report's outcome of a probe: a honeyport tag wins over the connection's state."""
    if conn.zeek_tags & _HONEYPORT_TAGS:
        return Shown.HONEYPORT
    return _SHOWN[conn.outcome]


@dataclass(frozen=True, slots=True)
class Pivot:
    """A probe worth opening in conn.log."""

    uid: str
    ts: float
    target: IPAddress
    port: int
    transport: str
    outcome: Shown


@dataclass(frozen=True, slots=True)
class Probes:
    """An incident's probes: parallel arrays, targets as indexes into :attr:`targets`."""

    ts: npt.NDArray[np.float64]
    target: npt.NDArray[np.int32]
    port: npt.NDArray[np.int32]
    outcome: npt.NDArray[np.uint8]
    targets: tuple[IPAddress, ...]
    pivots: tuple[Pivot, ...]
    """The first and last probe, then the first probe of each (target, port) that found something."""

    def __len__(self) -> int:
        return int(self.ts.size)


@dataclass(slots=True)
class _Collector:
    ts: array[float] = field(default_factory=lambda: array("d"))
    target: array[int] = field(default_factory=lambda: array("i"))
    port: array[int] = field(default_factory=lambda: array("i"))
    outcome: array[int] = field(default_factory=lambda: array("B"))
    targets: dict[IPAddress, int] = field(default_factory=dict)
    first: ConnAttempt | None = None
    last: ConnAttempt | None = None
    found: dict[tuple[IPAddress, int, str], Pivot] = field(default_factory=dict)

    def add(self, conn: ConnAttempt) -> None:
        index = self.targets.setdefault(conn.target, len(self.targets))
        outcome = shown(conn)
        self.ts.append(conn.ts)
        self.target.append(index)
        self.port.append(conn.target_port)
        self.outcome.append(outcome)
        if self.first is None or conn.ts < self.first.ts:
            self.first = conn
        if self.last is None or conn.ts >= self.last.ts:
            self.last = conn
        key = (conn.target, conn.target_port, conn.transport.value)
        if outcome in FOUND_SOMETHING and conn.uid and key not in self.found and len(self.found) < PIVOTS:
            self.found[key] = _pivot(conn, outcome)

    def probes(self) -> Probes:
        ends = [_pivot(conn, shown(conn)) for conn in (self.first, self.last) if conn is not None and conn.uid]
        pivots = tuple(dict.fromkeys([*ends[:1], *sorted(self.found.values(), key=lambda p: p.ts), *ends[1:]]))
        return Probes(
            ts=np.frombuffer(self.ts, dtype=np.float64),
            target=np.frombuffer(self.target, dtype=np.int32),
            port=np.frombuffer(self.port, dtype=np.int32),
            outcome=np.frombuffer(self.outcome, dtype=np.uint8),
            targets=tuple(self.targets),
            pivots=pivots,
        )


def _pivot(conn: ConnAttempt, outcome: Shown) -> Pivot:
    return Pivot(conn.uid, conn.ts, conn.target, conn.target_port, conn.transport.value, outcome)


def no_probes() -> Probes:
    """The probes of an incident the input holds no conn.log for."""
    return _Collector().probes()


def _conn_logs(paths: Sequence[Path], malformed: MalformedLog) -> Iterable[ZeekLog]:
    for kind, files in discover(list(paths)):
        if kind in ("conn", None):
            yield from (ZeekLog(path, malformed) for path in files)


def collect(paths: Sequence[Path], incidents: Sequence[Incident]) -> dict[str, Probes]:
    """The probes of each incident (by incident id) in the conn logs among ``paths``.

    A probe in the windows of two incidents of one scanner (an authorized and an unauthorized one) goes to
    the one that opened first. Raises :class:`~sensor.errors.LogReadError` for an unreadable file.
    """
    windows: dict[IPAddress, list[tuple[float, float, _Collector]]] = {}
    collectors: dict[str, _Collector] = {}
    for incident in incidents:
        collector = collectors[incident.incident_id] = _Collector()
        if incident.scanner is None:  # an aggregate of many sources: its touches are in its alerts
            continue
        windows.setdefault(incident.scanner, []).append(
            (incident.latest.first_seen - WINDOW_SLACK, incident.latest.last_seen + WINDOW_SLACK, collector))
    malformed = MalformedLog()
    if windows:
        for log in _conn_logs(paths, malformed):
            for observation in (found for batch in log.batches(wanted_fields) for found in observations(log, batch)):
                if type(observation) is not ConnAttempt:
                    continue
                candidates = windows.get(observation.source)
                if candidates is None:
                    continue
                for start, end, collector in candidates:
                    if start <= observation.ts <= end:
                        collector.add(observation)
                        break
    malformed.summarise()
    return {incident_id: collector.probes() for incident_id, collector in collectors.items()}
