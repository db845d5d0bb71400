"""``t1046-sensor mdns``: the mDNS watcher (and decoys) feeding the pipeline, on an asyncio loop.

Everything here runs on the asyncio event loop that zeroconf needs. :class:`MdnsSensor` only needs a
running loop, so the daemon can run it beside the Twisted honeyports on one loop: install Twisted's
``asyncioreactor`` on that loop before anything imports ``twisted.internet.reactor``, then await
:meth:`MdnsSensor.start` from a task on the same loop (see docs/mdns.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from sensor.config import MdnsConfig, SensorConfig
from sensor.daemon.pipeline import Pipeline
from sensor.daemon.startup import log_start
from sensor.mdns.decoy import DecoyAdvertiser
from sensor.mdns.watch import MdnsWatcher, QueryEmitter, WatcherError
from sensor.neighbours import Neighbours
from sensor.observations import MdnsHost, MdnsQuery
from sensor.outputs.build import build_sinks
from sensor.outputs.sink import DRAIN_SECONDS, drain_all

log = logging.getLogger(__name__)

TICK_SECONDS = 5.0
"""How often the correlator expires idle state and the watcher re-reads this host's addresses."""


class MdnsSensor:
    """The watcher on the configured interfaces and the configured decoys, handing every question to
    ``observe`` (a pipeline's, or a node's forwarder)."""

    def __init__(self, config: MdnsConfig, observe: QueryEmitter) -> None:
        self.config = config
        self.observe = observe
        self._neighbours = Neighbours()
        """Stamps each question with the MAC this host's neighbour table has for the asker."""
        self.decoys = DecoyAdvertiser(config.decoys, config.interfaces)
        self.watcher = MdnsWatcher(config.interfaces, self._observe)

    async def start(self) -> tuple[str, ...]:
        """Start watching, then advertise the decoys; return the interfaces watched.

        Raise :class:`~sensor.mdns.watch.WatcherError` when no interface can be watched.
        """
        watched = self.watcher.start(asyncio.get_running_loop())
        if self.config.decoys:
            await self.decoys.start()
        return watched

    def _observe(self, observation: MdnsQuery | MdnsHost) -> None:
        self.observe(self._neighbours.stamped(observation))
        if isinstance(observation, MdnsQuery):
            self.decoys.answer(observation)

    def tick(self) -> None:
        """Periodic housekeeping (call it every :data:`TICK_SECONDS`): re-read this host's addresses."""
        self.watcher.refresh()

    async def stop(self) -> None:
        """Withdraw the decoys and stop watching."""
        await self.decoys.stop()
        self.watcher.close()


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
                 "%d receive errors", stats.packets, stats.questions, stats.questions_dropped, stats.own,
                 stats.malformed, stats.receive_errors)


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
    """Run only the mDNS watcher (and decoys) until SIGTERM or SIGINT; return the exit status."""
    if not config.mdns.interfaces:
        log.error("mDNS watcher: no interface to watch (use --interface NAME or mdns.interfaces)")
        return 1
    return asyncio.run(_main(config))
