"""The live pipeline: observations from any source → correlator (wall clock) → rendered alerts → sinks.

Sources call :meth:`Pipeline.observe` from the event loop; nothing here blocks on a sink. The clock never
runs backwards: it is the latest of the wall time, every observation's own time and the clock a restored
checkpoint carried, so a log line stamped a little ahead of this host's clock is judged at its own time.
An observation stamped more than :data:`FUTURE_TOLERANCE` ahead (a sensor whose clock is wrong) does not
drag the clock with it: the correlator would otherwise judge every other source's evidence as old.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from sensor.alerts.alert import Alert
from sensor.config import SensorConfig
from sensor.daemon.metrics import Metrics
from sensor.detect.correlator import Correlator
from sensor.observations import HoneyportHit, MdnsQuery, Observation
from sensor.outputs.sink import Sink

FUTURE_TOLERANCE = 300.0
"""Seconds an observation may be stamped ahead of this host's clock and still move the pipeline's clock."""
_SKEW_WARNING_EVERY = 3600.0

log = logging.getLogger(__name__)


class Pipeline:
    """One correlator shared by every source, fanning alerts out to every sink."""

    def __init__(self, config: SensorConfig, sinks: Sequence[Sink], clock: Callable[[], float] = time.time, *,
                 correlator: Correlator | None = None, now: float = float("-inf"),
                 metrics: Metrics | None = None) -> None:
        self.config = config
        self.correlator = correlator if correlator is not None else Correlator(config.detection)
        self._sinks = list(sinks)
        self._clock = clock
        self._metrics = metrics
        self.now = now
        """The correlator's clock at the last observation or tick."""
        self.alerts_emitted = 0
        self.observations = 0
        self._skew_warned = float("-inf")

    def observe(self, observation: Observation) -> list[Alert]:
        """Feed one observation; deliver and return the alerts it causes."""
        self.observations += 1
        if self._metrics is not None:
            if isinstance(observation, HoneyportHit):
                self._metrics.honeyport_touches.labels(transport=observation.transport.value).inc()
            elif isinstance(observation, MdnsQuery) and observation.via == "watcher":
                self._metrics.mdns_queries.inc()
        wall = self._clock()
        if observation.ts > wall + FUTURE_TOLERANCE and wall >= self._skew_warned + _SKEW_WARNING_EVERY:
            self._skew_warned = wall
            log.warning("a %s is stamped %.0f s ahead of this host's clock: is a sensor's clock wrong? The "
                        "pipeline's clock does not follow it", type(observation).__name__, observation.ts - wall)
        self.now = max(self.now, wall, min(observation.ts, wall + FUTURE_TOLERANCE))
        return self._deliver(self.correlator.observe(observation, self.now))

    def tick(self) -> list[Alert]:
        """Run the correlator's expiry at the current time (call it every few seconds)."""
        self.now = max(self.now, self._clock())
        return self._deliver(self.correlator.tick(self.now))

    def close(self) -> list[Alert]:
        """Close every incident and deliver the final updates (shutdown); the sinks stay open for their
        owner to drain."""
        self.now = max(self.now, self._clock())
        return self._deliver(self.correlator.close_all(self.now))

    def _deliver(self, alerts: list[Alert]) -> list[Alert]:
        for alert in alerts:
            self.alerts_emitted += 1
            if self._metrics is not None:
                self._metrics.alerts.labels(action=alert.action.value).inc()
            for sink in self._sinks:
                sink.deliver(alert, self.config.name)
        return alerts
