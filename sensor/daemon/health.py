"""The daemon's heartbeat: ``state_dir/health.json``, the gauges of the correlator's state, and a log line,
every :data:`~sensor.daemon.run.HEARTBEAT_SECONDS`."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path

import orjson

from sensor.daemon.pipeline import Pipeline
from sensor.files import write_atomically
from sensor.metrics import Metrics
from sensor.outputs.sink import SpooledSink
from sensor.wording import counted
from sensor.zeek.malformed import MalformedLog

log = logging.getLogger(__name__)


def report_health(pipeline: Pipeline, sinks: Sequence[SpooledSink], metrics: Metrics, state_dir: Path,
                  malformed: MalformedLog, checkpoint: int, started: float) -> None:
    """Write health.json, set the heartbeat and state gauges, log one line."""
    correlator = pipeline.correlator
    now = time.time()
    health = {
        "time": now, "uptime": round(now - started, 1), "checkpoint": checkpoint,
        "observations": pipeline.observations, "alerts": pipeline.alerts_emitted,
        "open_incidents": correlator.open_incidents, "tracked_sources": correlator.tracked_sources,
        "suppressed_as_authorized": correlator.stats.suppressed,
        "evicted_sources": correlator.stats.evicted_sources,
        "malformed_lines": malformed.total,
        "sinks": {sink.name: {"spooled_bytes": sink.spool.pending_bytes, "failures_in_a_row": sink.failures,
                              "delivered": sink.delivered, "held_in_memory": sink.held_alerts}
                  for sink in sinks},
    }
    metrics.heartbeat.set(now)
    metrics.open_incidents.set(correlator.open_incidents)
    metrics.tracked_sources.set(correlator.tracked_sources)
    for counter in ("suppressed", "evicted_sources", "closed_incidents", "ignored", "outages"):
        metrics.correlator_counts.labels(counter=counter).set(getattr(correlator.stats, counter))
    try:
        write_atomically(state_dir / "health.json", orjson.dumps(health))
    except OSError as error:
        log.warning("cannot write %s: %s", state_dir / "health.json", error)
    spooled = [f"{sink.name} {sink.spool.pending_bytes} bytes" for sink in sinks if sink.spool.pending_bytes]
    log.info("heartbeat: %s, %s, %s, checkpoint %d, %s", counted(pipeline.observations, "observation"),
             counted(pipeline.alerts_emitted, "alert"), counted(correlator.open_incidents, "open incident"),
             checkpoint, f"spooled: {', '.join(spooled)}" if spooled else "nothing spooled")
