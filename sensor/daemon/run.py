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
import fcntl
import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any

import orjson
from twisted.internet.defer import Deferred

from honeyports.service import HoneyportService, asyncio_reactor
from sensor.alerts.alert import Alert
from sensor.config import SensorConfig, load_config
from sensor.daemon.checkpoint import (
    Checkpoint,
    CheckpointWriter,
    detection_digest,
    load_checkpoint,
    remove_leftovers,
)
from sensor.daemon.pipeline import Pipeline
from sensor.errors import ConfigError, SensorError
from sensor.mdns.command import MdnsSensor
from sensor.metrics import Metrics, MetricsServer
from sensor.nodes.forwarder import NodeForwarder, build_forwarder
from sensor.nodes.listener import NodeListener, start_listener
from sensor.observations import HoneyportHit, MdnsHost, MdnsQuery, Observation
from sensor.outputs.build import build_sinks, check_outputs
from sensor.outputs.settings import SinkConfigError
from sensor.outputs.sink import DRAIN_SECONDS, SpooledSink, drain_all
from sensor.outputs.spool import write_atomically
from sensor.zeek.follow import LogFollower
from sensor.zeek.logs import MalformedLog

log = logging.getLogger(__name__)

POLL_SECONDS = 0.25
"""How often the Zeek logs are polled for new lines."""
CHECKPOINT_SECONDS = 1.0
"""Longest time alerts wait for the checkpoint that commits them (and the most a crash can cost in
honeyport and mDNS observations)."""
ACK_CHECKPOINT_SECONDS = 0.2
"""Commits come this often while remote nodes' observations wait for theirs to be acknowledged (a node
sends its next batch only then)."""
COMMIT_SHARE = 5.0
"""Commits are spaced by at least this many times what they cost the event loop (forking the checkpoint
writer: tens of milliseconds at 100 000 sources), so committing takes at most a sixth of the loop's time."""
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


