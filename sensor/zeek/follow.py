"""Following Zeek's log directory live, through rotation.

Each stream (conn, notice, dns, t1046, t1046_mdns, …) has one position: the file's inode, the bytes consumed and a
fingerprint (SHA-256 of its first bytes, uncompressed). A file is found again by inode and fingerprint
wherever rotation put it, so every way Zeek's logs move is followed:

* **rename + new file** (Zeek's own rotation, zeekctl): the old inode now has a dated name; its rest is
  read, then the new ``conn.log`` from its start;
* **copytruncate** (logrotate): ``conn.log`` keeps its inode but not its first bytes; the rest of the old
  content is read from the copy (``conn.log.1``), found by fingerprint;
* **gzip**: a rotated file compressed while the daemon was away is found by the fingerprint of its
  uncompressed content and read on from the same offset;
* **log-queue/** of a Zeek cluster's logger (``conn__2026-…__.log``), read like a rotated file.

Rotated files already there at the first start are not read (the daemon starts at the live logs, whose
positions it has from then on, so a restart before the first lines are read still follows them through
rotation); those read to their end are remembered by fingerprint. The live file is read only up to its
last complete line. Positions move forward in memory as lines are read; the daemon saves them in its
checkpoint together with the correlator state those lines produced (see :mod:`sensor.daemon.checkpoint`).
"""

from __future__ import annotations

import errno
import hashlib
import io
import logging
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from sensor.errors import LogReadError, why_unreadable
from sensor.observations import ConnRows, Intake
from sensor.zeek import KINDS
from sensor.zeek.blocks import MAX_LINE, complete_lines
from sensor.zeek.logs import ZeekLog, age_order, log_kind, open_log
from sensor.zeek.malformed import MalformedLog
from sensor.zeek.position import StreamPosition
from sensor.zeek.records import observations, wanted_fields

log = logging.getLogger(__name__)

FINGERPRINT_BYTES = 512
"""Bytes hashed to recognise a file: more than a Zeek TSV header up to its ``#open`` line."""
FINGERPRINT_CACHE = 4096
"""Fingerprints remembered (files seen in the log directory); the memo is cleared when it is full."""
READ_BUDGET = 4 << 20
"""Bytes read per stream per poll, so one huge backlog cannot starve the event loop for long (about 36 000
conn.log records); with a backlog the daemon polls again at once."""
_HEADER_BYTES = 64 << 10


def _prefix(path: Path, length: int) -> bytes:
    try:
        with open_log(path) as stream:
            return stream.read(length)
    except (OSError, EOFError, zlib.error):
        return b""


def _line_end(stream: io.BufferedIOBase, offset: int) -> int | None:
    """The offset just past the next newline at or after ``offset``, or None when there is none yet."""
    stream.seek(offset)
    while chunk := stream.read(1 << 20):
        newline = chunk.find(b"\n")
        if newline >= 0:
            return offset + newline + 1
        offset += len(chunk)
    return None


def is_file(path: Path) -> bool:
    """``path.is_file()``, False where a directory on the way cannot be searched (reported by the poll)."""
    try:
        return path.is_file()
    except OSError:
        return False


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _slice_blocks(log: ZeekLog, header: list[bytes], data: bytes, size: int) -> Iterator[tuple[int, bytes, int]]:
    """Numbered blocks of the lines in the first ``size`` bytes of ``data``, preceded by the log's header lines
    (a TSV slice needs its ``#fields``), cut as a whole file's are (:func:`~sensor.zeek.blocks.complete_lines`).
    Each piece handed to it ends at a newline where one is in reach, so that it is a block as it is (not
    copied again to join it with the line begun in the piece before)."""
    if header:
        yield 0, b"\n".join(header) + b"\n", len(header)
    yield from complete_lines(partial(next, _pieces(data, size), b""), str(log.path), log.malformed, len(header))


