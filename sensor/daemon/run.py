"""``t1046-sensor run``: the Zeek log follower, honeyports and the mDNS watcher on one event loop.

Twisted's ``asyncioreactor`` is installed on a fresh asyncio loop before anything imports
``twisted.internet.reactor``; the honeyports (Twisted) and the mDNS watcher (asyncio, zeroconf) then share
that loop with the follower and the sinks' workers.

Delivery that survives ``kill -9``: every :data:`CHECKPOINT_SECONDS` (when anything happened) the
follower's positions, the correlator, the alerts produced since the last commit and the remote nodes' last
sequence numbers are saved in one atomic checkpoint (written by a forked child from a copy-on-write
snapshot while the event loop goes on); only when it is durable are the alerts handed to the sinks' spools
(:mod:`sensor.daemon.checkpoint`) and the nodes' observations acknowledged. Alerts from Zeek logs and observations
of remote nodes are therefore never lost nor repeated; a honeyport or mDNS observation made here in the
second before a crash is lost with the in-memory state (there is no log or node to have it again from).

Signals: SIGTERM/SIGINT stop (listeners closed, an update for every incident whose latest state was not
yet sent, a last checkpoint, sinks drained for up to
:data:`DRAIN_SECONDS`; what they could not deliver stays spooled for the next start; incidents stay open
in the checkpoint). SIGHUP reopens file sinks and reloads the configuration file when it is valid, keeping
the running one when it is not. A heartbeat log line, metric and ``state_dir/health.json`` every
:data:`HEARTBEAT_SECONDS`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sensor.alerts.alert import Alert
from sensor.config import SensorConfig
from sensor.daemon.checkpoint import (
    Checkpoint,
    CheckpointWriter,
    detection_digest,
    load_checkpoint,
    remove_leftovers,
)
from sensor.daemon.health import report_health
from sensor.daemon.pipeline import Pipeline
from sensor.daemon.reading import FollowAhead, Followers, followers
from sensor.daemon.reload import apply_reload
from sensor.daemon.sources import LocalSources, start_sources
from sensor.daemon.startup import describe
from sensor.errors import SensorError
from sensor.metrics import Metrics
from sensor.nodes.forwarder import NodeForwarder, build_forwarder
from sensor.nodes.listener import NodeListener, start_listener
from sensor.observations import HoneyportHit, MdnsHost, MdnsQuery, Observation
from sensor.outputs.build import build_sinks
from sensor.outputs.sink import DRAIN_SECONDS, SpooledSink, drain_all
from sensor.zeek.malformed import MalformedLog

log = logging.getLogger(__name__)

POLL_SECONDS = 0.25
"""How often the Zeek logs are polled for new lines."""
CHECKPOINT_SECONDS = 1.0
"""Longest time alerts wait for the checkpoint that commits them (and the most a crash can cost in
honeyport and mDNS observations)."""
BACKLOG_CHECKPOINT_SECONDS = 5.0
"""While the follower catches up on a backlog and nothing live (a honeyport hit, an mDNS packet, a node's
observation) waits, commits come this often instead: what they carry can be read again after a crash, the
alerts are about the past already, and each commit forks a writer whose pages the busy daemon then copies
as it writes (about 0.1 s of CPU per commit at 100 000 sources)."""
ACK_CHECKPOINT_SECONDS = 0.2
"""Commits come this often while remote nodes' observations wait for theirs to be acknowledged (a node
sends its next batch only then)."""
COMMIT_SHARE = 5.0
"""Commits are spaced by at least this many times what they cost the event loop (forking the checkpoint
writer: tens of milliseconds at 100 000 sources), so committing takes at most a sixth of the loop's time."""


