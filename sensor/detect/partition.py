"""One stream judged in parts by source, saying what one correlator over it says, in its order.

The verdicts are per scanner, so the work parts by source address; what crosses sources is small and kept by
the one reader of the whole stream (:class:`Whole`), which tells each part what it needs
(:mod:`sensor.detect.told`):

* **time** -- the watermark is over every record in merged order: each record goes to its part with the
  watermark and the position it has in the whole stream, and time's own work (every
  :data:`~sensor.detect.correlator.HOUSEKEEPING_EVERY` of event time) is a :class:`Tick` every part takes at
  the same position. Where that work stops (the least recently active track that still counts, among all the
  parts' tracks) the parts agree first (:func:`~sensor.detect.order.bounds` of each part's
  :class:`~sensor.detect.order.Expiry`);
* **outages** -- the reader keeps what every client was served by, and drops the failed contacts that are
  outages (and the records no rule reads) before they reach a part;
* **lockstep** -- the reader keeps the latest unproven probe of each service; each probe goes with its partner,
  and the partner's part gets a :class:`Partner` at the same position when it is another's;
* **mDNS habits** -- the reader runs the mDNS detector over every question and sends on only those that fire,
  with their rules;
* **host links** -- every host's announcement goes to every part (each keeps the links, and learns the
  identity only of its own addresses); the addresses ever linked are one source, in one part;
* **identities** -- a record naming addresses goes to the part of each.

Honeyport touches are not parted (:class:`Unpartable`): whether one folds into the aggregate of many unproven
sources depends on its source's own state and makes one incident of many sources; the caller judges a stream
that holds any in one correlator. The hard caps (``max_sources`` …) are global: each part reports its
high-water marks (:attr:`~sensor.detect.correlator.Correlator.peaks`) and the output is the one correlator's
only while their sum stays under every cap (:func:`within_caps`). Alerts are merged by their
:data:`~sensor.detect.order.OrderKey`. Pure: the caller moves the messages to the parts
(:mod:`sensor.detect.parts`: :func:`~sensor.detect.parts.judge_in_parts` in one process; :mod:`sensor.workers`
across processes; :mod:`sensor.engine` on a Dask cluster).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from sensor.config import DetectionConfig
from sensor.detect.correlator import HOUSEKEEPING_EVERY, PRUNE_EVERY
from sensor.detect.hosts import HostLinks
from sensor.detect.lifecycle import Key
from sensor.detect.lockstep import Probes
from sensor.detect.mdns import MdnsBrowseDetector
from sensor.detect.routes import Columns, Shipped, columns_of, parts_of, routed
from sensor.detect.scope import Reach, Scope
from sensor.detect.served import ServedPorts
from sensor.detect.watermark import Watermark
from sensor.observations import (
    FAILED_OUTCOMES,
    ConnAttempt,
    ConnRows,
    HoneyportHit,
    IdentitySeen,
    Intake,
    IPAddress,
    MdnsHost,
    MdnsQuery,
    Observation,
    Outcome,
    ZeekDetection,
    address_key,
)

if TYPE_CHECKING:
    from numpy.typing import NDArray

_MIX = 0x9E3779B97F4A7C15
COLUMNAR_RUN = 256
"""Records a block must hold to be decided a column at a time (below, numpy's fixed costs outweigh it)."""
_ESTABLISHED, _OTHER = Outcome.ESTABLISHED, Outcome.OTHER
_ESTABLISHED_CODE = list(Outcome).index(Outcome.ESTABLISHED)


class Unpartable(Exception):
    """A stream this module cannot judge in parts (it holds honeyport touches)."""


def part_of(key: int, parts: int) -> int:
    """The part a source (by :func:`~sensor.observations.address_key`) is judged in: a mixed hash, so that
    addresses counted up in order spread evenly."""
    return (((key * _MIX) & 0xFFFFFFFFFFFFFFFF) >> 40) % parts if parts > 1 else 0


@dataclass(slots=True)
class Judge:
    """Observations for one part: one observation, or a block of conn records, each with its watermark and
    position, and what the part is told of them."""

    item: Observation | ConnRows | Shipped
    nows: list[float]
    positions: list[int]
    partners: dict[tuple[int, Key, float], Key] = field(default_factory=dict)
    fired: list[str] = field(default_factory=list)
    browsed: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Tick:
    """Time's own work before the observation at ``position`` (``prune``: the pass every
    :data:`~sensor.detect.correlator.PRUNE_EVERY` that also forgets old window entries and identities)."""

    now: float
    position: int
    prune: bool


@dataclass(frozen=True, slots=True)
class Partner:
    """``prober`` (of another part) probed a service in lockstep with ``partner`` at ``position``."""

    position: int
    partner: Key
    prober: int


Message = Judge | Tick | Partner


def linked_groups(hosts: Iterable[MdnsHost]) -> dict[int, int]:
    """For every address any host's announcements ever linked to another, the key of the group it is judged in
    (the lowest of every address ever linked with it, round about): a host's addresses are one source."""
    links = HostLinks()
    parent: dict[int, int] = {}

    def root(key: int) -> int:
        while parent.get(key, key) != key:
            key = parent[key]
        return key

    for host in hosts:
        links.announced(host)
        for address, canonical in links.canonical_of.items():
            low, high = sorted((root(address_key(address)), root(address_key(canonical))))
            if low != high:
                parent[high] = low
    return {key: root(key) for key in parent} | {root(key): root(key) for key in parent}


class Whole:
    """The reader of the whole stream: what crosses sources, and where each observation goes."""

    def __init__(self, config: DetectionConfig, parts: int, groups: dict[int, int] | None = None,
                 columnar_from: int = COLUMNAR_RUN) -> None:
        self._config = config
        self._columnar_from = columnar_from
        """Records a block must hold to be decided a column at a time."""
        self.parts = parts
        self._groups = groups or {}
        self._grouped = groups is not None
        """Whether the host links' groups were gathered first (without them, no announcement can be parted)."""
        self._scope = Scope(config)
        self._served = ServedPorts(config.served_memory, config.max_served)
        self._lockstep = Probes()
        self._links = HostLinks()
        self._mdns = MdnsBrowseDetector(config)
        self._next_housekeeping = float("-inf")
        self._next_prune = float("-inf")
        self._cache: dict[int, int] = {}
        self.position = -1
        """Position of the latest observation read."""
        self.observations = 0

    def part(self, key: int) -> int:
        """The part of an address (by key)."""
        found = self._cache.get(key)
        if found is None:
            found = part_of(self._groups.get(key, key), self.parts)
            if len(self._cache) >= 1 << 20:
                self._cache.clear()
            self._cache[key] = found
        return found

    def read(self, item: Intake, watermark: Watermark) -> Iterator[tuple[int, Message]]:
        """The messages one read item makes: ``(part, message)``, ``part`` -1 for every part."""
        if isinstance(item, ConnRows):
            yield from self._rows(item, watermark.logged_many(item.ts))
            return
        if isinstance(item, ConnAttempt):
            yield from self._rows(ConnRows.of([item]), [watermark.logged(item.ts)])
            return
        now = watermark.logged(item.ts)
        self.observations += 1
        self.position += 1
        yield from self._tick(now, self.position)
        yield from self._one(item, now, self.position)

    def _tick(self, now: float, position: int) -> Iterator[tuple[int, Message]]:
        if now < self._next_housekeeping:
            return
        self._next_housekeeping = now + HOUSEKEEPING_EVERY
        prune = now >= self._next_prune
        if prune:
            self._next_prune = now + PRUNE_EVERY
            self._mdns.expire(now)
        yield -1, Tick(now, position, prune)

    def _one(self, item: Observation, now: float, at: int) -> Iterator[tuple[int, Message]]:
        if isinstance(item, HoneyportHit):
            raise Unpartable("honeyport touches (the aggregate of unproven sources spans them)")
        if isinstance(item, MdnsHost):
            if not self._grouped:
                raise Unpartable("host announcements (the addresses they link were not gathered first)")
            self._links.announced(item)
            yield -1, Judge(item, [now], [at])
        elif isinstance(item, IdentitySeen):
            for part in dict.fromkeys(self.part(address_key(address)) for address in item.addresses):
                yield part, Judge(item, [now], [at])
        elif isinstance(item, MdnsQuery):
            fired = self._mdns.rules_for(item, now)
            if fired:
                yield self.part(self._key(item.source)), Judge(item, [now], [at], fired=fired,
                                                               browsed=self._mdns.browsed)
        else:
            source = item.scanner if isinstance(item, ZeekDetection) else item.source
            yield self.part(self._key(source)), Judge(item, [now], [at])

    def _key(self, address: IPAddress) -> int:
        return address_key(self._links.canonical_of.get(address, address))

    def _rows(self, rows: ConnRows, nows: list[float]) -> Iterator[tuple[int, Message]]:
        """A block of conn records: the ticks of time's own work that fall among them first (each part takes one
        when it reaches its position), then the block's records, those no rule reads and the outages dropped,
        the rest to their parts."""
        start = self.position + 1
        self.observations += len(rows)
        self.position += len(rows)
        config = self._config
        times = np.asarray(nows, dtype=np.float64)
        due = int(np.searchsorted(times, self._next_housekeeping, side="left"))
        while due < len(rows):
            yield from self._tick(nows[due], start + due)
            due = int(np.searchsorted(times, self._next_housekeeping, side="left"))
        columns = None if self._groups or config.allowlist or len(rows) < self._columnar_from else columns_of(rows)
        read = None if columns is None else routed(rows, columns, 0, len(rows), self._scope, self._served,
                                                   config.served_memory, config.max_served)
        if columns is None or read is None:
            yield from self._one_by_one(rows, nows, start, 0, len(rows))
        else:
            yield from self._parted(rows, times, start, np.flatnonzero(read), columns)

    def _parted(self, rows: ConnRows, times: NDArray[np.float64], start: int, chosen: NDArray[np.int64],
                columns: Columns) -> Iterator[tuple[int, Message]]:
        """The chosen records of a run to their parts, their unproven probes to the lockstep first (whose partner
        in another part is told at the same position, after that part's records before it)."""
        parts = parts_of(columns.source[chosen], self.parts)
        partners: dict[int, dict[tuple[int, Key, float], Key]] = {}
        cuts: dict[int, list[tuple[int, Partner]]] = {}
        probes = chosen[columns.outcome[chosen] != _ESTABLISHED_CODE]
        for index in probes.tolist():
            service, key, ts = rows.service_key[index], rows.source_key[index], rows.ts[index]
            partner = self._lockstep.partner(service, key, ts)
            if partner is None:
                continue
            part = self.part(key)
            partners.setdefault(part, {})[(service, key, ts)] = partner
            partner_key = partner if isinstance(partner, int) else partner[0]
            other = self.part(partner_key)
            if other != part and partner_key != key:
                cuts.setdefault(other, []).append((index, Partner(start + index, partner, key)))
        for part in np.unique(parts).tolist():
            indices = chosen[parts == part]
            done = 0
            for index, partner_message in [*cuts.pop(part, []), (len(rows), None)]:
                upto = int(np.searchsorted(indices, index, side="right"))
                if upto > done:
                    run = indices[done:upto]
                    yield part, Judge(Shipped.of(rows, columns, run), times[run].tolist(), (start + run).tolist(),
                                      partners.pop(part, {}))
                done = upto
                if partner_message is not None:
                    yield part, partner_message
        for part, pending in cuts.items():
            for _, partner_message in pending:
                yield part, partner_message

    def _one_by_one(self, rows: ConnRows, nows: list[float], start: int, run: int,
                    stop: int) -> Iterator[tuple[int, Message]]:
        """The records of a run judged one at a time (host links or an allowlist decide their keys, an IPv6 key,
        the memory of working services near its cap)."""
        config, scope, served, lockstep = self._config, self._scope, self._served, self._lockstep
        links, allowlist = self._links.canonical_of, config.allowlist
        chosen: dict[int, list[int]] = {}
        partners: dict[int, dict[tuple[int, Key, float], Key]] = {}
        for index in range(run, stop):
            ts, target, service, outcome = rows.ts[index], rows.target_key[index], rows.service_key[index], \
                rows.outcome[index]
            reach = scope.contact(rows.source[index], rows.source_key[index], rows.target[index], target)
            if outcome is _OTHER or reach is Reach.NONE:
                continue
            if outcome is _ESTABLISHED:
                if reach is Reach.INSIDE:
                    served.serving(service, ts)
            elif outcome in FAILED_OUTCOMES and served.recently(service, ts):
                continue
            address_of = rows.source_key[index]
            if links:
                address_of = address_key(links.get(rows.source[index], rows.source[index]))
            part = self.part(address_of)
            chosen.setdefault(part, []).append(index)
            key: Key = address_of
            if allowlist:
                authorized = scope.authorization(links.get(rows.source[index], rows.source[index]),
                                                 rows.target_port[index], ts)
                key = address_of if authorized is None else (address_of, authorized)
            if outcome is not _ESTABLISHED:
                partner = lockstep.partner(service, key, ts)
                if partner is not None:
                    partners.setdefault(part, {})[(service, key, ts)] = partner
                    other = self.part(partner if isinstance(partner, int) else partner[0])
                    prober = key if isinstance(key, int) else key[0]
                    if other != part and (partner if isinstance(partner, int) else partner[0]) != prober:
                        yield from self._cut(rows, nows, start, {other: chosen.pop(other, [])}, partners)
                        yield other, Partner(start + index, partner, prober)
        yield from self._cut(rows, nows, start, chosen, partners)

    @staticmethod
    def _cut(rows: ConnRows, nows: list[float], start: int, chosen: dict[int, list[int]],
             partners: dict[int, dict[tuple[int, Key, float], Key]]) -> Iterator[tuple[int, Message]]:
        """The runs of records chosen so far for each part (the partners of their probes with them)."""
        for part, indices in chosen.items():
            if indices:
                yield part, Judge(rows.pick(indices), [nows[index] for index in indices],
                                  [start + index for index in indices], partners.pop(part, {}))


def within_caps(config: DetectionConfig, peaks: Iterable[dict[str, int]]) -> str | None:
    """The first cap the parts' high-water marks together may have reached (their sum at the cap or past it), or
    None: below every cap, no part's correlator evicted anything the one correlator would have kept."""
    found = list(peaks)
    for name in ("max_sources", "max_incidents", "max_profiles", "max_identities"):
        if sum(peak[name] for peak in found) >= getattr(config, name) - 1:
            return name
    return None
