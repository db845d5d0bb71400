"""``t1046-sensor honeyports``: run only the honeyports (:mod:`honeyports`), with their own pipeline and sinks.

Twisted runs on the asyncio event loop (``asyncioreactor``), installed before anything imports
``twisted.internet.reactor``, so the mDNS watcher can share the loop. SIGTERM and SIGINT stop the node
cleanly: listeners are closed first, then the pipeline delivers an update for every incident that grew
since its last one (its final counts; the incident is not known to be over, so it is not closed), then
the sinks close.

With a ``node:`` section the node correlates nothing itself: every hit is spooled and forwarded to the
central daemon (:mod:`sensor.nodes.forwarder`), whose correlator sees every subnet; shutdown drains that spool.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.task import LoopingCall

from honeyports.service import HoneyportService, asyncio_reactor
from sensor.config import SensorConfig
from sensor.daemon.pipeline import Pipeline
from sensor.daemon.startup import log_start
from sensor.metrics import Metrics
from sensor.nodes.forwarder import build_forwarder
from sensor.outputs.build import build_sinks
from sensor.outputs.sink import DRAIN_SECONDS, SpooledSink, drain_all
from sensor.wording import counted

log = logging.getLogger(__name__)

TICK_SECONDS = 5.0
"""How often the correlator's expiry runs."""


def run_honeyports(config: SensorConfig) -> int:
    """Run the honeyport node until SIGTERM/SIGINT; 0 after a clean stop, 1 when nothing could listen."""
    reactor = asyncio_reactor(asyncio.new_event_loop())
    if config.node is not None:
        return _run_forwarding(config, reactor)
    sinks = build_sinks(config)
    pipeline = Pipeline(config, sinks)
    service = HoneyportService(config.honeyports, pipeline.observe, config.name, reactor)
    if not _started(service, sinks, config, reactor):
        return 1
    _start_when_running(reactor, sinks)
    ticker = LoopingCall(pipeline.tick)
    ticker.clock = reactor
    ticker.start(TICK_SECONDS, now=False)

    def shutdown() -> Deferred[None]:
        if ticker.running:
            ticker.stop()
        stopped = service.stop()
        stopped.addCallback(lambda _: _close(pipeline, service, sinks))
        return stopped

    reactor.addSystemEventTrigger("before", "shutdown", shutdown)
    reactor.run()
    return 0


def _start_when_running(reactor: Any, spooled: Sequence[SpooledSink]) -> None:
    """Start the sinks' workers once asyncio's loop runs, so what an earlier run left spooled goes out without
    waiting for a new hit (Twisted's startup triggers fire before the asyncio loop runs)."""

    def start() -> None:
        for sink in spooled:
            sink.start()

    reactor.callLater(0, start)


def _started(service: HoneyportService, spooled: list[SpooledSink], config: SensorConfig, reactor: Any) -> bool:
    """Open the listeners and log what they watch once the reactor runs (and so handles SIGTERM: ``running``
    is the sign a supervisor may stop it by); False (everything closed) when not one could listen."""
    problems = service.start()
    for problem in problems:
        log.warning("honeyports: %s", problem)
    if not service.ports:
        log.error("honeyports: nothing to listen on (%s); stopping", counted(len(problems), "problem"))
        service.stop()
        for sink in spooled:
            sink.close()
        return False
    lines = [f"honeyports: {service.node} listening on {counted(len(service.ports), 'port')}"]
    if config.node is not None:
        lines.append("node: honeyport hits forwarded to {}:{}, correlated there".format(*config.node.central))
    reactor.callWhenRunning(log_start, config, lines, True, "honeyports", alerts=config.node is None)
    return True


def _run_forwarding(config: SensorConfig, reactor: Any) -> int:
    """The node mode: hits spooled and forwarded to the central daemon, no local correlation."""
    forwarder = build_forwarder(config, Metrics())
    service = HoneyportService(config.honeyports, forwarder.forward, config.name, reactor)
    if not _started(service, [forwarder], config, reactor):
        return 1
    _start_when_running(reactor, [forwarder])

    def shutdown() -> Deferred[None]:
        stopped = service.stop()
        stopped.addCallback(lambda _: Deferred.fromFuture(asyncio.ensure_future(drain_all([forwarder],
                                                                                          DRAIN_SECONDS))))
        return stopped

    reactor.addSystemEventTrigger("before", "shutdown", shutdown)
    reactor.run()
    return 0


def _close(pipeline: Pipeline, service: HoneyportService, sinks: list[SpooledSink]) -> Deferred[None]:
    pipeline.flush()
    stats = service.stats
    log.info("honeyports: stopped; %d hits (%d half-open), %d refused over the total cap, %d over the per-source "
             "cap, %d timed out; %d alerts", stats.hits, stats.half_open, stats.refused_total, stats.refused_source,
             stats.timed_out, pipeline.alerts_emitted)

    async def drain() -> None:
        await drain_all(sinks, DRAIN_SECONDS)

    return Deferred.fromFuture(asyncio.ensure_future(drain()))
