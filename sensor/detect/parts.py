"""One part of a stream judged in parts (:mod:`sensor.detect.partition`): its correlator, and the alerts it said.

A part takes its messages in batches. A tick of time's own work comes before the records of the block it falls
in; the part holds it until its own records reach the tick's position (a block of records is judged in runs
cut there), and takes it at the latest at the end of the batch, which holds every record of the part before
it. At each tick the parts agree where expiry stops: :meth:`Part.steps` yields the part's
:class:`~sensor.detect.order.Expiry` there and is sent every part's, by whoever drives the parts --
:func:`judge_in_parts` drives them together in one process, :mod:`sensor.workers` in processes that agree
through memory they share, :mod:`sensor.engine` on a Dask cluster. Pure.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Generator, Iterable, Sequence
from operator import itemgetter

import numpy as np

from sensor.alerts.alert import Alert
from sensor.config import DetectionConfig
from sensor.detect.correlator import Correlator
from sensor.detect.order import Expiry, OrderKey, bounds
from sensor.detect.partition import (
    COLUMNAR_RUN,
    Judge,
    Message,
    Partner,
    Tick,
    Whole,
    linked_groups,
    part_of,
    within_caps,
)
from sensor.detect.routes import Shipped
from sensor.detect.told import Told
from sensor.detect.watermark import Watermark
from sensor.observations import ConnRows, Intake, MdnsHost, MdnsQuery

Steps = Generator[tuple[Tick, Expiry], Sequence[Expiry], None]
"""A part at work on a batch: it yields at each tick its expiry there, and is sent every part's."""


class Part:
    """One part's correlator, and the alerts it said with their places."""

    def __init__(self, config: DetectionConfig, index: int, parts: int, groups: dict[int, int] | None = None) -> None:
        self.index = index
        known = groups or {}
        self._told = Told(config, lambda key: part_of(known.get(key, key), parts) == index)
        self._emitted: list[int] = []
        """Where each alert the correlator made since it was last emptied was made."""
        self._told.order.emitted = self._emitted
        self.correlator = Correlator(config, self._told)
        self.said: list[tuple[OrderKey, Alert]] = []
        self._pending: deque[Tick] = deque()
        self.through = -1
        """The position up to which this part has judged everything."""

    def steps(self, batch: Iterable[Message]) -> Steps:
        """Take a batch of messages, yielding at each tick (every tick the batch holds, the last ones at its end)."""
        for message in batch:
            if isinstance(message, Tick):
                self._pending.append(message)
                continue
            if isinstance(message, Partner):
                yield from self._ticks(message.position)
                self.correlator.partnered(message.partner, message.prober)
                self.through = max(self.through, message.position)
                continue
            yield from self._judge(message)
        yield from self._ticks(None)

    def _judge(self, message: Judge) -> Steps:
        told = self._told
        told.partners.update(message.partners)
        item, positions = message.item, message.positions
        if isinstance(item, MdnsQuery):
            told.mdns.fired[item] = (message.fired, message.browsed)
        if not isinstance(item, ConnRows | Shipped):
            yield from self._ticks(positions[0])
            self._place(self.correlator.observe(item, message.nows[0], positions[0]))
            self.through = positions[0]
            return
        done = 0
        while done < len(positions):
            upto = len(positions)
            if self._pending:
                upto = int(np.searchsorted(positions, self._pending[0].position, side="left"))
            if upto > done:
                rows = _cut(item, done, upto)
                self._place(self.correlator.observe_many(rows, message.nows[done:upto], positions[done:upto]))
                self.through = positions[upto - 1]
                done = upto
            if done < len(positions):
                yield from self._ticks(positions[done])

    def _ticks(self, upto: int | None) -> Steps:
        """Take the ticks held at positions up to ``upto`` (all of them: ``None``)."""
        while self._pending and (upto is None or self._pending[0].position <= upto):
            tick = self._pending.popleft()
            agreed = yield tick, self.correlator.expiry(tick.now, tick.prune)
            self.said += self.correlator.housekeep(tick.now, tick.position, bounds(agreed, tick.position),
                                                   tick.prune)
            self._clear()
            self.through = max(self.through, tick.position - 1)

    def _place(self, alerts: list[Alert]) -> None:
        emitted = self._emitted
        previous, count = None, 0
        for at, alert in zip(emitted, alerts, strict=True):
            count = count + 1 if at == previous else 0
            previous = at
            self.said.append(((at, 2, count), alert))
        emitted.clear()

    def _clear(self) -> None:
        self._emitted.clear()

    def flush(self, now: float) -> None:
        """The pending updates at the end of the stream (every tick taken)."""
        self.said += self.correlator.flush_placed(now)
        self._clear()

    def taken(self) -> list[tuple[OrderKey, Alert]]:
        """What was said since the last call, with places."""
        said, self.said = self.said, []
        return said


def _cut(item: ConnRows | Shipped, start: int, stop: int) -> ConnRows:
    """The records of a block from ``start`` up to ``stop``, as the correlator judges them."""
    if start == 0 and stop == len(item):
        return item.rows() if isinstance(item, Shipped) else item
    if isinstance(item, Shipped):
        return item.cut(start, stop).rows()
    return item.pick(range(start, stop))


def together(steps: list[Steps]) -> None:
    """Drive parts' steps on one batch each in one process: at each tick, each is sent every part's expiry."""
    states = [next(step, None) for step in steps]
    while any(state is not None for state in states):
        if any(state is None for state in states):
            raise RuntimeError("a part stopped at a tick the others did not")
        expiries = [state[1] for state in states if state is not None]
        states = [_send(step, expiries) for step in steps]


def _send(step: Steps, expiries: list[Expiry]) -> tuple[Tick, Expiry] | None:
    try:
        return step.send(expiries)
    except StopIteration:
        return None


def judge_in_parts(stream: Sequence[Intake], config: DetectionConfig, lateness: float, parts: int,
                   batch: int = 1, columnar_from: int = COLUMNAR_RUN) -> tuple[list[Alert], str | None]:
    """The alerts of ``stream`` judged in ``parts`` parts, ``batch`` items a batch (blocks of ``columnar_from``
    records or more decided a column at a time), merged in the one correlator's order, and the cap the parts may
    have reached (then the alerts may differ from one correlator's). Raises
    :class:`~sensor.detect.partition.Unpartable`."""
    groups = linked_groups(item for item in stream if isinstance(item, MdnsHost))
    whole = Whole(config, parts, groups, columnar_from)
    members = [Part(config, index, parts, groups) for index in range(parts)]
    watermark = Watermark(lateness)
    held: list[list[Message]] = [[] for _ in range(parts)]
    for number, item in enumerate(stream, start=1):
        for part, message in whole.read(item, watermark):
            for index in range(parts) if part < 0 else (part,):
                held[index].append(message)
        if number % batch == 0 or number == len(stream):
            together([member.steps(messages) for member, messages in zip(members, held, strict=True)])
            held = [[] for _ in range(parts)]
    if whole.observations:
        for member in members:
            member.flush(watermark.now)
    said = sorted((entry for member in members for entry in member.said), key=itemgetter(0))
    return [alert for _, alert in said], within_caps(config, (member.correlator.peaks for member in members))
