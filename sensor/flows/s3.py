"""Following an S3 prefix (``flows[].path: s3://bucket/prefix``) as the flow follower follows a directory of
delivered files: each new object read once, whole, in key order, its records joined and handed on as a file's are.

The store is reached in a thread of its own (the fetcher), never in the daemon's event loop nor in its follower's
polls: the fetcher lists the prefix every ``poll`` seconds (after an error: again in 1, 2, 4 … seconds, up to
``poll``), reads each new object a bounded piece at a time (:data:`~sensor.flows.bucket.PIECE` bytes of its
content, gzip uncompressed on the fly) into a short queue, and waits while the queue is full; the follower's
:meth:`S3Follower.poll` takes what is queued without waiting. A down or slow store holds back only its own records:
Zeek's logs, the other flow sources and the honeyports go on. What cannot be read is said once, and that it can
again when it can.

The checkpoint holds what :meth:`S3Follower.poll` handed on, never what the fetcher read ahead: the object being
read as a stream position (its ``s3://`` URL, the bytes of its content handed on, its ETag as the fingerprint) and
the :class:`~sensor.flows.bucket.Ledger` of objects read as one line among the finished files. A restart reads that
object again, skipping what was handed on (if its ETag is still the same: a replaced object is read whole), and
lists past the ledger's mark. At the first start (no ledger of this prefix) the objects already there are not read,
as the files already in a followed directory are not (their history: ``replay``): those modified more than
:data:`CLOCK_SKEW` seconds before it.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from sensor.config import FlowConfig, S3Prefix
from sensor.flows.bucket import PIECE, Bucket, Gone, Ledger, StoredObject, StoreError
from sensor.flows.follow import FlowIntake
from sensor.flows.read import MAX_DOCUMENT, FlowParser
from sensor.zeek.follow import READ_BUDGET, FollowBatch
from sensor.zeek.malformed import MalformedLog
from sensor.zeek.position import StreamPosition

log = logging.getLogger(__name__)

CLOCK_SKEW = 5.0
"""Seconds the store's clock may be behind this host's: objects modified that long before the first start are read."""
QUEUED = 8
"""Pieces the fetcher reads ahead of the polls, at the most."""
PIECES_PER_POLL = 1024
"""Pieces one poll takes at the most (besides :data:`~sensor.zeek.follow.READ_BUDGET` bytes)."""
_HEAD = 64 << 10
"""Bytes of an object's first line kept for a poll that goes on inside it (an AWS header line names the fields)."""


@dataclass(frozen=True, slots=True)
class Piece:
    """Part of one object's content, or the news that it ended or was passed over, from the fetcher to a poll."""

    found: StoredObject
    offset: int
    """Where ``data`` starts in the object's (uncompressed) content."""
    data: bytes = b""
    """Whole lines (the last piece may end in a line without its newline)."""
    last: bool = False
    head: bytes = b""
    """The object's first line, with the first piece of a read that starts inside it."""
    problem: str = ""
    """Why the object is not read on (a damaged gzip stream, an overlong line), counted as a malformed line."""


class _Stopped(Exception):
    """The follower is closing: the fetcher ends."""


def _pieces(found: StoredObject, content: Iterator[bytes], skip: int) -> Iterator[Piece]:
    """The object's content past ``skip`` bytes as pieces of whole lines, about :data:`PIECE` bytes each, the last
    marked; a line longer than :data:`~sensor.flows.read.MAX_DOCUMENT` is skipped, not held."""
    start, buffer, head, heading, discarding = 0, bytearray(), bytearray(), skip > 0, False
    try:
        for chunk in content:
            if heading:
                head += chunk[:_HEAD - len(head)]
                heading = b"\n" not in head and len(head) < _HEAD
            if start + len(chunk) <= skip:  # nothing is held while skipping
                start += len(chunk)
                continue
            data = chunk
            if start < skip:
                data = data[skip - start:]
                start = skip
            if discarding:
                newline = data.find(b"\n")
                start += len(data) if newline < 0 else newline + 1
                data, discarding = (b"", True) if newline < 0 else (data[newline + 1:], False)
            buffer += data
            if len(buffer) < PIECE:
                continue
            cut = buffer.rfind(b"\n") + 1
            if cut:
                yield Piece(found, start, bytes(buffer[:cut]), head=_first_line(head))
                head = bytearray()
                start += cut
                del buffer[:cut]
            elif len(buffer) > MAX_DOCUMENT:
                yield Piece(found, start, problem=f"line at byte {start} longer than {MAX_DOCUMENT} bytes: skipped")
                start += len(buffer)
                buffer.clear()
                discarding = True
    except (zlib.error, EOFError) as error:  # a damaged gzip stream: its whole lines before the damage stand
        cut = buffer.rfind(b"\n") + 1
        yield Piece(found, start, bytes(buffer[:cut]), last=True, head=_first_line(head),
                    problem=f"cannot read on after byte {start + cut}: {error}")
        return
    yield Piece(found, start, bytes(buffer), last=True, head=_first_line(head))


