"""The mDNS watcher on the configured interfaces with the configured decoys, as one source.

It runs on the asyncio event loop that zeroconf needs and only needs a running loop, so the daemon can run it
beside the Twisted honeyports on one loop: install Twisted's ``asyncioreactor`` on that loop before anything
imports ``twisted.internet.reactor``, then await :meth:`MdnsSensor.start` from a task on the same loop (see
docs/mdns.md). It hands what it sees to a callback and knows nothing of pipelines or sinks.
"""

from __future__ import annotations

import asyncio

from sensor.config import MdnsConfig
from sensor.mdns.decoy import DecoyAdvertiser
from sensor.mdns.watch import MdnsWatcher, QueryEmitter
from sensor.neighbours import Neighbours
from sensor.observations import MdnsHost, MdnsQuery

TICK_SECONDS = 5.0
"""How often :meth:`MdnsSensor.tick` runs (the watcher re-reads this host's addresses) and, in the ``mdns``
command, the correlator expires idle state."""


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
