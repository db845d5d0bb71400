"""The live pipeline: observations from any source → correlator → alerts → every sink.

The correlator's clock is a :class:`~sensor.detect.watermark.Watermark` over the evidence's event times:
records the log follower delivers move it with their own timestamps (so ``run`` over logs read live, late,
in bursts or after a restart reaches the verdicts ``replay`` reaches), and it moves with the wall clock
only where the logs are caught up and idle. Live observations (honeyports, the mDNS watcher, remote
nodes) are judged at their capture time. Sources call in from the event loop; nothing here blocks on a
sink. Each alert leaves stamped with the wall time it was emitted (``event.created``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace

from sensor.alerts.alert import Alert
from sensor.config import SensorConfig
from sensor.detect.correlator import Correlator
from sensor.detect.watermark import FUTURE_TOLERANCE, Watermark
from sensor.metrics import Metrics
from sensor.observations import HoneyportHit, Intake, MdnsQuery, Observation
from sensor.outputs.sink import Sink

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
        logs = config.zeek.log_dir is not None or bool(config.flows)
        self.watermark = Watermark(config.lateness, logs=logs, start=now, wall=clock())
        self.alerts_emitted = 0
        self.observations = 0
        self._skew_warned = float("-inf")

    @property
    def now(self) -> float:
        """The correlator's clock: the watermark at the last observation or tick."""
        return self.watermark.now

    def observe(self, observation: Observation) -> list[Alert]:
        """Feed one live observation (honeyport, mDNS watcher, remote node); deliver and return the alerts."""
        self.observations += 1
        if self._metrics is not None:
            if isinstance(observation, HoneyportHit):
                self._metrics.honeyport_touches.labels(transport=observation.transport.value).inc()
            elif isinstance(observation, MdnsQuery) and observation.via == "watcher":
                self._metrics.mdns_queries.inc()
        wall = self._clock()
        if observation.ts > wall + FUTURE_TOLERANCE and wall >= self._skew_warned + _SKEW_WARNING_EVERY:
            self._skew_warned = wall
            log.warning("a %s is stamped %.0f s ahead of this host's clock: is a sensor's clock wrong? It is "
                        "judged at its own time; the correlator's clock does not follow it",
                        type(observation).__name__, observation.ts - wall)
        return self._deliver(self.correlator.observe(observation, self.watermark.advance(wall)), wall)

    def observe_logged(self, observations: Iterable[Intake], *, caught_up: bool) -> list[Alert]:
        """Feed what one poll of the log follower read; ``caught_up`` when nothing more is there to read."""
        wall = self._clock()
        watermark = self.watermark
        correlator = self.correlator
        alerts: list[Alert] = []
        new = False
        before = correlator.stats.observations
        for observation in observations:
            new = True
            found = correlator.observe_read(observation, watermark, wall)
            if found:
                alerts.extend(found)
        self.observations += correlator.stats.observations - before
        watermark.read(wall, caught_up=caught_up, new=new)
        return self._deliver(alerts, wall)

    def tick(self) -> list[Alert]:
        """Let time act (final updates, closing, expiry) at the watermark; call it every few seconds."""
        wall = self._clock()
        return self._deliver(self.correlator.tick(self.watermark.advance(wall)), wall)

    def flush(self) -> list[Alert]:
        """Deliver an update for every incident that grew since its last one (shutdown); incidents stay open."""
        wall = self._clock()
        return self._deliver(self.correlator.flush(self.watermark.advance(wall)), wall)


    def _deliver(self, alerts: list[Alert], wall: float) -> list[Alert]:
        stamped = [replace(alert, created=wall) for alert in alerts]
        for alert in stamped:
            self.alerts_emitted += 1
            if self._metrics is not None:
                self._metrics.alerts.labels(action=alert.action.value).inc()
            for sink in self._sinks:
                sink.deliver(alert, self.config.name)
        return stamped
