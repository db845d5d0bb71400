"""``t1046-sensor mdns``: the mDNS watcher (and decoys, :class:`~sensor.mdns.sensor.MdnsSensor`) feeding a
pipeline of its own, on a plain asyncio loop (zeroconf's); ``run`` starts the same sensor beside the
honeyports instead (:mod:`sensor.daemon.sources`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from sensor.config import SensorConfig
from sensor.daemon.pipeline import Pipeline
from sensor.daemon.startup import log_start
from sensor.mdns.sensor import TICK_SECONDS, MdnsSensor
from sensor.mdns.watch import WatcherError
from sensor.outputs.build import build_sinks
from sensor.outputs.sink import DRAIN_SECONDS, drain_all

log = logging.getLogger(__name__)



async def serve(sensor: MdnsSensor, pipeline: Pipeline, stop: asyncio.Event,
                tick_seconds: float = TICK_SECONDS) -> None:
    """Run ``sensor`` until ``stop`` is set, ticking it and ``pipeline`` every ``tick_seconds``; always stop it."""
    await sensor.start()  # the watcher and the decoys log their interfaces and advertisements
    log_start(pipeline.config, [], True, "mdns")
    try:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=tick_seconds)
            sensor.tick()
            pipeline.tick()
    finally:
        await sensor.stop()
        stats = sensor.watcher.stats
        log.info("mdns: %d packets, %d questions observed (%d dropped beyond the limit), %d own, %d malformed, "
                 "%d over the parsing budget, %d receive errors", stats.packets, stats.questions,
                 stats.questions_dropped, stats.own, stats.malformed, stats.over_budget, stats.receive_errors)


async def _main(config: SensorConfig) -> int:
    sinks = build_sinks(config)
    for sink in sinks:
        sink.start()  # what an earlier run left spooled goes out without waiting for a new alert
    pipeline = Pipeline(config, sinks)
    sensor = MdnsSensor(config.mdns, pipeline.observe)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await serve(sensor, pipeline, stop)
    except WatcherError as error:
        log.error("%s", error)
        return 1
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        pipeline.flush()
        await drain_all(sinks, DRAIN_SECONDS)
    return 0


def run_mdns(config: SensorConfig) -> int:
    """Run only the mDNS watcher (and decoys) on ``config.mdns.interfaces`` until SIGTERM or SIGINT; return the
    exit status (1 when no interface can be watched)."""
    return asyncio.run(_main(config))
