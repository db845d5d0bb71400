"""Alert sinks: where rendered alerts go (stdout, a JSONL file)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import BinaryIO, Protocol

from sensor.alerts import Alert
from sensor.config import OutputConfig, SensorConfig
from sensor.render import render_line

log = logging.getLogger(__name__)


class Sink(Protocol):
    """Takes alerts; must never raise into the pipeline."""

    def deliver(self, alert: Alert, observer: str) -> None: ...

    def close(self) -> None: ...


class StreamSink:
    """JSON lines to a binary stream (stdout by default), flushed per alert."""

    def __init__(self, stream: BinaryIO | None = None, fmt: str = "ecs") -> None:
        self._stream = stream if stream is not None else sys.stdout.buffer
        self._format = fmt

    def deliver(self, alert: Alert, observer: str) -> None:
        try:
            self._stream.write(render_line(alert, observer, self._format))
            self._stream.flush()
        except (OSError, ValueError) as error:
            log.error("stdout sink: alert %s not written: %s", alert.event_id, error)

    def close(self) -> None:
        try:
            self._stream.flush()
        except (OSError, ValueError) as error:
            log.error("stdout sink: flush failed: %s", error)


class FileSink:
    """JSON lines appended to a file; reopened on every write failure so rotation is survived."""

    def __init__(self, path: Path, fmt: str = "ecs") -> None:
        self.path = path
        self._format = fmt
        path.parent.mkdir(parents=True, exist_ok=True)

    def deliver(self, alert: Alert, observer: str) -> None:
        try:
            with self.path.open("ab") as stream:
                stream.write(render_line(alert, observer, self._format))
        except OSError as error:
            log.error("file sink %s: alert %s not written: %s", self.path, alert.event_id, error)

    def close(self) -> None:
        """Nothing is held open between alerts."""


def build_sinks(config: SensorConfig, outputs: tuple[OutputConfig, ...] | None = None) -> list[Sink]:
    """Sinks for the configured outputs; relative file paths are under ``state_dir``."""
    sinks: list[Sink] = []
    for output in outputs if outputs is not None else config.outputs:
        if output.type == "stdout":
            sinks.append(StreamSink(fmt=output.format))
        elif output.type == "file":
            path = Path(str(output.settings["path"])).expanduser()
            sinks.append(FileSink(path if path.is_absolute() else config.state_dir / path, output.format))
        else:
            log.warning("output type %s is not available yet; its alerts go nowhere", output.type)
    return sinks
