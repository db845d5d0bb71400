"""The dead-letter file of one sink: alerts a receiver refused for good (a 400 for that alert, a ``_bulk``
item's mapping error), kept so that nothing is lost silently and the sink is not stalled by one poison
alert, and the whole of alerts a transport could only deliver cut short (a UDP syslog datagram). One JSON
object per line under ``state_dir/dead-letter/NAME.jsonl``: when, why, and the alert's
document as it was sent.

It owns that file only; deciding what counts as refused for good is each transport's business.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import orjson

from sensor.files import open_append, private_directories
from sensor.metrics import Metrics
from sensor.outputs.transport import Rejection

log = logging.getLogger(__name__)


class DeadLetters:
    """Appends refused alerts durably (fsync) and counts them in ``t1046_sink_dead_letters_total``."""

    def __init__(self, path: Path, sink: str, metrics: Metrics) -> None:
        self.path = path
        self._sink = sink
        self._metrics = metrics

    def write(self, rejections: Sequence[Rejection], *, refused: bool = True) -> None:
        """Record ``rejections`` (``refused``: the receiver refused them; else they were delivered cut short);
        on a write error log them (ids and reasons) so they are still not silent."""
        if not rejections:
            return
        now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        lines = []
        for rejection in rejections:
            head = orjson.dumps({"rejected_at": now, "sink": self._sink, "reason": rejection.reason,
                                 "event_id": rejection.record.event_id, "seq": rejection.record.seq})
            lines.append(head[:-1] + b',"document":' + rejection.record.document + b"}\n")
        self._metrics.sink_dead_letters.labels(sink=self._sink).inc(len(rejections))
        try:
            private_directories(self.path.parent)
            with os.fdopen(open_append(self.path), "ab") as stream:
                stream.write(b"".join(lines))
                stream.flush()
                os.fsync(stream.fileno())
        except OSError as error:
            log.error("sink %s: cannot write the dead-letter file %s (%s); refused alerts: %s", self._sink,
                      self.path, error, ", ".join(f"{r.record.event_id} ({r.reason})" for r in rejections))
            return
        if refused:
            log.error("sink %s: the receiver refused %d alert(s) for good, kept in %s: %s", self._sink,
                      len(rejections), self.path, rejections[0].reason)
        else:
            log.warning("sink %s: %d alert(s) sent cut short (%s); each kept whole in %s", self._sink,
                        len(rejections), rejections[0].reason, self.path)
