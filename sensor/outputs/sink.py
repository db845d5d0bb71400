"""The spooled sink: one transport behind its own disk spool and worker task, and the dispatcher that drains
them all at shutdown.

An alert handed to a :class:`SpooledSink` is rendered in the sink's format and appended to its spool before
:meth:`SpooledSink.accept` returns; the sink's worker then delivers the spool in batches, retrying with
exponential backoff, so a sink that is down only grows its own spool and never delays another. Hand-offs
carry the sequence number of the daemon's checkpoint that committed them, and a spool remembers the last
one it took, so re-handing a committed batch after a crash does not repeat it.

A batch a transport delivered only in part is retried with just its pending records; records whose first
sending may have arrived are counted when sent again (``t1046_sink_resent_total``); records the receiver
refused for good go to the sink's dead-letter file (:mod:`sensor.outputs.deadletter`) instead of stalling
it. This module knows no wire protocol: those live in one module per transport.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from sensor.alerts.alert import Alert
from sensor.alerts.render import render_document
from sensor.metrics import Metrics
from sensor.outputs.deadletter import DeadLetters
from sensor.outputs.spool import Spool, SpoolRecord
from sensor.outputs.transport import DeliveryError, Outcome, Transport

log = logging.getLogger(__name__)

DEFAULT_BATCH = 100
DRAIN_SECONDS = 10.0
"""How long shutdown waits for each sink to deliver what is spooled."""
HELD_RETRY_SECONDS = 1.0
"""How often a sink tries again to spool the alerts a full disk kept in memory."""


class Sink(Protocol):
    """Takes alerts; never raises into the pipeline and never blocks on a receiver. Whoever built a sink
    closes it (for a spooled sink: :func:`drain_all` on the event loop)."""

    def deliver(self, alert: Alert, observer: str) -> None: ...



@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with jitter between delivery attempts."""

    initial: float = 0.5
    maximum: float = 60.0

    def delay(self, failures: int) -> float:
        base: float = min(self.maximum, self.initial * 2.0 ** min(failures - 1, 30))
        return base * random.uniform(0.8, 1.2)  # jitter, not cryptography  # noqa: S311  # nosec B311