@dataclass(frozen=True, slots=True)
class _Sources:
    """The optional sources that are running, to stop them at the end or on reload."""

    honeyports: HoneyportService | None
    mdns: MdnsSensor | None


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
        self.follower: LogFollower | None = None
        self.pipeline: Pipeline
        self.sources = _Sources(None, None)
        self.node_listener: NodeListener | None = None
        self._node_sequences = ""
        """The remote node runs' last sequence numbers as of the last checkpoint (``NodeListener.state``)."""
        self.forwarder: NodeForwarder | None = None
        """Set on a node (``node:``): its honeyport hits go to the central daemon, not to this pipeline."""
        self._stop = asyncio.Event()
        self._reload = False
        self._dirty = False
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
        self._seq_past_spools()
        if self.config.zeek.log_dir is not None:
            if not self.config.zeek.log_dir.is_dir():
                log.warning("zeek.log_dir %s does not exist (yet); following it when it appears",
                            self.config.zeek.log_dir)
            self.follower = LogFollower(self.config.zeek.log_dir, self.malformed, streams, done,
                                        kinds=self.config.zeek.logs)
        return checkpoint is None

    def _seq_past_spools(self) -> None:
        """Number the next commits past anything a spool took (from another run, command or config)."""
        self.seq = max([self.seq, *(sink.spool.last_seq for sink in self.sinks)])

    def _start_sources(self, config: SensorConfig) -> _Sources:
        return _Sources(self._start_honeyports(config), self._start_mdns(config))

    def _start_honeyports(self, config: SensorConfig) -> HoneyportService | None:
        honey = config.honeyports
        if not honey.listen or not (honey.tcp or honey.udp):
            return None

        service = HoneyportService(honey, self._observe_local, config.name, self.reactor)
        for problem in service.start():
            log.warning("honeyports: %s", problem)
        log.info("honeyports: listening on %d ports", len(service.ports))
        return service

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

    def _start_mdns(self, config: SensorConfig) -> MdnsSensor | None:
        if not config.mdns.interfaces:
            return None
        return MdnsSensor(config.mdns, self._observe_local)

    async def _run_mdns(self, sources: _Sources) -> None:
        if sources.mdns is None:
            return
        try:
            await sources.mdns.start()  # the watcher logs what it watches
        except SensorError as error:
            log.error("mdns: %s; running without the watcher", error)

    async def _stop_sources(self, sources: _Sources) -> None:
        if sources.honeyports is not None:
            stopped: Deferred[None] = sources.honeyports.stop()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopped.asFuture(asyncio.get_running_loop()), 10)
        if sources.mdns is not None:
            await sources.mdns.stop()

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
            await self._commit_wait()  # where the logs start, which rotated files were there: no first start again
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._stop.set)
        loop.add_signal_handler(signal.SIGHUP, self._request_reload)
        for sink in self._spooled():
            sink.start()
        self.sources = self._start_sources(self.config)
        await self._run_mdns(self.sources)
        log.info("t1046-sensor %s running: %d sinks, zeek logs %s", self.config.name, len(self.sinks),
                 self.config.zeek.log_dir or "not followed")
        next_tick = next_heartbeat = time.monotonic()
        last_commit = float("-inf")  # what the first poll read is committed at once
        try:
            while not self._stop.is_set():
                busy = self._follow()
                now = time.monotonic()
                if now >= next_tick:
                    self._tick()
                    next_tick = now + TICK_SECONDS
                spacing = COMMIT_SHARE * self._commit_cost
                if ((now >= last_commit + max(CHECKPOINT_SECONDS, spacing) and (self._dirty or self.outbox.pending))
                        or (now >= last_commit + max(ACK_CHECKPOINT_SECONDS, spacing) and self._acks_pending())):
                    self._commit()
                    last_commit = time.monotonic()
                if now >= next_heartbeat:
                    self._heartbeat()
                    next_heartbeat = now + HEARTBEAT_SECONDS
                if self._reload:
                    await self._apply_reload()
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
        if self.follower is not None:
            for kind, lag in self.follower.lag().items():
                self.metrics.follower_lag.labels(log=kind).set(lag)

    def _follow(self) -> bool:
        """Read new Zeek log lines into the pipeline; True when more is waiting than one poll reads."""
        if self.follower is None:
            return False
        batch = self.follower.poll()
        self.pipeline.observe_logged(batch.observations, caught_up=not batch.backlog)
        for kind, count in batch.records.items():
            self.metrics.records_read.labels(log=kind).inc(count)
        if self.malformed.total > self._malformed_seen:
            self.metrics.lines_malformed.inc(self.malformed.total - self._malformed_seen)
            self._malformed_seen = self.malformed.total
        if batch.bytes_read:
            self._dirty = True
        return batch.backlog

    def _acks_pending(self) -> bool:
        return self.node_listener is not None and self.node_listener.acks_pending

    def _commit(self) -> None:
        """Start saving the checkpoint, unless one is being written; :meth:`_committed` hands the alerts it
        commits to the sinks and acknowledges the node observations it holds once it is durable."""
        if self._writing is not None:
            return
        pending = tuple(self.outbox.pending)
        follower = self.follower
        listener = self.node_listener
        if listener is not None:
            self._node_sequences = listener.state()
        checkpoint = Checkpoint(
            seq=self.seq + 1, detection=detection_digest(self.config.detection),
            streams=dict(follower.streams) if follower is not None else {},
            done=frozenset(follower.done) if follower is not None else frozenset(),
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
        self._dirty = False
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

    async def _commit_wait(self) -> None:
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
        correlator = self.pipeline.correlator
        now = time.time()
        health = {
            "time": now, "uptime": round(now - self._started, 1), "checkpoint": self.seq,
            "observations": self.pipeline.observations, "alerts": self.pipeline.alerts_emitted,
            "open_incidents": correlator.open_incidents, "tracked_sources": correlator.tracked_sources,
            "suppressed_as_authorized": correlator.stats.suppressed,
            "evicted_sources": correlator.stats.evicted_sources,
            "malformed_lines": self.malformed.total,
            "sinks": {sink.name: {"spooled_bytes": sink.spool.pending_bytes, "failures_in_a_row": sink.failures,
                                  "delivered": sink.delivered, "held_in_memory": sink.held_alerts}
                      for sink in self.sinks},
        }
        self.metrics.heartbeat.set(now)
        self.metrics.open_incidents.set(correlator.open_incidents)
        self.metrics.tracked_sources.set(correlator.tracked_sources)
        for counter in ("suppressed", "evicted_sources", "closed_incidents", "ignored"):
            self.metrics.correlator_counts.labels(counter=counter).set(getattr(correlator.stats, counter))
        try:
            write_atomically(self.state_dir / "health.json", orjson.dumps(health))
        except OSError as error:
            log.warning("cannot write %s: %s", self.state_dir / "health.json", error)
        log.info("heartbeat: %d observations, %d alerts, %d open incidents, checkpoint %d, spooled %s",
                 self.pipeline.observations, self.pipeline.alerts_emitted, correlator.open_incidents, self.seq,
                 {sink.name: sink.spool.pending_bytes for sink in self.sinks})

    # -- reload and stop --------------------------------------------------------------------------

    def _request_reload(self) -> None:
        self._reload = True

    async def _apply_reload(self) -> None:
        self._reload = False
        for sink in self.sinks:
            sink.reopen()
        log.info("SIGHUP: file sinks reopened")
        if self.config_path is None:
            return
        try:
            new = load_config(self.config_path)
        except ConfigError as error:
            log.error("SIGHUP: %s; keeping the running configuration", error)
            return
        for section in ("name", "state_dir", "zeek", "detection", "nodes", "node"):
            if getattr(new, section) != getattr(self.config, section):
                log.warning("SIGHUP: %s changed; that takes effect at the next start", section)
        outputs = self.config.outputs
        if new.outputs != self.config.outputs and await self._replace_sinks(new):
            outputs = new.outputs
        if new.honeyports != self.config.honeyports or new.mdns != self.config.mdns:
            await self._stop_sources(self.sources)
            self.sources = self._start_sources(new)
            await self._run_mdns(self.sources)
        self.config = replace(self.config, honeyports=new.honeyports, mdns=new.mdns, outputs=outputs)
        log.info("SIGHUP: configuration %s reloaded", self.config_path)

    async def _replace_sinks(self, new: SensorConfig) -> bool:
        """Drain the running sinks (what they keep stays spooled) and build the new ones; False, with the
        running sinks untouched, when the new outputs are invalid."""
        try:
            check_outputs(self.config, new.outputs)
        except SinkConfigError as error:
            log.error("SIGHUP: %s; keeping the running outputs", error)
            return False
        await self._commit_wait()
        await drain_all(self.sinks, 2.0)
        replaced = True
        try:
            self.sinks = build_sinks(replace(self.config, outputs=new.outputs), metrics=self.metrics)
        except SinkConfigError as error:
            log.error("SIGHUP: %s; keeping the running outputs", error)
            self.sinks = build_sinks(self.config, metrics=self.metrics)
            replaced = False
        self._seq_past_spools()
        for sink in self.sinks:
            sink.start()
        return replaced

    async def _shutdown(self) -> None:
        log.info("stopping: closing sources, saving a last checkpoint, draining sinks")
        if self.node_listener is not None:
            await self.node_listener.stop()
        await self._stop_sources(self.sources)
        self.pipeline.flush()  # every incident's latest state reaches the sinks; the incidents stay open
        await self._commit_wait()
        self._heartbeat()
        await drain_all(self._spooled(), DRAIN_SECONDS)
        self.malformed.summarise()


# -- process ---------------------------------------------------------------------------------------------


def _lock_state_dir(state_dir: Path) -> IO[bytes] | None:
    """Hold ``state_dir/daemon.lock`` for the life of the process; None when another daemon holds it."""
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    lock = (state_dir / "daemon.lock").open("ab")
    try:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        return None
    return lock


def run_daemon(config: SensorConfig, config_path: Path | None = None) -> int:
    """Run the daemon until SIGTERM/SIGINT; return the exit status.

    ``config_path`` is read again on SIGHUP; ``sensor.metrics_listen`` (address, port) serves Prometheus metrics.
    """
    metrics_listen = config.metrics_listen
    try:
        lock = _lock_state_dir(config.state_dir)
    except OSError as error:
        log.error("cannot use state_dir %s: %s", config.state_dir, error)
        return 1
    if lock is None:
        log.error("another t1046-sensor daemon is using %s", config.state_dir)
        return 1
    metrics = Metrics()
    server: MetricsServer | None = None
    if metrics_listen is not None:
        try:
            server = MetricsServer(metrics, *metrics_listen)
        except OSError as error:
            log.error("cannot serve metrics on %s:%d: %s", *metrics_listen, error)
            lock.close()
            return 1
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        reactor = asyncio_reactor(loop)
        daemon = Daemon(config, config_path, metrics, reactor)
        return _run_on_reactor(reactor, loop, daemon.run)
    finally:
        if server is not None:
            server.close()
        lock.close()


def _run_on_reactor(reactor: Any, loop: asyncio.AbstractEventLoop, main: Callable[[], Any]) -> int:
    status: list[int] = []

    def finished(task: asyncio.Task[int]) -> None:
        if task.cancelled():
            status.append(1)
        elif task.exception() is not None:
            log.error("daemon failed", exc_info=task.exception())
            status.append(1)
        else:
            status.append(task.result())
        reactor.stop()

    def start() -> None:
        loop.create_task(main()).add_done_callback(finished)

    reactor.callWhenRunning(start)
    reactor.run(installSignalHandlers=False)
    return status[0] if status else 1
