"""The live pipeline: observations from any source → correlator (wall clock) → rendered alerts → sinks.

Sources call :meth:`Pipeline.observe` from the event loop; nothing here blocks on a sink.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from sensor.alerts import Alert
from sensor.config import SensorConfig
from sensor.correlator import Correlator
from sensor.observations import Observation
from sensor.sinks import Sink


class Pipeline:
    """One correlator shared by every source, fanning alerts out to every sink."""

    def __init__(self, config: SensorConfig, sinks: Sequence[Sink],
                 clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.correlator = Correlator(config.detection)
        self._sinks = list(sinks)
        self._clock = clock
        self.alerts_emitted = 0

    def observe(self, observation: Observation) -> list[Alert]:
        """Feed one observation at the current wall time; deliver and return the alerts it causes."""
        return self._deliver(self.correlator.observe(observation, max(self._clock(), observation.ts)))

    def tick(self) -> list[Alert]:
        """Run the correlator's expiry at the current wall time (call it every few seconds)."""
        return self._deliver(self.correlator.tick(self._clock()))

    def close(self) -> list[Alert]:
        """Close every incident and the sinks (shutdown)."""
        alerts = self._deliver(self.correlator.close_all(self._clock()))
        for sink in self._sinks:
            sink.close()
        return alerts

    def _deliver(self, alerts: list[Alert]) -> list[Alert]:
        for alert in alerts:
            self.alerts_emitted += 1
            for sink in self._sinks:
                sink.deliver(alert, self.config.name)
        return alerts