class SpooledSink:
    """A transport behind its own disk spool and worker task."""

    def __init__(self, name: str, fmt: str, spool: Spool, transport: Transport, metrics: Metrics,
                 batch_size: int = DEFAULT_BATCH, backoff: Backoff | None = None,
                 dead_letters: DeadLetters | None = None) -> None:
        self.name = name
        self.format = fmt
        self.spool = spool
        self.transport = transport
        self._metrics = metrics
        self._batch_size = batch_size
        self._backoff = backoff or Backoff()
        self._dead_letters = dead_letters
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.failures = 0
        self.delivered = 0
        """Records delivered (a receiver's "already there" included) since this sink was built."""
        self.rejected = 0
        """Records the receiver refused for good since this sink was built (sent to the dead-letter file)."""
        self.last_error: str | None = None
        """The reason of the last failed attempt; ``None`` once a batch got through again."""
        self._progress = asyncio.Event()
        """Set whenever an attempt ends, for :meth:`settled`."""
        self._retry: tuple[list[SpoolRecord], int] | None = None
        """The records of the current batch still to deliver, and the spool offset just past the batch."""
        self._uncertain: set[SpoolRecord] = set()
        """Records whose last sending may have arrived: counted as re-sent when sent again."""
        self._unspooled: list[list[SpoolRecord]] = []
        """Rendered batches the spool could not take (a full disk), oldest first: retried before anything newer."""
        self._holding = False
        self.held_bytes = 0
        """Size of the held batches as spool records."""

    def start(self) -> None:
        """Start the worker on the running event loop."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"sink-{self.name}")

    def render(self, seq: int, alert: Alert, observer: str) -> SpoolRecord:
        return SpoolRecord(seq, alert.event_id, alert.ts, alert.severity, render_document(alert, observer, self.format))

    def accept(self, seq: int, alerts: Sequence[Alert], observer: str) -> None:
        """Spool the alerts committed as checkpoint ``seq``; a batch already taken is skipped."""
        if alerts and seq > self.last_taken:
            self.enqueue([self.render(seq, alert, observer) for alert in alerts])

    def deliver(self, alert: Alert, observer: str) -> None:
        """The :class:`Sink` protocol for callers without checkpoints: spool one alert and go on."""
        self.accept(self.last_taken + 1, [alert], observer)
        with contextlib.suppress(RuntimeError):
            self.start()

    @property
    def last_taken(self) -> int:
        """The sequence number of the newest record taken: spooled, or held in memory for a full disk."""
        return self._unspooled[-1][-1].seq if self._unspooled else self.spool.last_seq

    def enqueue(self, records: list[SpoolRecord]) -> None:
        """Spool ``records`` after everything taken before. Records the spool cannot take (a full disk) are held
        in memory, within the spool's size cap, and spooled first as soon as there is room again."""
        self._unspooled.append(records)
        self.held_bytes += sum(len(record.encode()) for record in records)
        while self.held_bytes > self.spool.max_bytes and len(self._unspooled) > 1:
            dropped = self._unspooled.pop(0)
            self.held_bytes -= sum(len(record.encode()) for record in dropped)
            self.spool.dropped += len(dropped)
            self._metrics.spool_dropped.labels(sink=self.name).inc(len(dropped))
            log.error("sink %s: %d records held in memory for a full disk dropped: more than %d bytes wait",
                      self.name, len(dropped), self.spool.max_bytes)
        self._spool_held()
        if self._unspooled:
            self._gauge_queue()
            self._wake.set()  # the worker retries them every HELD_RETRY_SECONDS

    @property
    def held_alerts(self) -> int:
        """Records held in memory because the spool could not take them (a full disk)."""
        return sum(map(len, self._unspooled))

    def _spool_held(self) -> None:
        """Move the batches held in memory into the spool, oldest first, as far as the disk lets."""
        while self._unspooled:
            batch = self._unspooled[0]
            try:
                self.spool.append(batch)
            except OSError as error:
                self._metrics.sink_failures.labels(sink=self.name).inc()
                if not self._holding:
                    self._holding = True
                    log.error("sink %s: cannot spool %d records (%s): held in memory and retried every %.0f s; "
                              "a crash before they are spooled loses them", self.name, len(batch), error,
                              HELD_RETRY_SECONDS)
                return
            self._unspooled.pop(0)
            self.held_bytes = 0 if not self._unspooled else self.held_bytes - sum(len(r.encode()) for r in batch)
            if not self._unspooled and self._holding:
                self._holding = False
                log.warning("sink %s: the records held in memory are spooled", self.name)
            self._queue_changed()

    def _queue_changed(self) -> None:
        self._gauge_queue()
        self._wake.set()

    def _gauge_queue(self) -> None:
        self._metrics.sink_queue.labels(sink=self.name).set(self.spool.pending_bytes + self.held_bytes)

    def reopen(self) -> None:
        self.transport.reopen()

    async def _run(self) -> None:
        while True:
            self._spool_held()
            if self._retry is None:
                records, end = self.spool.read(self._batch_size)
                if not records and end == self.spool.cursor:
                    if self._closing:
                        return
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(),
                                               HELD_RETRY_SECONDS if self._unspooled else None)
                    continue
                self._retry = (records, end)
            records, end = self._retry
            pending = await self._attempt(records)
            if pending:
                self._retry = (pending, end)
                delay = self._backoff.delay(self.failures)
                if self.failures == 1 or self.failures % 10 == 0:
                    log.warning("sink %s: delivery failed (%d in a row, %d bytes spooled), retrying in %.1fs: %s",
                                self.name, self.failures, self.spool.pending_bytes, delay, self.last_error)
                if self._closing:
                    return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop_wait(), delay)
                continue
            self._retry = None
            self.spool.advance(end)
            self._gauge_queue()

    async def _attempt(self, records: list[SpoolRecord]) -> list[SpoolRecord]:
        """One delivery attempt of ``records``; returns those left to retry (none: the batch is done)."""
        resent = self._uncertain.intersection(records)
        if resent:
            self._metrics.sink_resent.labels(sink=self.name).inc(len(resent))
            self._uncertain -= resent
        pending: list[SpoolRecord] = []
        try:
            outcome = await self.transport.send(records) if records else None
        except DeliveryError as error:
            pending = records if error.pending is None else error.pending
            outcome = error.settled
            if error.uncertain:
                self._uncertain.update(pending)
            if pending:
                self.failures += 1
                self.last_error = str(error)
                self._metrics.sink_failures.labels(sink=self.name).inc()
        self._settle(outcome, len(records) - len(pending))
        self._progress.set()
        if not pending and self.failures:
            log.warning("sink %s: delivering again after %d failures", self.name, self.failures)
            self.failures = 0
            self.last_error = None
        return pending

    def _settle(self, outcome: Outcome | None, done: int) -> None:
        """Account for ``done`` records that need no more sending: delivered, already there, or refused."""
        rejected = outcome.rejected if outcome is not None else ()
        if outcome is not None and outcome.duplicates:
            self._metrics.sink_duplicates.labels(sink=self.name).inc(outcome.duplicates)
        if outcome is not None and outcome.truncated:
            if self._dead_letters is not None:
                self._dead_letters.write(outcome.truncated, refused=False)
            else:
                log.warning("sink %s: %d alert(s) sent cut short: %s", self.name, len(outcome.truncated),
                            outcome.truncated[0].reason)
        if rejected:
            self.rejected += len(rejected)
            if self._dead_letters is not None:
                self._dead_letters.write(rejected)
            else:
                self._metrics.spool_dropped.labels(sink=self.name).inc(len(rejected))
                log.error("sink %s: the receiver refused %d records for good, dropped: %s", self.name,
                          len(rejected), rejected[0].reason)
        if done > len(rejected):
            self.delivered += done - len(rejected)
            self._metrics.sink_delivered.labels(sink=self.name).inc(done - len(rejected))

    async def settled(self, count: int, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds until ``count`` records were delivered or refused since this sink was
        built; True when they were."""
        deadline = asyncio.get_running_loop().time() + timeout
        while self.delivered + self.rejected < count:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                return False
            self._progress.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._progress.wait(), remaining)
        return True

    async def _stop_wait(self) -> None:
        while not self._closing:
            self._wake.clear()
            await self._wake.wait()

    async def drain(self, timeout: float) -> bool:
        """Deliver what is spooled (one more attempt when failing), then stop; True when all got out."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
        await self.transport.close()
        self._spool_held()
        if self._unspooled:
            log.error("sink %s: %d records could not be spooled (full disk?) and are lost", self.name,
                      self.held_alerts)
        pending = self.spool.pending_bytes
        self.spool.close()
        if pending:
            log.warning("sink %s: %d bytes stay spooled for the next start", self.name, pending)
        return pending == 0 and not self._unspooled

    def close(self) -> None:
        """Synchronous close for callers without an event loop: the spool keeps what is undelivered."""
        if self._task is not None:
            self._task.cancel()
        self.spool.close()


async def drain_all(sinks: Sequence[SpooledSink], timeout: float) -> bool:
    """Drain every sink at once (each for up to ``timeout`` seconds); True when all delivered everything (each
    sink says itself what it keeps spooled or lost)."""
    results = await asyncio.gather(*(sink.drain(timeout) for sink in sinks))
    return all(results)

