"""The disk spool of one sink: rendered alerts (:class:`SpoolRecord`) in an append-only file, a
delivered-up-to cursor saved atomically beside it, and a size cap with a drop policy.

It owns the files under ``state_dir/spool/NAME/`` and nothing else: it knows no transport, no receiver and
no event loop. Its files are 0600 whatever the umask (:mod:`sensor.files`).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from sensor.files import open_append, private_directories, write_atomically
from sensor.metrics import Metrics

log = logging.getLogger(__name__)

DEFAULT_SPOOL_BYTES = 64 << 20


@dataclass(frozen=True, slots=True)
class SpoolRecord:
    """One rendered alert waiting in a spool."""

    seq: int
    event_id: str
    ts: float
    severity: int
    document: bytes
    """The alert's JSON document, without a newline."""

    def encode(self) -> bytes:
        head = f"{self.seq} {self.event_id} {self.ts!r} {self.severity} ".encode()
        return head + self.document + b"\n"

    @classmethod
    def decode(cls, line: bytes) -> SpoolRecord:
        seq, event_id, ts, severity, document = line.rstrip(b"\n").split(b" ", 4)
        return cls(int(seq), event_id.decode(), float(ts), int(severity), document)


class Spool:
    """Alerts awaiting delivery: an append-only file, a delivered-up-to cursor and a size cap."""

    def __init__(self, directory: Path, max_bytes: int, policy: str, name: str, metrics: Metrics) -> None:
        private_directories(directory)
        self.name = name
        self.max_bytes = max_bytes
        self.policy = policy
        self._metrics = metrics
        self._data = directory / "spool.log"
        self._cursor_file = directory / "cursor.json"
        cursor = self._read_cursor()
        self.cursor = int(cursor.get("offset", 0))
        self.last_seq = int(cursor.get("last_seq", 0))
        self.extra: dict[str, Any] = dict(cursor.get("extra", {}))
        """Sink-specific facts saved with the cursor (the file sink's file size)."""
        self._stream = os.fdopen(open_append(self._data), "ab")
        size = self._stream.tell()
        self._trim_partial(size)
        self.cursor = min(self.cursor, self._stream.tell())
        self.dropped = 0
        self._update_metrics()

    def _read_cursor(self) -> dict[str, Any]:
        try:
            loaded = orjson.loads(self._cursor_file.read_bytes())
        except FileNotFoundError:
            return {}
        except (OSError, orjson.JSONDecodeError) as error:
            log.error("sink %s: spool cursor unreadable (%s); delivering the whole spool again", self.name, error)
            return {}
        return loaded if isinstance(loaded, dict) else {}

    def _trim_partial(self, size: int) -> None:
        """Drop a last record that a crash cut short, and learn the last sequence number spooled."""
        if size == 0:
            return
        with self._data.open("rb") as reader:
            reader.seek(max(0, size - (1 << 20)))
            tail = reader.read()
        end = tail.rfind(b"\n") + 1
        keep = size - len(tail) + end
        if keep != size:
            log.warning("sink %s: dropped a partial record at the end of the spool", self.name)
            self._stream.truncate(keep)
            self._stream.seek(keep)
        lines = tail[:end].splitlines()
        if lines:
            with contextlib.suppress(ValueError):
                self.last_seq = max(self.last_seq, SpoolRecord.decode(lines[-1]).seq)

    @property
    def size(self) -> int:
        return self._stream.tell()

    @property
    def pending_bytes(self) -> int:
        return self.size - self.cursor

    def append(self, records: Sequence[SpoolRecord]) -> None:
        """Write records durably (fsync) before returning; apply the size cap."""
        payload = b"".join(record.encode() for record in records)
        if not payload:
            return
        if self.pending_bytes + len(payload) > self.max_bytes:
            if self.policy == "drop_newest":
                self._drop(len(records), "the newest records")
                return
            self._drop_oldest(self.pending_bytes + len(payload) - self.max_bytes)
        start = self.size
        try:
            self._stream.write(payload)
            self._stream.flush()
            os.fsync(self._stream.fileno())
        except OSError:
            self._cut_back(start)
            raise
        self.last_seq = max(self.last_seq, *(record.seq for record in records))
        self._update_metrics()

    def _cut_back(self, size: int) -> None:
        """Forget a write that failed part way (a full disk): the file ends at ``size`` again, on a fresh stream
        that holds nothing of it, so the next append does not follow a torn record."""
        with contextlib.suppress(OSError):
            self._stream.close()
        self._stream = os.fdopen(open_append(self._data), "ab")
        with contextlib.suppress(OSError):
            self._stream.truncate(size)
        self._stream.seek(size)

    def _drop_oldest(self, excess: int) -> None:
        dropped = 0
        freed = 0
        with self._data.open("rb") as reader:
            reader.seek(self.cursor)
            while freed < excess:
                line = reader.readline()
                if not line:
                    break
                freed += len(line)
                dropped += 1
        self.cursor += freed
        self._save_cursor()
        self._drop(dropped, "the oldest records")

    def _drop(self, count: int, which: str) -> None:
        self.dropped += count
        self._metrics.spool_dropped.labels(sink=self.name).inc(count)
        log.error("sink %s: SPOOL FULL (%d bytes): dropped %d of %s (%d dropped so far)",
                  self.name, self.max_bytes, count, which, self.dropped)

    def read(self, limit: int) -> tuple[list[SpoolRecord], int]:
        """Up to ``limit`` records from the cursor on, and the offset just past them."""
        records: list[SpoolRecord] = []
        with self._data.open("rb") as reader:
            reader.seek(self.cursor)
            end = self.cursor
            while len(records) < limit:
                line = reader.readline()
                if not line.endswith(b"\n"):
                    break
                end += len(line)
                try:
                    records.append(SpoolRecord.decode(line))
                except ValueError:
                    log.error("sink %s: skipped an unreadable spool record", self.name)
        return records, end

    def advance(self, offset: int) -> None:
        """Mark everything before ``offset`` delivered; compact the file when it is all delivered.

        A cursor that cannot be saved (a full disk) is kept in memory and saved with the next one; the file
        is only emptied after the cursor that covers it is saved.
        """
        self.cursor = max(self.cursor, offset)
        try:
            self._save_cursor()
            if self.cursor >= self.size:
                self._stream.truncate(0)
                self._stream.seek(0)
                self.cursor = 0
                self._save_cursor()
        except OSError as error:
            log.error("sink %s: cannot save the spool cursor (%s): a crash now would deliver up to %d bytes again",
                      self.name, error, self.cursor)
        self._update_metrics()

    def remember(self, extra: dict[str, Any]) -> None:
        """Save ``extra`` (a transport's own facts) in the cursor now, before the transport acts on them; a
        cursor that cannot be saved is logged and saved with the next one."""
        self.extra = extra
        try:
            self._save_cursor()
        except OSError as error:
            log.error("sink %s: cannot save the spool cursor (%s)", self.name, error)

    def _save_cursor(self) -> None:
        """Saved before the file is emptied, and again after, so no crash can skip or repeat a record."""
        cursor = {"offset": self.cursor, "last_seq": self.last_seq, "extra": self.extra}
        write_atomically(self._cursor_file, orjson.dumps(cursor))

    def _update_metrics(self) -> None:
        self._metrics.spool_bytes.labels(sink=self.name).set(self.pending_bytes)

    def close(self) -> None:
        self._stream.close()