def _first_line(head: bytearray) -> bytes:
    newline = head.find(b"\n")
    return bytes(head[:newline + 1]) if newline >= 0 else b""


class _Fetcher:
    """The thread that lists the prefix and reads its new objects into the queue (see the module's docstring)."""

    def __init__(self, bucket: Bucket, ledger: Ledger, resume: tuple[StoredObject, int] | None,
                 pieces: queue.Queue[Piece], stop: threading.Event) -> None:
        self.bucket = bucket
        self.ledger = ledger
        """What has been queued: the polls' ledger and what waits in the queue (the fetcher's own copy)."""
        self.resume = resume
        """The object being read and the bytes of it queued so far."""
        self.pieces = pieces
        self.stop = stop
        self.failing = ""

    def run(self) -> None:
        poll = self.bucket.prefix.poll
        pause = 1.0
        while not self.stop.is_set():
            try:
                self._round()
            except _Stopped:
                return
            except StoreError as error:
                if str(error) != self.failing:
                    self.failing = str(error)
                    log.warning("%s; trying again in %.0f s and then less often (at least every %.0f s)",
                                error, min(pause, max(poll, 1.0)), max(poll, 1.0))
                wait, pause = min(pause, max(poll, 1.0)), pause * 2
            else:
                if self.failing:
                    log.warning("%s: reachable again; following it", self.bucket.prefix.url)
                    self.failing = ""
                wait, pause = poll, 1.0
            self.stop.wait(wait)

    def _round(self) -> None:
        """Read on in the object being read, then every new object past the mark; raise :class:`StoreError`."""
        if self.resume is not None:
            self._read(*self.resume)
        for found in self.bucket.listing(self.ledger.after):
            if self.stop.is_set():
                raise _Stopped
            if self.ledger.has(found):
                continue
            if found.key.endswith("/") or found.modified < self.ledger.since:
                self._put(Piece(found, 0, last=True))  # a folder's marker; there before the first start
            elif found.key.endswith(".parquet"):
                self._put(Piece(found, 0, last=True, problem="a Parquet flow log, which is not read: deliver them "
                                                             "as text (the plain-text file format, the default)"))
            else:
                self._read(found, 0)

    def _read(self, found: StoredObject, skip: int) -> None:
        self.resume = (found, skip)
        try:
            for piece in _pieces(found, self.bucket.content(found), skip):
                self._put(piece)
                self.resume = None if piece.last else (found, piece.offset + len(piece.data))
        except Gone as gone:
            at = self.resume[1] if self.resume is not None else skip
            log.warning("%s%s", gone, f"; its content after byte {at} is not read" if at else "; not read")
            self._put(Piece(found, at, last=True))
            self.resume = None

    def _put(self, piece: Piece) -> None:
        while not self.stop.is_set():
            try:
                self.pieces.put(piece, timeout=0.5)
            except queue.Full:
                continue
            if piece.last:
                self.ledger.add(piece.found.key, piece.found.etag)
            return
        raise _Stopped


