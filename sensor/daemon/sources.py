"""The daemon's own sources besides the Zeek logs: the honeyports and the mDNS watcher of this host, started
from the configuration and stopped (on shutdown, or to restart them on SIGHUP)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from twisted.internet.defer import Deferred

from honeyports.service import HoneyportService
from sensor.config import SensorConfig
from sensor.errors import SensorError
from sensor.mdns.sensor import MdnsSensor
from sensor.observations import HoneyportHit, MdnsHost, MdnsQuery
from sensor.wording import counted

log = logging.getLogger(__name__)

LocalObservation = HoneyportHit | MdnsQuery | MdnsHost


@dataclass(frozen=True, slots=True)
class LocalSources:
    """The optional sources that are running, to stop them at the end or on reload."""

    honeyports: HoneyportService | None
    mdns: MdnsSensor | None

    async def run_mdns(self) -> None:
        """Start the mDNS watcher (it logs what it watches); without one, or when it cannot, go on."""
        if self.mdns is None:
            return
        try:
            await self.mdns.start()
        except SensorError as error:
            log.error("mdns: %s; running without the watcher", error)

    async def stop(self) -> None:
        """Close the honeyports (waiting at most 10 s) and the watcher."""
        if self.honeyports is not None:
            stopped: Deferred[None] = self.honeyports.stop()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopped.asFuture(asyncio.get_running_loop()), 10)
        if self.mdns is not None:
            await self.mdns.stop()


def start_sources(config: SensorConfig, observe: Callable[[LocalObservation], None], reactor: Any) -> LocalSources:
    """The honeyports (listening at once) and the mDNS watcher (started by :meth:`LocalSources.run_mdns`)
    the configuration asks for, each handing its observations to ``observe``."""
    honeyports = None
    honey = config.honeyports
    if honey.listen and (honey.tcp or honey.udp):
        honeyports = HoneyportService(honey, observe, config.name, reactor)
        for problem in honeyports.start():
            log.warning("honeyports: %s", problem)
        log.info("honeyports: listening on %s", counted(len(honeyports.ports), "port"))
    mdns = MdnsSensor(config.mdns, observe) if config.mdns.interfaces else None
    return LocalSources(honeyports, mdns)