def _pieces(data: bytes, size: int) -> Iterator[bytes]:
    """The first ``size`` bytes of ``data``, at most ``MAX_LINE`` at a time, each cut after its last newline."""
    start = 0
    while start < size:
        stop = min(start + MAX_LINE, size)
        if stop < size:
            cut = data.rfind(b"\n", start, stop) + 1
            if cut > start:
                stop = cut
        yield data[start:stop]
        start = stop


@dataclass(slots=True)
class FollowBatch:
    """What one poll read: observations in file order, and counts for the metrics."""

    observations: list[Intake]
    """Single observations, and conn records a block at a time (:class:`ConnRows`)."""
    records: dict[str, int]
    bytes_read: int
    backlog: bool = False
    """More was there than a poll reads: poll again at once."""
    moved: bool = False
    """Positions moved without a byte read (an S3 source passed objects over): a checkpoint keeps them too."""


class LogFollower:
    """Follows the ``kinds`` logs (``conn``, ``notice``, ``dns``, ``t1046``, ``t1046_mdns`` …) of a Zeek log
    directory (and its log-queue/)."""

    def __init__(self, log_dir: Path, malformed: MalformedLog, streams: Mapping[str, StreamPosition] | None = None,
                 done: frozenset[str] | None = None, kinds: tuple[str, ...] = KINDS,
                 read_budget: int = READ_BUDGET) -> None:
        self.log_dir = log_dir
        self.malformed = malformed
        self.kinds = kinds
        self.read_budget = read_budget
        self.streams: dict[str, StreamPosition] = dict(streams or {})
        self._headers: dict[str, list[bytes]] = {}
        self._fingerprints: dict[tuple[str, int, int, int], tuple[str, int]] = {}
        """Fingerprints by (path, inode, size, mtime): a rotated file is read once, not at every poll."""
        self._failing: dict[str, str] = {}
        """Paths that could not be read, with the warning given once for each (retried at every poll)."""
        if streams is None and done is None:
            self.done = {self._fingerprint(path)[0] for kind, files in self._candidates().items()
                         for path in files if not self._is_live(path, kind)}
            self.done.discard(_digest(b""))
            for kind in kinds:
                live = self.live_path(kind)
                if live is not None and is_file(live):
                    self.streams[kind] = self._position(live)
        else:
            self.done = set(done or ())

    # -- files --------------------------------------------------------------------------------------

    def _candidates(self) -> dict[str, list[Path]]:
        """Files of each stream, oldest first, the live file last: the log directory (and its log-queue/)
        listed once for every stream."""
        found: dict[str, list[Path]] = {kind: [] for kind in self.kinds}
        for directory in (self.log_dir, self.log_dir / "log-queue"):
            try:
                entries = list(directory.iterdir())
            except OSError as error:
                if directory == self.log_dir:
                    self._cannot_read(directory, error)
                    break
                if error.errno != errno.ENOENT:
                    self._cannot_read(directory, error)
                continue
            self._can_read(directory)
            for path in entries:
                files = found.get(log_kind(path.name) or "")
                if files is not None and path.is_file():
                    files.append(path)
        return {kind: sorted(files, key=age_order) for kind, files in found.items()}

    def live_path(self, kind: str) -> Path | None:
        """The live file of a stream (``conn.log``), which its writer appends to; None where a stream has none
        (files delivered whole, each read once: the oldest unread one is read next)."""
        return self.log_dir / f"{kind}.log"

    def _is_live(self, path: Path, kind: str) -> bool:
        return path == self.live_path(kind)

    def _fingerprint(self, path: Path) -> tuple[str, int]:
        """Digest and length of the file's first bytes, which identify it through renames."""
        try:
            stat = path.stat()
        except OSError:
            return _digest(b""), 0
        key = (str(path), stat.st_ino, stat.st_size, stat.st_mtime_ns)
        found = self._fingerprints.get(key)
        if found is None:
            if len(self._fingerprints) >= FINGERPRINT_CACHE:
                self._fingerprints.clear()
            prefix = _prefix(path, FINGERPRINT_BYTES)
            found = self._fingerprints[key] = (_digest(prefix), len(prefix))
        return found

    def _position(self, path: Path, offset: int = 0) -> StreamPosition:
        stat = path.stat()
        fingerprint, length = self._fingerprint(path)
        return StreamPosition(str(path), stat.st_ino, offset, fingerprint, length, stat.st_mtime)

    def _matches(self, path: Path, position: StreamPosition) -> bool:
        if position.fingerprint_len == 0:
            return path.stat().st_ino == position.inode
        prefix = _prefix(path, position.fingerprint_len)
        return len(prefix) == position.fingerprint_len and _digest(prefix) == position.fingerprint

    def _locate(self, position: StreamPosition, candidates: list[Path]) -> Path | None:
        """The file a position belongs to: same inode and first bytes, else same first bytes anywhere."""
        same_inode = [path for path in candidates if path.stat().st_ino == position.inode]
        for path in same_inode:
            if self._matches(path, position):
                return path
        if position.fingerprint_len == 0:
            return None
        for path in candidates:
            if path not in same_inode and self._matches(path, position):
                return path
        return None

    def _header(self, path: Path, fingerprint: str) -> list[bytes]:
        """The ``#`` lines at the top of a file, cached by fingerprint."""
        cached = self._headers.get(fingerprint)
        if cached is None:
            lines = _prefix(path, _HEADER_BYTES).split(b"\n")
            cached = []
            for line in lines[:-1]:
                if not line.startswith(b"#"):
                    break
                cached.append(line)
            if len(self._headers) > 64:
                self._headers.clear()
            self._headers[fingerprint] = cached
        return cached

    # -- reading ------------------------------------------------------------------------------------

    def poll(self) -> FollowBatch:
        """Read what was added since the last poll, in every stream."""
        batch = FollowBatch([], {}, 0)
        rotated: set[str] = set()
        for kind, candidates in self._candidates().items():
            self._poll_stream(kind, candidates, batch)
            rotated |= {self._fingerprint(path)[0] for path in candidates if not self._is_live(path, kind)}
        self.done &= rotated
        return batch

    def _poll_stream(self, kind: str, candidates: list[Path], batch: FollowBatch) -> None:
        position = self.streams.get(kind)
        if position is None:
            live_path = self.live_path(kind)
            if live_path is None:
                unread = [path for path in candidates if self._fingerprint(path)[0] not in self.done]
                if not unread:
                    return
                live_path = unread[0]
                log.info("following %s", live_path)
            elif not is_file(live_path):
                return
            position = self._position(live_path)
        path = self._locate(position, candidates)
        if path is None:
            path = self._lost(kind, position, candidates)
            if path is None:
                self.streams.pop(kind, None)  # reported once; the next live file is read from its start
                return
            position = self._position(path)
        budget = self.read_budget
        while True:
            live = self._is_live(path, kind)
            position, used, at_end = self._read(path, position, live, batch)
            budget -= used
            self.streams[kind] = position
            if live or not at_end:
                return
            if budget <= 0:
                batch.backlog = True  # the next file waits for the next poll
                return
            self.done.add(position.fingerprint)
            following = [candidate for candidate in candidates if candidate != path
                         and self._fingerprint(candidate)[0] not in self.done]
            if not following:
                if self.live_path(kind) is None:
                    self.streams.pop(kind, None)  # read whole: the next file delivered is read from its start
                return
            path = following[0]
            position = self._position(path)
            log.info("following %s", path)

    def _lost(self, kind: str, position: StreamPosition, candidates: list[Path]) -> Path | None:
        newer = [path for path in candidates if path.stat().st_mtime >= position.mtime
                 and self._fingerprint(path)[0] not in self.done]
        log.error("%s log: %s (inode %d, %d bytes read) is gone; lines written to it after byte %d are lost; "
                  "going on with %s", kind, position.path, position.inode, position.offset, position.offset,
                  newer[0] if newer else "nothing yet")
        return newer[0] if newer else None

    def _read(self, path: Path, position: StreamPosition, live: bool,
              batch: FollowBatch) -> tuple[StreamPosition, int, bool]:
        """Read on from ``position``; return the new position, bytes consumed, and whether at the end."""
        try:
            stat = path.stat()
            if live and stat.st_size < position.offset:
                log.warning("%s shrank below the %d bytes read: reading it again from its start", path,
                            position.offset)
                position = self._position(path)
            with open_log(path) as stream:
                stream.seek(position.offset)
                data = stream.read(self.read_budget)
                at_end = not stream.read(1)
                overlong = (_line_end(stream, position.offset + len(data))
                            if not at_end and b"\n" not in data else None)
        except OSError as error:
            self._cannot_read(path, error)
            return position, 0, False
        except (EOFError, zlib.error) as error:
            log.warning("%s: cannot read: %s", path, error)
            return position, 0, False
        self._can_read(path)
        if not at_end:
            batch.backlog = True
        if overlong is not None:
            self.malformed.report(str(path), 0, f"line at byte {position.offset} longer than the {self.read_budget} "
                                                "bytes read at once: skipped")
            moved = StreamPosition(str(path), stat.st_ino, overlong, position.fingerprint, position.fingerprint_len,
                                   stat.st_mtime)
            return moved, overlong - position.offset, False
        size = data.rfind(b"\n") + 1 if live or not at_end else len(data)  # complete lines only, but where a file ends
        if position.fingerprint_len < FINGERPRINT_BYTES and position.offset + size > position.fingerprint_len:
            fingerprint, length = self._fingerprint(path)
            position = StreamPosition(position.path, position.inode, position.offset, fingerprint, length,
                                      position.mtime)
        if size:
            self._parse(path, position, data, size, batch)
        moved = StreamPosition(str(path), stat.st_ino, position.offset + size, position.fingerprint,
                               position.fingerprint_len, stat.st_mtime)
        return moved, size, at_end and (not live or not size)

    def _cannot_read(self, path: Path, error: OSError) -> None:
        """Warn once that ``path`` cannot be read (again only if the reason changes); it is retried every poll."""
        line = why_unreadable(path, error)
        if self._failing.get(str(path)) != line:
            self._failing[str(path)] = line
            log.warning("%s; retrying", line)

    def _can_read(self, path: Path) -> None:
        if self._failing.pop(str(path), None) is not None:
            log.warning("%s: readable now; following it", path)

    def _parse(self, path: Path, position: StreamPosition, data: bytes, size: int, batch: FollowBatch) -> None:
        """Map the first ``size`` bytes of ``data`` (read at ``position``) into ``batch``."""
        header = self._header(path, position.fingerprint) if position.offset else []
        piece = ZeekLog(path, self.malformed)
        try:
            for records in piece.batches_from(_slice_blocks(piece, header, data, size), wanted_fields):
                found = observations(piece, records)
                if isinstance(found, ConnRows):
                    batch.observations.append(found)
                else:
                    batch.observations.extend(found)
            batch.records[piece.kind or "unknown"] = batch.records.get(piece.kind or "unknown", 0) + piece.records_read
        except LogReadError as error:
            self.malformed.report(str(path), 0, str(error))
        batch.bytes_read += size

    def lag(self, streams: Mapping[str, StreamPosition] | None = None) -> dict[str, int]:
        """Bytes of each live log not read yet (past ``streams``, positions the follower left, or its own)."""
        lags: dict[str, int] = {}
        for kind, position in (self.streams if streams is None else streams).items():
            live = self.live_path(kind)
            if live is None or kind not in self.kinds:
                continue
            try:
                stat = live.stat()
            except OSError:
                continue
            lags[kind] = max(0, stat.st_size - position.offset) if stat.st_ino == position.inode else stat.st_size
        return lags
