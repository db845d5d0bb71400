"""``replay --workers N``: the merged stream judged in N worker processes by source, written as one process writes it.

This process reads the logs and merges them as one-process replay does; the reader of the whole stream
(:class:`~sensor.detect.partition.Whole`) keeps what crosses sources and sends each worker its part's records,
with their watermark and position, in batches over a pipe. Time's own work is a tick every worker takes at the
same position: at each, the workers agree where expiry stops, through a ring of rounds they share
(:class:`SharedExpiry`). Each worker sends back its alerts with their places; a collecting thread here merges
them and writes each once every part has passed its place, so the output is byte for byte one process's.

The parts' high-water marks come back with every batch: once their sum may have reached a cap (``max_sources``
…: :func:`~sensor.detect.partition.within_caps`), nothing more is written and the caller judges the logs again
in one process, skipping what was already written (:class:`Fallback`). The transport is a detail: the same
parts run on a Dask cluster (:mod:`sensor.engine`).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import multiprocessing
import multiprocessing.connection
import resource
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from sensor.alerts.alert import Alert
from sensor.config import DetectionConfig
from sensor.detect.order import END, Expiry, OrderKey
from sensor.detect.partition import Judge, Message, Tick, Unpartable, Whole, within_caps
from sensor.detect.parts import Part
from sensor.detect.routes import Shipped
from sensor.detect.watermark import Watermark
from sensor.observations import ConnRows, Intake

log = logging.getLogger(__name__)
BATCH_RECORDS = 16384
"""Records (and messages) held per worker before what every worker holds is sent."""
TICKS_PER_BATCH = 4096
"""Ticks held per worker before what every worker holds is sent."""
RING_ROUNDS = 4 * TICKS_PER_BATCH
"""Rounds of the ring the workers agree in (:class:`SharedExpiry`)."""
WAIT_SECONDS = 600.0
"""How long a worker waits at a tick for the others before it gives up (one died)."""
_NONE = -1


class Fallback(Exception):
    """The stream cannot be judged in parts from here on (the parts together may have reached a cap, or it holds
    what is never parted): ``written`` alerts were written, all of them one process's, in its order."""

    def __init__(self, reason: str, written: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.written = written


@dataclass(frozen=True, slots=True)
class End:
    """The stream ended at watermark ``now``; ``flush``: the pending updates go out (the stream held anything)."""

    now: float
    flush: bool


@dataclass(slots=True)
class Said:
    """What a worker sends back after a batch: its alerts with their places, how far it got, its high-water marks,
    and at the end its counts."""

    alerts: list[tuple[OrderKey, Alert]]
    through: int
    peaks: dict[str, int]
    counts: tuple[int, int, int] | None = None
    """(alerts made, alerts suppressed as authorized, the worker's peak RSS in KiB), with the last batch."""


def encode(expiry: Expiry) -> list[int]:
    """An :class:`~sensor.detect.order.Expiry` as six integers (-1 where there is none)."""
    dormant = expiry.dormant or (_NONE, _NONE)
    identity = expiry.identity or (_NONE, _NONE)
    return [_NONE if expiry.live is None else expiry.live, *dormant,
            _NONE if expiry.sleeper is None else expiry.sleeper, *identity]


def decode(values: Sequence[int]) -> Expiry:
    """The :class:`~sensor.detect.order.Expiry` :func:`encode` made."""
    live, dormant_at, dormant_touched, sleeper, identity_at, identity_index = values
    return Expiry(None if live == _NONE else live, None if dormant_at == _NONE else (dormant_at, dormant_touched),
                  None if sleeper == _NONE else sleeper,
                  None if identity_at == _NONE else (identity_at, identity_index))


class SharedExpiry:
    """Where the workers agree at each tick, without a barrier: each writes its
    :class:`~sensor.detect.order.Expiry` into its slot of the tick's round in a ring of rounds they share, stamped
    last; one that has something that might go waits until every other's slot of that round is stamped, one that
    has nothing that could go (:attr:`~sensor.detect.order.Expiry.alone`) goes on at once. The ring holds twice
    the ticks a batch may carry, more than any worker can be ahead of another."""

    def __init__(self, context: Any, parts: int) -> None:
        self._parts = parts
        self._slots = context.Array("q", RING_ROUNDS * parts * 7, lock=False)
        self._reached = context.Array("q", parts, lock=False)
        """The rounds each worker has agreed in (no worker writes a round of the ring another may still read)."""
        self._round = 0

    def agree(self, part: int, expiry: Expiry) -> list[Expiry]:
        """Every part's expiry at this tick (this part's is ``expiry``), or this one alone when that is enough."""
        stamp = self._round + 1
        base = (self._round % RING_ROUNDS) * self._parts * 7
        self._round += 1
        slots, reached = self._slots, self._reached
        self._wait(part, lambda: min(reached) + RING_ROUNDS > stamp)
        slots[base + part * 7 + 1:base + part * 7 + 7] = encode(expiry)
        slots[base + part * 7] = stamp
        if expiry.alone:
            reached[part] = stamp
            return [expiry]
        self._wait(part, lambda: all(slots[base + index * 7] == stamp for index in range(self._parts)))
        found = [decode(slots[base + index * 7 + 1:base + index * 7 + 7]) for index in range(self._parts)]
        reached[part] = stamp
        return found

    @staticmethod
    def _wait(part: int, done: Callable[[], bool]) -> None:
        waited = 0
        deadline = time.monotonic() + WAIT_SECONDS
        while not done():
            waited += 1
            time.sleep(0 if waited < 100 else 0.0001)
            if waited % 1000 == 0 and time.monotonic() > deadline:
                raise TimeoutError(f"replay worker {part}: another did not reach the tick")


def serve(part: Part, inbox: Connection, outbox: Connection, agree: Callable[[int, Expiry], list[Expiry]]) -> None:
    """A worker's loop: take each batch of messages, agreeing at each tick; send back what was said."""
    while True:
        batch: list[Message | End] = inbox.recv()
        end = batch[-1] if isinstance(batch[-1], End) else None
        steps = part.steps(message for message in batch if not isinstance(message, End))
        state = next(steps, None)
        while state is not None:
            try:
                state = steps.send(agree(part.index, state[1]))
            except StopIteration:
                state = None
        if end is not None:
            if end.flush:
                part.flush(end.now)
            stats = part.correlator.stats
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            outbox.send(Said(part.taken(), END, part.correlator.peaks, (stats.alerts, stats.suppressed, peak)))
            return
        outbox.send(Said(part.taken(), part.through, part.correlator.peaks))


def _worker(index: int, parts: int, config: DetectionConfig, inbox: Connection, outbox: Connection,
            shared: SharedExpiry) -> None:
    serve(Part(config, index, parts), inbox, outbox, shared.agree)


@dataclass
class Merger:
    """The workers' alerts, written in the one process's order once every part has passed their place."""

    parts: int
    config: DetectionConfig
    write: Callable[[Alert], None]
    through: list[int] = field(init=False)
    peaks: list[dict[str, int]] = field(init=False)
    pending: list[tuple[OrderKey, int, Alert]] = field(default_factory=list)
    written: int = 0
    cap: str | None = None
    stopped: int | None = None
    """A worker that stopped before its last batch."""
    counts: list[tuple[int, int, int]] = field(default_factory=list)
    _taken: Iterator[int] = field(default_factory=itertools.count)

    def __post_init__(self) -> None:
        self.through = [-1] * self.parts
        self.peaks = [{} for _ in range(self.parts)]

    def said(self, part: int, said: Said) -> None:
        """Take what a worker sent; write what every part has now passed."""
        for key, alert in said.alerts:
            heapq.heappush(self.pending, (key, next(self._taken), alert))
        self.through[part] = said.through
        self.peaks[part] = said.peaks
        if said.counts is not None:
            self.counts.append(said.counts)
            log.debug("replay: worker %d done, peak RSS %.0f MiB", part, said.counts[2] / 1024)
        if self.cap is None and all(self.peaks):
            self.cap = within_caps(self.config, self.peaks)
        if self.cap is not None:
            return
        passed = min(self.through)
        while self.pending and (passed == END or int(self.pending[0][0][0]) <= passed):
            _, _, alert = heapq.heappop(self.pending)
            self.write(alert)
            self.written += 1


def judge_in_workers(items: Iterator[Intake], config: DetectionConfig, lateness: float, workers: int,
                     write: Callable[[Alert], None]) -> tuple[int, int, int]:
    """Judge the merged stream ``items`` in ``workers`` processes, calling ``write`` with each alert in one
    process's order; (observations, alerts made, alerts suppressed). Raises :class:`Fallback`."""
    context = multiprocessing.get_context("spawn")
    shared = SharedExpiry(context, workers)
    pipes = [context.Pipe() for _ in range(workers)]
    results = [context.Pipe(duplex=False) for _ in range(workers)]
    processes = [context.Process(target=_worker, args=(index, workers, config, pipes[index][1], results[index][1],
                                                       shared), name=f"t1046-replay-{index}", daemon=True)
                 for index in range(workers)]
    for process in processes:
        process.start()
    merger = Merger(workers, config, write)
    collector = threading.Thread(target=_collect, args=(merger, [reader for reader, _ in results]),
                                 name="t1046-replay-merge", daemon=True)
    collector.start()
    finished = False
    try:
        observations = _feed(items, Whole(config, workers), Watermark(lateness), [sender for sender, _ in pipes],
                             merger)
        collector.join()
        _check(merger)
        finished = True
        log.debug("replay: the reading process's peak RSS %.0f MiB",
                  resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    finally:
        for process in processes:
            if not finished:
                process.terminate()
            process.join()
    return observations, sum(made for made, _, _ in merger.counts), sum(gone for _, gone, _ in merger.counts)


def _check(merger: Merger) -> None:
    if merger.stopped is not None:
        raise RuntimeError(f"replay worker {merger.stopped} stopped before the end of the logs")
    if merger.cap is not None:
        raise Fallback(f"the parts together may have reached {merger.cap}", merger.written)


def _feed(items: Iterator[Intake], whole: Whole, watermark: Watermark, senders: list[Connection],
          merger: Merger) -> int:
    """Send each worker its messages, in batches; the number of observations read."""
    workers = len(senders)
    held: list[list[Message | End]] = [[] for _ in range(workers)]
    size = ticks = 0
    try:
        for item in items:
            for part, message in whole.read(item, watermark):
                if part < 0:
                    for index in range(workers):
                        held[index].append(message)
                    ticks += isinstance(message, Tick)
                else:
                    held[part].append(message)
                size += size_of(message)
                if ticks >= TICKS_PER_BATCH:
                    _send_all(senders, held)
                    size = ticks = 0
            if size >= BATCH_RECORDS * workers:
                _check(merger)
                _send_all(senders, held)
                size = ticks = 0
    except Unpartable as why:
        raise Fallback(str(why), merger.written) from None
    for index in range(workers):
        held[index].append(End(watermark.now, whole.observations > 0))
    _send_all(senders, held)
    return whole.observations


def size_of(message: Message) -> int:
    """What a message counts for in a batch: its records."""
    return len(message.item) if isinstance(message, Judge) and isinstance(message.item, ConnRows | Shipped) else 1


def _send_all(senders: list[Connection], held: list[list[Message | End]]) -> None:
    """Send every worker what is held for it, all at once: a worker that reaches a tick waits there for the
    others, which must have it too."""
    for index, sender in enumerate(senders):
        if held[index]:
            sender.send(held[index])
            held[index] = []


def _collect(merger: Merger, readers: list[Connection]) -> None:
    """Take every worker's results as they come, until each sent its last."""
    open_readers = dict(enumerate(readers))
    parts = {id(reader): index for index, reader in enumerate(readers)}
    while open_readers:
        for ready in multiprocessing.connection.wait(list(open_readers.values())):
            part = parts[id(ready)]
            try:
                said: Said = open_readers[part].recv()
            except EOFError:
                del open_readers[part]
                merger.stopped = part
                continue
            merger.said(part, said)
            if said.through == END:
                del open_readers[part]
