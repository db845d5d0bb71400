"""``t1046-sensor replay``: Zeek logs in, alerts out, with the logs' own timestamps as the clock.

The correlator's clock is the same watermark ``run`` keeps (:mod:`sensor.detect.watermark`), moved by the
records alone; at the end of the logs every incident that grew since its last update gets one (as ``run``
does at shutdown), and incidents are closed only where the logs themselves went quiet for ``idle_timeout``.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import BinaryIO, TextIO

from sensor.alerts.alert import Alert
from sensor.alerts.render import render_line
from sensor.config import SensorConfig
from sensor.detect.correlator import Correlator
from sensor.detect.watermark import Watermark
from sensor.errors import LogReadError
from sensor.observations import Observation
from sensor.zeek.logs import MalformedLog, ZeekLog, discover
from sensor.zeek.records import observations, wanted_fields

PROGRESS_BYTES = 64 << 20
"""Inputs at least this large get a progress line when stderr is a terminal."""


@dataclass(frozen=True, slots=True)
class ReplaySummary:
    """What a replay read and produced."""

    files: int
    records: int
    malformed: int
    observations: int
    alerts: int
    suppressed: int
    seconds: float

    def line(self) -> str:
        """The one-line summary printed on stderr."""
        return (f"replay: {self.records} records from {self.files} files, {self.malformed} malformed, "
                f"{self.observations} observations, {self.alerts} alerts"
                f" ({self.suppressed} suppressed as authorized) in {self.seconds:.1f}s")


def _stream(logs: list[ZeekLog]) -> Iterator[Observation]:
    """Observations of one log kind, file after file, mapped a batch of records at a time; records without
    evidence are dropped."""
    return chain.from_iterable(observations(log, batch) for log in logs for batch in log.batches(wanted_fields))


def _time_of(observation: Observation) -> float:
    return observation.ts


class _Progress:
    """A progress line on a terminal's stderr, at most twice a second."""

    def __init__(self, stream: TextIO | None, large: bool, logs: list[ZeekLog]) -> None:
        self._stream = stream if large else None
        self._logs = logs
        self._next = 0.0

    def __call__(self) -> None:
        if self._stream is None or time.monotonic() < self._next:
            return
        self._next = time.monotonic() + 0.5
        records = sum(log.records_read for log in self._logs)
        self._stream.write(f"\rreplay: {records} records read…")
        self._stream.flush()

    def done(self) -> None:
        if self._stream is not None:
            self._stream.write("\r\x1b[K")
            self._stream.flush()


def replay(paths: list[Path], config: SensorConfig, out: BinaryIO, fmt: str = "ecs",
           progress: TextIO | None = None, progress_bytes: int = PROGRESS_BYTES,
           on_alert: Callable[[Alert], None] | None = None) -> ReplaySummary:
    """Replay Zeek logs through the correlator, writing alerts as JSON lines to ``out``.

    ``progress`` (a terminal's stderr) gets a progress line when the input holds at least
    ``progress_bytes``; ``on_alert`` sees every alert as it is written. Raises
    :class:`LogReadError` when an input cannot be read at all.
    """
    started = time.monotonic()
    malformed = MalformedLog()
    streams = discover(paths, config.zeek.logs)
    all_logs: list[ZeekLog] = []
    merged_inputs = []
    for _kind, files in streams:
        logs = [ZeekLog(path, malformed) for path in files]
        all_logs.extend(logs)
        merged_inputs.append(_stream(logs))
    if not all_logs:
        *others, last = config.zeek.logs
        kinds = f"{', '.join(others)} or {last}" if others else last
        raise LogReadError(f"no {kinds} logs in {', '.join(map(str, paths))}")
    large = progress is not None and sum(log.path.stat().st_size for log in all_logs) >= progress_bytes
    show_progress = _Progress(progress, large, all_logs)
    correlator = Correlator(config.detection)
    watermark = Watermark(config.detection.lateness)

    def emit(alerts: list[Alert]) -> None:
        for alert in alerts:
            out.write(render_line(alert, config.name, fmt))
            if on_alert is not None:
                on_alert(alert)

    count = 0
    show_progress()
    merged = merged_inputs[0] if len(merged_inputs) == 1 else heapq.merge(*merged_inputs, key=_time_of)
    for observation in merged:
        alerts = correlator.observe(observation, watermark.logged(observation.ts))
        if alerts:
            emit(alerts)
        count += 1
        if count % 4096 == 0:
            show_progress()
    if count:
        emit(correlator.flush(watermark.now))
    show_progress.done()
    malformed.summarise()
    return ReplaySummary(
        files=len(all_logs),
        records=sum(log.records_read for log in all_logs),
        malformed=malformed.total,
        observations=correlator.stats.observations,
        alerts=correlator.stats.alerts,
        suppressed=correlator.stats.suppressed,
        seconds=time.monotonic() - started,
    )