def commit_due(since: float, cost: float, *, live: bool, unsaved: bool, acks: bool, catching_up: bool) -> bool:
    """Whether the loop commits now, ``since`` seconds after the last commit, which cost the event loop
    ``cost`` seconds: live observations (``live``) or records read and alerts queued (``unsaved``) wait every
    :data:`CHECKPOINT_SECONDS` (:data:`BACKLOG_CHECKPOINT_SECONDS` while the follower catches up and nothing
    live waits); remote nodes' acknowledgements (``acks``) every :data:`ACK_CHECKPOINT_SECONDS`; never more
    often than :data:`COMMIT_SHARE` times the cost."""
    spacing = COMMIT_SHARE * cost
    every = BACKLOG_CHECKPOINT_SECONDS if catching_up and not live else CHECKPOINT_SECONDS
    return ((since >= max(every, spacing) and (live or unsaved))
            or (acks and since >= max(ACK_CHECKPOINT_SECONDS, spacing)))


TICK_SECONDS = 5.0
HEARTBEAT_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class _Writing:
    """A checkpoint being written, and what its commit hands on (``nodes``: ``NodeListener.state``)."""

    writer: CheckpointWriter
    seq: int
    alerts: tuple[Alert, ...]
    nodes: str


class _Outbox:
    """The pipeline's only sink: alerts wait here for the checkpoint that commits them."""

    def __init__(self) -> None:
        self.pending: list[Alert] = []

    def deliver(self, alert: Alert, observer: str) -> None:
        self.pending.append(alert)


