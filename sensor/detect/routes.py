"""Where the records of a block of conn records go, a column at a time: what the reader of the whole stream
(:class:`~sensor.detect.partition.Whole`) decides of each record, with numpy.

For each record of a run (no pass of time's own work inside it): whether any rule reads it (a scan target, an
outcome that says something), whether it is an outage (a failed contact to a service some client was served by
within ``served_memory``, judged at the record's own time against the services' latest working connections
*before it in the stream*), and the part of its source. The memory of working services moves as one
correlator's does, record after record: each service's latest working connection, new services in the order
of their first one. Only where this is the common case -- IPv4 keys, no host links, no allowlist, the memory
far from its cap -- is it used (:func:`columns_of` says whether); the reader judges any other block record
by record. ``tests/detect/test_partition.py`` holds both ways to one correlator.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import TYPE_CHECKING

import numpy as np

from sensor.detect.scope import Reach, Scope
from sensor.detect.served import ServedPorts
from sensor.observations import CloudIdentity, ConnRows, IPAddress, Outcome, Transport, picked

if TYPE_CHECKING:
    from numpy.typing import NDArray

_CODES = {outcome: code for code, outcome in enumerate(Outcome)}
_OUTCOMES = np.array(list(Outcome), dtype=object)
_TRANSPORT_CODES = {transport: code for code, transport in enumerate(Transport)}
_TRANSPORTS = np.array(list(Transport), dtype=object)
_ESTABLISHED, _OTHER = _CODES[Outcome.ESTABLISHED], _CODES[Outcome.OTHER]
_FAILED = np.array([_CODES[Outcome.REJECTED], _CODES[Outcome.UNANSWERED]], dtype=np.int8)
_MIX = np.uint64(0x9E3779B97F4A7C15)
_REACH_CODES = {Reach.NONE: 0, Reach.INSIDE: 1, Reach.OUTSIDE: 2}
_INSIDE, _OUTSIDE = _REACH_CODES[Reach.INSIDE], _REACH_CODES[Reach.OUTSIDE]


@dataclass(frozen=True, slots=True)
class Columns:
    """The columns of a block the reader decides by."""

    ts: NDArray[np.float64]
    source: NDArray[np.int64]
    target: NDArray[np.int64]
    service: NDArray[np.int64]
    outcome: NDArray[np.int8]
    transport: NDArray[np.int8]
    target_port: NDArray[np.int64]


def columns_of(rows: ConnRows) -> Columns | None:
    """The block's columns, or None where a key does not fit 64 bits (an IPv6 address)."""
    try:
        return Columns(np.asarray(rows.ts, dtype=np.float64), np.asarray(rows.source_key, dtype=np.int64),
                       np.asarray(rows.target_key, dtype=np.int64), np.asarray(rows.service_key, dtype=np.int64),
                       np.fromiter(map(_CODES.__getitem__, rows.outcome), dtype=np.int8, count=len(rows)),
                       np.fromiter(map(_TRANSPORT_CODES.__getitem__, rows.transport), dtype=np.int8, count=len(rows)),
                       np.asarray(rows.target_port, dtype=np.int64))
    except OverflowError:
        return None


@dataclass(slots=True)
class Shipped:
    """Records of a block bound for one part, as they travel to another process: the columns every record is
    judged by as arrays (which pickle as their bytes), the others picked from the block's own columns (read
    lazily, they pick their own)."""

    columns: Columns
    source: Sequence[IPAddress]
    source_port: Sequence[int]
    target: Sequence[IPAddress]
    uid: Sequence[str]
    service: Sequence[str]
    zeek_tags: list[frozenset[str]]
    via: str
    origin: Sequence[CloudIdentity | None]
    source_mac: Sequence[str]

    @classmethod
    def of(cls, rows: ConnRows, columns: Columns, indices: NDArray[np.int64]) -> Shipped:
        """The records of ``rows`` (whose columns are ``columns``) at ``indices``."""
        picked = rows.pick(indices, cold_only=True)  # type: ignore[arg-type]
        return cls(Columns(columns.ts[indices], columns.source[indices], columns.target[indices],
                           columns.service[indices], columns.outcome[indices], columns.transport[indices],
                           columns.target_port[indices]),
                   picked.source, picked.source_port, picked.target, picked.uid, picked.service, picked.zeek_tags,
                   rows.via, picked.origin, picked.source_mac)

    def __len__(self) -> int:
        return len(self.columns.ts)

    def cut(self, start: int, stop: int) -> Shipped:
        """The records from ``start`` up to ``stop``."""
        span = np.arange(start, stop)
        columns = self.columns
        return Shipped(Columns(columns.ts[start:stop], columns.source[start:stop], columns.target[start:stop],
                               columns.service[start:stop], columns.outcome[start:stop],
                               columns.transport[start:stop], columns.target_port[start:stop]),
                       picked(self.source, span), picked(self.source_port, span), picked(self.target, span),  # type: ignore[arg-type]
                       picked(self.uid, span), picked(self.service, span), self.zeek_tags[start:stop], self.via,  # type: ignore[arg-type]
                       picked(self.origin, span) if self.origin else (),  # type: ignore[arg-type]
                       picked(self.source_mac, span) if self.source_mac else ())  # type: ignore[arg-type]

    def rows(self) -> ConnRows:
        """The records, as the correlator judges them."""
        columns = self.columns
        return ConnRows(columns.ts.tolist(), self.source, self.source_port, self.target, columns.target_port.tolist(),
                        _TRANSPORTS[columns.transport].tolist(), _OUTCOMES[columns.outcome].tolist(), self.uid,
                        self.service, self.zeek_tags, columns.source.tolist(), columns.target.tolist(),
                        columns.service.tolist(), self.via, self.origin, self.source_mac)


