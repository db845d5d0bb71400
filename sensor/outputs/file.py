"""The file sink's transport: JSON lines appended to a file, reopened on SIGHUP (for logrotate) and rotated
by size. It owns that file and its rotated copies, and the two facts (inode, size) it keeps in its spool's
cursor so that the file gets every alert exactly once across crashes. The file is 0600 whatever the umask,
or 0640 and of the configured ``group`` (a log shipper's), and is never opened through a link."""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from typing import BinaryIO

from sensor.files import open_append
from sensor.outputs.spool import Spool, SpoolRecord
from sensor.outputs.transport import DeliveryError

log = logging.getLogger(__name__)


class FileTransport:
    """JSON lines appended to a file: reopened on SIGHUP (for logrotate) and rotated by size.

    Its spool's cursor keeps the file's inode and size after each batch -- and before the first batch to a
    file no cursor describes yet (the very first, one after a rotation) -- so a write that a crash left
    uncounted is trimmed on start and written again once: the file gets every alert exactly once.
    """

    def __init__(self, path: Path, spool: Spool, max_bytes: int = 0, keep: int = 5, group: int | None = None) -> None:
        self.path = path
        self._group = group
        self._spool = spool
        self._max_bytes = max_bytes
        self._keep = keep
        path.parent.mkdir(parents=True, exist_ok=True)
        self._stream: BinaryIO | None = None
        self._recover()

    def _recover(self) -> None:
        inode, size = self._spool.extra.get("inode"), self._spool.extra.get("size")
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return
        if stat.st_ino == inode and isinstance(size, int) and stat.st_size > size:
            log.warning("file sink %s: trimming %d bytes written but not counted before a crash",
                        self.path, stat.st_size - size)
            os.truncate(self.path, size)

    def _open(self) -> BinaryIO:
        if self._stream is None:
            self._stream = os.fdopen(open_append(self.path, self._group), "ab")
        return self._stream

    async def send(self, records: list[SpoolRecord]) -> None:
        before: int | None = None
        try:
            stream = self._open()
            before = stream.seek(0, os.SEEK_END)
            if self._max_bytes and before >= self._max_bytes:
                self._rotate()
                stream = self._open()
                before = stream.seek(0, os.SEEK_END)
            inode = os.fstat(stream.fileno()).st_ino
            if self._spool.extra != {"inode": inode, "size": before}:  # a new file: no cursor says where it ends
                self._spool.remember({"inode": inode, "size": before})
            stream.write(b"".join(record.document + b"\n" for record in records))
            stream.flush()
            os.fsync(stream.fileno())
            stat = os.fstat(stream.fileno())
        except OSError as error:
            self.reopen()
            if before is not None:
                with contextlib.suppress(OSError):
                    os.truncate(self.path, before)  # no torn line before the batch is written again
            raise DeliveryError(f"file {self.path}: {error}") from None
        self._spool.extra = {"inode": stat.st_ino, "size": stat.st_size}

    def _rotate(self) -> None:
        self.reopen()
        for number in range(self._keep - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{number}")
            if older.exists():
                older.replace(self.path.with_name(f"{self.path.name}.{number + 1}"))
        self.path.replace(self.path.with_name(f"{self.path.name}.1"))

    def reopen(self) -> None:
        if self._stream is not None:
            with contextlib.suppress(OSError):
                self._stream.close()
            self._stream = None

    async def close(self) -> None:
        self.reopen()