class Daemon:
    """One daemon run: owns the pipeline, the follower, the sinks and the checkpoint."""

    def __init__(self, config: SensorConfig, config_path: Path | None, metrics: Metrics, reactor: Any,
                 clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.clock = clock
        """The wall clock the pipeline's watermark moves with where the logs are caught up and idle."""
        self.config_path = config_path
        self.metrics = metrics
        self.reactor = reactor
        self.state_dir = config.state_dir
        self.checkpoint_path = config.state_dir / "checkpoint"
        self.malformed = MalformedLog()
        self.outbox = _Outbox()
        self.sinks: list[SpooledSink] = []
        self.seq = 0
        self.follower: Followers | None = None
        self.following: FollowAhead | None = None
        """The follower's polls, in a thread of their own."""
        self.pipeline: Pipeline
        self.sources = LocalSources(None, None)
        self.node_listener: NodeListener | None = None
        self._node_sequences = ""
        """The remote node runs' last sequence numbers as of the last checkpoint (``NodeListener.state``)."""
        self.forwarder: NodeForwarder | None = None
        """Set on a node (``node:``): its honeyport hits go to the central daemon, not to this pipeline."""
        self._stop = asyncio.Event()
        self._reload = False
        self._dirty = False
        """Live observations came since the last commit (a crash would lose them)."""
        self._logs_read = False
        """The follower read on since the last commit (a crash would read it again)."""
        self._catching_up = False
        """The last poll left more to read."""
        self._started = time.time()
        self._malformed_seen = 0
        self._commit_cost = 0.0
        self._writing: _Writing | None = None

    # -- start ------------------------------------------------------------------------------------

    def _restore(self) -> bool:
        """Load the checkpoint (and make the sinks, pipeline and follower from it); True when there was none."""
        remove_leftovers(self.checkpoint_path)
        checkpoint = load_checkpoint(self.checkpoint_path, self.config.detection)
        self.sinks = build_sinks(self.config, metrics=self.metrics)
        if checkpoint is None:
            self.pipeline = Pipeline(self.config, [self.outbox], self.clock, metrics=self.metrics)
            streams, done = None, None
        else:
            self.seq = checkpoint.seq
            for sink in self.sinks:
                sink.accept(checkpoint.seq, checkpoint.outbox, self.config.name)
            self.pipeline = Pipeline(self.config, [self.outbox], self.clock, correlator=checkpoint.correlator,
                                     now=checkpoint.clock, metrics=self.metrics)
            streams, done = checkpoint.streams, checkpoint.done
            log.info("resuming from checkpoint %d: %d open incidents, %d sources tracked", checkpoint.seq,
                     checkpoint.correlator.open_incidents, checkpoint.correlator.tracked_sources)
        self._node_sequences = checkpoint.extra.get("nodes", "") if checkpoint is not None else ""
        self.seq_past_spools()
        self.follower = followers(self.config, self.malformed, streams, done)
        if self.follower is not None:
            self.following = FollowAhead(self.follower)
        return checkpoint is None

    def seq_past_spools(self) -> None:
        """Number the next commits past anything a spool took (from another run, command or config)."""
        self.seq = max([self.seq, *(sink.spool.last_seq for sink in self.sinks)])

    def start_sources(self, config: SensorConfig) -> LocalSources:
        return start_sources(config, self._observe_local, self.reactor)

    def _spooled(self) -> list[SpooledSink]:
        """The alert sinks and, on a node, the forwarder: everything with a spool to start and drain."""
        return [*self.sinks, *([self.forwarder] if self.forwarder is not None else [])]

    def _observe_remote(self, observation: Observation) -> None:
        """An observation made outside the Zeek logs (a honeyport or the mDNS watcher here, or a node's):
        into the pipeline, committed by the next checkpoint."""
        self.pipeline.observe(observation)
        self._dirty = True

    def _observe_local(self, observation: HoneyportHit | MdnsQuery | MdnsHost) -> None:
        """A honeyport hit or mDNS observation of this host: to the central daemon on a node (which carries
        hits and questions), else here."""
        if self.forwarder is not None:
            self.forwarder.forward(observation)
        else:
            self._observe_remote(observation)

    # -- the loop ---------------------------------------------------------------------------------

    async def run(self) -> int:
        """Run until SIGTERM/SIGINT; return the exit status."""
        try:
            first_start = self._restore()
            self.forwarder = build_forwarder(self.config, self.metrics) if self.config.node is not None else None
            self.node_listener = await start_listener(self.config, self._observe_remote, self.metrics,
                                                      self._node_sequences)
        except SensorError as error:
            log.error("%s", error)
            for sink in self._spooled():
                sink.close()
            return 2
        if first_start:
            await self.commit_wait()  # where the logs start, which rotated files were there: no first start again
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._stop.set)
        loop.add_signal_handler(signal.SIGHUP, self._request_reload)
        for sink in self._spooled():
            sink.start()
        self.sources = self.start_sources(self.config)
        await self.sources.run_mdns()
        describe(self.config, self.sources)
        next_tick = next_heartbeat = time.monotonic()
        last_commit = float("-inf")  # what the first poll read is committed at once
        try:
            while not self._stop.is_set():
                busy = await self._follow()
                now = time.monotonic()
                if now >= next_tick:
                    self._tick()
                    next_tick = now + TICK_SECONDS
                if commit_due(now - last_commit, self._commit_cost, live=self._dirty,
                              unsaved=bool(self._logs_read or self.outbox.pending), acks=self._acks_pending(),
                              catching_up=self._catching_up):
                    self._commit()
                    last_commit = time.monotonic()
                if now >= next_heartbeat:
                    self._heartbeat()
                    next_heartbeat = now + HEARTBEAT_SECONDS
                if self._reload:
                    self._reload = False
                    await apply_reload(self)
                if not busy:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stop.wait(), POLL_SECONDS)
                else:
                    await asyncio.sleep(0)
        finally:
            for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(signum)
            await self._shutdown()
        return 0

    def _tick(self) -> None:
        """Housekeeping every :data:`TICK_SECONDS`: the correlator's expiry, the mDNS watcher's own addresses,
        the follower's lag gauge."""
        self.pipeline.tick()
        if self.sources.mdns is not None:
            self.sources.mdns.tick()
        if self.following is not None:
            for kind, lag in self.following.lag().items():
                self.metrics.follower_lag.labels(log=kind).set(lag)

    async def _follow(self) -> bool:
        """Judge what the follower read next (:mod:`sensor.daemon.reading`); True when more is waiting than
        one poll reads."""
        if self.following is None:
            return False
        batch = await self.following.poll()
        self.pipeline.observe_logged(batch.observations, caught_up=not batch.backlog)
        for kind, count in batch.records.items():
            self.metrics.records_read.labels(log=kind).inc(count)
        if self.malformed.total > self._malformed_seen:
            self.metrics.lines_malformed.inc(self.malformed.total - self._malformed_seen)
            self._malformed_seen = self.malformed.total
        self._logs_read = self._logs_read or batch.bytes_read > 0 or batch.moved
        self._catching_up = batch.backlog
        return batch.backlog

    def _acks_pending(self) -> bool:
        return self.node_listener is not None and self.node_listener.acks_pending

    def _commit(self) -> None:
        """Start saving the checkpoint, unless one is being written; :meth:`_committed` hands the alerts it
        commits to the sinks and acknowledges the node observations it holds once it is durable."""
        if self._writing is not None:
            return
        pending = tuple(self.outbox.pending)
        listener = self.node_listener
        if listener is not None:
            self._node_sequences = listener.state()
        streams, done = self.following.positions if self.following is not None else ({}, frozenset())
        checkpoint = Checkpoint(
            seq=self.seq + 1, detection=detection_digest(self.config.detection), streams=streams, done=done,
            correlator=self.pipeline.correlator, clock=self.pipeline.now, outbox=pending, saved_at=time.time(),
            extra={"nodes": self._node_sequences} if self._node_sequences else {})
        started = time.monotonic()
        try:
            writer = CheckpointWriter(self.checkpoint_path, checkpoint)
        except OSError as error:
            log.error("cannot save checkpoint %s: %s; %d alerts wait for the next try", self.checkpoint_path,
                      error, len(pending))
            return
        self._commit_cost = time.monotonic() - started
        self._writing = _Writing(writer, checkpoint.seq, pending, self._node_sequences)
        self.outbox.pending.clear()
        self._dirty = self._logs_read = False
        writer.done.add_done_callback(self._committed)

    def _committed(self, done: asyncio.Future[OSError | None]) -> None:
        """The checkpoint writer has finished: hand on what its checkpoint holds, or keep it for the next try."""
        writing, self._writing = self._writing, None
        if writing is None:
            return
        error = done.result()
        if error is not None:
            log.error("cannot save checkpoint %s: %s; %d alerts wait for the next try", self.checkpoint_path,
                      error, len(writing.alerts))
            self.outbox.pending[:0] = writing.alerts
            self._dirty = True
            return
        self.seq = writing.seq
        self.metrics.checkpoints.inc()
        for sink in self.sinks:
            sink.accept(self.seq, writing.alerts, self.config.name)
        listener = self.node_listener
        if listener is not None and listener.state() == writing.nodes:
            listener.committed()  # else observations came in meanwhile: the next commit acknowledges them all

    async def commit_wait(self) -> None:
        """Commit what there is now and wait until it is durable (or failed)."""
        await self._written()
        self._commit()
        await self._written()

    async def _written(self) -> None:
        """Wait for the checkpoint being written, if any, and for :meth:`_committed` (the future's first
        callback) to have handed it on."""
        if self._writing is not None:
            await asyncio.shield(self._writing.writer.done)

    def _heartbeat(self) -> None:
        report_health(self.pipeline, self.sinks, self.metrics, self.state_dir, self.malformed, self.seq,
                      self._started)

    # -- reload and stop --------------------------------------------------------------------------

    def _request_reload(self) -> None:
        self._reload = True

    async def _shutdown(self) -> None:
        log.info("stopping: closing sources, saving a last checkpoint, draining sinks")
        if self.following is not None:
            judged = await self.following.close()
            self.pipeline.observe_logged(judged.observations, caught_up=True)
        if self.node_listener is not None:
            await self.node_listener.stop()
        await self.sources.stop()
        self.pipeline.flush()  # every incident's latest state reaches the sinks; the incidents stay open
        await self.commit_wait()
        self._heartbeat()
        await drain_all(self._spooled(), DRAIN_SECONDS)
        self.malformed.summarise()