class S3Follower:
    """Follows one flow source whose path is an S3 prefix: the objects delivered under it, each read once."""

    def __init__(self, config: FlowConfig, malformed: MalformedLog,
                 streams: Mapping[str, StreamPosition] | None = None, done: frozenset[str] | None = None,
                 clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time,
                 bucket: Bucket | None = None) -> None:
        if config.s3 is None:
            raise ValueError(f"flows {config.name}: not an S3 source")
        prefix: S3Prefix = config.s3
        self.config = config
        self.malformed = malformed
        self.kinds = (config.name,)
        self.bucket = bucket if bucket is not None else Bucket(prefix)
        restored = Ledger.find(done or frozenset(), prefix.url)
        self.ledger = restored if restored is not None else Ledger(prefix.url, wall() - CLOCK_SKEW)
        self._unsaved = restored is None
        """The ledger is new: the next poll says so, so that a checkpoint keeps when the first start was."""
        self.streams: dict[str, StreamPosition] = {}
        position = (streams or {}).get(config.name)
        resume = None
        if restored is not None and position is not None and position.path.startswith(f"s3://{prefix.bucket}/"):
            self.streams[config.name] = position
            key = position.path.removeprefix(f"s3://{prefix.bucket}/")
            resume = (StoredObject(key, position.fingerprint, position.mtime), position.offset)
        self.intake = FlowIntake(config, clock)
        self._parser: FlowParser | None = None
        self._reading: tuple[str, str] | None = None
        self._line = 0
        self._pieces: queue.Queue[Piece] = queue.Queue(QUEUED)
        self._stop = threading.Event()
        self._fetcher = _Fetcher(self.bucket, self.ledger.copy(), resume, self._pieces, self._stop)
        self._thread = threading.Thread(target=self._fetcher.run, name="t1046-s3", daemon=True)
        self._thread.start()
        log.info("flows: following %s (%s, objects delivered under it, listed every %g s)%s", prefix.url,
                 config.format, prefix.poll, "" if restored is not None else
                 "; the objects already there are not read (replay reads them)")

    @property
    def done(self) -> set[str]:
        """The ledger, as the checkpoint keeps it among the finished files."""
        return {self.ledger.text()}

    def poll(self) -> FollowBatch:
        """What the fetcher has read since the last poll (without waiting for it), joined; what waited for its
        other direction judged when the source has been quiet for ``pair_within``."""
        batch = FollowBatch([], {}, 0, moved=self._unsaved)
        self._unsaved = False
        budget, taken = READ_BUDGET, 0
        while budget > 0 and taken < PIECES_PER_POLL:
            try:
                piece = self._pieces.get_nowait()
            except queue.Empty:
                break
            self._take(piece, batch)
            budget -= len(piece.data)
            taken += 1
        batch.backlog = not self._pieces.empty()
        if not batch.backlog and not batch.bytes_read:
            self.intake.quiet(batch)
        return batch

    def _take(self, piece: Piece, batch: FollowBatch) -> None:
        found = piece.found
        url = f"s3://{self.bucket.prefix.bucket}/{found.key}"
        parser = self._parser
        if parser is None or self._reading != (found.key, found.etag) or piece.offset == 0:
            self._reading = (found.key, found.etag)
            parser = self._parser = FlowParser(self.config.format, self.malformed, url, self.config.aws_fields,
                                               time.gmtime(found.modified).tm_year)
            self._line = 0
            for _ in parser.lines(piece.head):
                pass
        if piece.data:
            self.intake.add(parser.lines(piece.data, self._line), batch)
            self._line += piece.data.count(b"\n")
            batch.bytes_read += len(piece.data)
        if piece.problem:
            self.malformed.report(url, 0, piece.problem)
        if not piece.last:
            self.streams[self.config.name] = StreamPosition(url, 0, piece.offset + len(piece.data), found.etag, 0,
                                                            found.modified)
            return
        parser.finish()
        self._parser = self._reading = None
        self.ledger.add(found.key, found.etag)
        self.streams.pop(self.config.name, None)
        batch.moved = True

    def lag(self, streams: Mapping[str, StreamPosition] | None = None) -> dict[str, int]:
        """No live log to measure (objects are listed, not appended to)."""
        return {}

    def close(self) -> FollowBatch:
        """Stop the fetcher (what it read ahead is read again at the next start) and judge what the join holds."""
        self._stop.set()
        self._thread.join(1.0)  # one blocked in the store's socket ends with its timeout, as a daemon thread
        return self.intake.close()