def parts_of(keys: NDArray[np.int64], parts: int) -> NDArray[np.int64]:
    """:func:`~sensor.detect.partition.part_of` of each key."""
    if parts == 1:
        return np.zeros(len(keys), dtype=np.int64)
    mixed = keys.astype(np.uint64) * _MIX
    found: NDArray[np.int64] = ((mixed >> np.uint64(40)) % np.uint64(parts)).astype(np.int64)
    return found


def routed(rows: ConnRows, columns: Columns, start: int, stop: int, scope: Scope,
           served: ServedPorts, memory: float, capacity: int) -> NDArray[np.bool_] | None:
    """Which records of ``rows[start:stop]`` reach a part (read by a rule, no outage), the memory of working
    services moved past them; None (and nothing moved) where the memory could reach its cap in this run."""
    ts, targets, services, outcomes = (columns.ts[start:stop], columns.target[start:stop],
                                       columns.service[start:stop], columns.outcome[start:stop])
    reach = _reach(rows.target, targets, start, scope)
    inside = reach == _INSIDE
    read: NDArray[np.bool_] = inside.copy()
    outward = reach == _OUTSIDE
    if outward.any():  # an outbound contact is one from an internal source
        read |= outward & (_reach(rows.source, columns.source[start:stop], start, scope) == _INSIDE)
    read &= outcomes != _OTHER
    working = np.flatnonzero(read & inside & (outcomes == _ESTABLISHED))  # the site's services are remembered
    failed = np.flatnonzero(read & np.isin(outcomes, _FAILED))
    order = working[np.argsort(services[working], kind="stable")]
    keys = services[order]
    starts = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1]))) if len(keys) else keys
    group_keys = keys[starts].tolist()
    latest = served.latest
    known = np.array(list(map(latest.get, group_keys)), dtype=np.float64)
    new = np.isnan(known)
    if len(latest) + int(new.sum()) >= capacity:
        return None
    if len(failed):
        read[_outages(ts, services, working, failed, latest, memory)] = False
    if len(order):
        _serve(latest, group_keys, known, new, np.maximum.reduceat(ts[order], starts),
               np.minimum.reduceat(order, starts))
    return read


def _reach(addresses: Sequence[IPAddress], keys: NDArray[np.int64], start: int, scope: Scope) -> NDArray[np.int8]:
    """The :class:`~sensor.detect.scope.Reach` of each address of ``addresses[start:]`` whose keys are ``keys``, as
    codes (:data:`_INSIDE`, :data:`_OUTSIDE`, 0 for none), each distinct address judged once."""
    distinct, first, spread = np.unique(keys, return_index=True, return_inverse=True)
    memo = scope.memo
    codes = [_REACH_CODES[memo.get(key) or scope.reach(addresses[start + at], key)]
             for key, at in zip(distinct.tolist(), first.tolist(), strict=True)]
    found: NDArray[np.int8] = np.asarray(codes, dtype=np.int8)[spread]
    return found


def _outages(ts: NDArray[np.float64], services: NDArray[np.int64], working: NDArray[np.int64],
             failed: NDArray[np.int64], latest: dict[int, float], memory: float) -> NDArray[np.int64]:
    """The failed contacts (indices) to a service some client was served by within ``memory`` of their time, as
    :meth:`~sensor.detect.served.ServedPorts.recently` judges each after every working connection before it."""
    concerned = np.isin(services[working], services[failed])
    both = np.concatenate((working[concerned], failed))
    both.sort()
    order = both[np.argsort(services[both], kind="stable")]
    keys, times = services[order], ts[order]
    works = np.isin(order, working)
    boundaries = np.concatenate(([True], keys[1:] != keys[:-1]))
    starts, groups = np.flatnonzero(boundaries), np.cumsum(boundaries) - 1
    count = len(order)
    by_time = np.argsort(times, kind="stable")
    rank = np.empty(count, dtype=np.int64)
    rank[by_time] = np.arange(1, count + 1)
    base = groups * (count + 1)
    running = np.maximum.accumulate(base + np.where(works, rank, 0))
    before = np.concatenate(([0], running[:-1])) - base
    before[starts] = 0
    within = np.where(before > 0, times[by_time][np.maximum(before - 1, 0)], -np.inf)
    known = [latest.get(key) for key in keys[starts].tolist()]
    prior = np.array([-np.inf if when is None else when for when in known], dtype=np.float64)[groups]
    latest_before = np.maximum(within, prior)
    outage = ~works & np.isfinite(latest_before) & (np.abs(times - latest_before) <= memory)
    found: NDArray[np.int64] = order[outage]
    return found


def _serve(latest: dict[int, float], keys: list[int], known: NDArray[np.float64], new: NDArray[np.bool_],
           latest_in: NDArray[np.float64], first_in: NDArray[np.int64]) -> None:
    """Move the memory of working services past a run: each known service's latest where it moved, the new ones
    in the order of their first working connection in it (as :meth:`~sensor.detect.served.ServedPorts.serving`
    record after record leaves it)."""
    moved = np.flatnonzero(~new & (latest_in > known))
    if len(moved):
        latest.update(zip(itemgetter(*moved.tolist())(keys) if len(moved) > 1 else [keys[int(moved[0])]],
                          latest_in[moved].tolist(), strict=True))
    fresh = np.flatnonzero(new)
    if len(fresh):
        fresh = fresh[np.argsort(first_in[fresh], kind="stable")]
        latest.update(zip(itemgetter(*fresh.tolist())(keys) if len(fresh) > 1 else [keys[int(fresh[0])]],
                          latest_in[fresh].tolist(), strict=True))
