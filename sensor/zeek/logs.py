"""Reading Zeek logs: TSV driven by its ``#fields``/``#types`` header, JSON lines, plain or gzip.

A reader yields :class:`RecordBatch` es of consecutive lines holding only the fields a consumer asked
for, converted by their Zeek type (``time`` → float, ``port``/``count`` → int, ``bool`` → bool,
``set``/``vector`` → list, unset → absent). Column positions are never hard-coded: each header is parsed
once into converters (:mod:`sensor.zeek.tsv`). The file is read in blocks of complete lines; a TSV block is
decoded column by column at once (:mod:`sensor.zeek.columns`) unless anything in it is unusual, and then
line by line, with the same result.

Lines that cannot be read are skipped and counted; :class:`MalformedLog` warns about the first few of
each file and summarises the rest, so a garbage file cannot flood stderr. A file that cannot be opened,
or that holds no Zeek log at all, raises :class:`~sensor.errors.LogReadError`.
"""

from __future__ import annotations

import gzip
import io
import logging
import re
import stat
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from sensor.errors import LogReadError, why_unreadable
from sensor.zeek import KINDS
from sensor.zeek.blocks import complete_lines, joined, next_directive
from sensor.zeek.malformed import MalformedLog
from sensor.zeek.tsv import Header, RowDecoder, directive_value, unescape

if TYPE_CHECKING:
    from sensor.zeek.columns import Columns

log = logging.getLogger(__name__)

_CHUNK = 1 << 20
Record = Mapping[str, Any]

_ROTATED = re.compile(
    r"^(?P<kind>[a-z0-9_]+?)"
    r"(?:\.log(?:\.\d+)?|\.[^/]*?\.log|__[^/]*__\.log)"
    r"(?:\.gz)?$"
)


def log_kind(name: str) -> str | None:
    """The log a file name belongs to: ``conn`` for ``conn.log``, ``conn.2026-11-28-10-00-00.log``,
    zeekctl's ``conn.10:00:00-11:00:00.log.gz`` or a logger's ``conn__2026-…__.log``; else None."""
    match = _ROTATED.match(name)
    return match.group("kind") if match else None


def discover(paths: list[Path], kinds: tuple[str, ...] = KINDS) -> list[tuple[str | None, list[Path]]]:
    """Group the given files and directories into streams, one per log kind, oldest file first.

    Files named on the command line are taken whatever their name (their kind is read from the file);
    in a directory (and its ``log-queue/``) only the ``kinds`` logs are taken (conn, notice, dns, t1046,
    t1046_mdns …).
    """
    streams: dict[str | None, list[Path]] = {}
    for path in paths:
        if is_directory(path):
            found = [p for p in listing(path) if p.is_file()]
            queue = path / "log-queue"
            if queue.is_dir():
                found += [p for p in listing(queue) if p.is_file()]
            for candidate in found:
                kind = log_kind(candidate.name)
                if kind in kinds:
                    streams.setdefault(kind, []).append(candidate)
        else:
            streams.setdefault(None, []).append(path)
    ordered: list[tuple[str | None, list[Path]]] = []
    for kind, files in streams.items():
        ordered.append((kind, files if kind is None else sorted(files, key=age_order)))
    return ordered


def is_directory(path: Path) -> bool:
    """Whether an input is a directory (else a file); :class:`LogReadError` when it is missing or cannot be
    looked at."""
    try:
        return stat.S_ISDIR(path.stat().st_mode)
    except FileNotFoundError:
        raise LogReadError(f"{path}: no such file or directory") from None
    except OSError as error:
        raise LogReadError(why_unreadable(path, error)) from None


def listing(directory: Path) -> list[Path]:
    """The entries of ``directory``, sorted; :class:`LogReadError` when it cannot be listed."""
    try:
        return sorted(directory.iterdir())
    except OSError as error:
        raise LogReadError(why_unreadable(directory, error)) from None


_STAMP = re.compile(r"(\d{4}-\d{2}-\d{2})[-_T](\d{2})[-:](\d{2})[-:](\d{2})")
"""Zeek's ``conn.2026-11-28-08-00-00.log`` and a logger's ``conn__2026-11-28-08-00-00__…__.log``."""
_TIME_OF_DAY = re.compile(r"\.(\d{2}):(\d{2}):(\d{2})-\d{2}:\d{2}:\d{2}\.log")
"""zeekctl's ``conn.08:00:00-09:00:00.log.gz``, whose day is the name of its directory."""
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_NUMBERED = re.compile(r"\.log\.(\d+)(?:\.gz)?$")
"""logrotate's ``conn.log.1`` (the newest copy), ``conn.log.2.gz`` (older)."""


def age_order(path: Path) -> tuple[int, str, int, float, str]:
    """Sort key putting a stream's files oldest first, by their own age, the live ``conn.log`` last.

    Files are ordered by the rotation time in their names (Zeek's ``conn.2026-11-28-08-00-00.log``, a
    logger's ``conn__2026-11-28-08-00-00__…__.log``, zeekctl's ``conn.08:00:00-09:00:00.log.gz`` in its day
    directory ``2026-11-28/``), before files without one; then by logrotate's number, higher (older)
    first (``conn.log.10`` before ``conn.log.2`` before ``conn.log.1``); then by modification time.
    """
    name = path.name
    if name == f"{log_kind(name)}.log":
        return (2, "", 0, 0.0, name)
    stamp = ""
    if found := _STAMP.search(name):
        stamp = "{} {}:{}:{}".format(*found.groups())
    elif found := _TIME_OF_DAY.search(name):
        day = path.parent.name if _DAY.match(path.parent.name) else ""
        stamp = "{} {}:{}:{}".format(day, *found.groups())
    numbered = _NUMBERED.search(name)
    try:
        mtime = path.stat().st_mtime
    except OSError:
        mtime = 0.0
    return (0 if stamp else 1, stamp, -int(numbered.group(1)) if numbered else 0, mtime, name)


def open_log(path: Path) -> io.BufferedIOBase:
    """A log file opened for reading bytes, uncompressed on the fly when it is gzip (by its magic number)."""
    with path.open("rb") as probe:
        magic = probe.read(2)
    return gzip.GzipFile(path, "rb") if magic == b"\x1f\x8b" else path.open("rb")


@dataclass(slots=True)
class RecordBatch:
    """The records of consecutive lines of one log: as dicts (JSON lines, or TSV read line by line), or as
    columns (a TSV block decoded at once: each wanted field's values, None where unset)."""

    kind: str | None
    first: int
    """Records of the log read before this batch (the first one is record ``first + 1``)."""
    records: list[Record]
    columns: Columns | None = None
    count: int = 0
    """Number of records (of rows, for columns)."""
    types: Mapping[str, str] = field(default_factory=dict)
    """The Zeek type of each column, as the header declared it."""
    unset: frozenset[str] = frozenset()
    """The columns holding an unset value (None) somewhere."""

    def rows(self) -> list[Record]:
        """The records as dicts, whichever way they were decoded."""
        if self.columns is None:
            return self.records
        names = list(self.columns)
        return [{name: value for name, value in zip(names, row, strict=True) if value is not None}
                for row in zip(*self.columns.values(), strict=True)] if names else [{} for _ in range(self.count)]


_IDENTITY: frozenset[Callable[[str], Any]] = frozenset({str, unescape})
"""Converters that return a text without backslashes as it is."""


class _Reading:
    """Where the decoding of one log stands: its directives, header and decoders."""

    __slots__ = ("columnar", "decoder", "directives", "header", "looked_like_log", "types", "wanted")

    def __init__(self, wanted: Callable[[str | None], tuple[str, ...]]) -> None:
        self.wanted = wanted
        self.directives: dict[str, bytes] = {}
        self.header: Header | None = None
        self.decoder: RowDecoder | None = None
        self.columnar: list[tuple[str, Callable[[str], Any]]] = []
        self.types: dict[str, str] = {}
        self.looked_like_log = False


class ZeekLog:
    """One Zeek log file, TSV or JSON, plain or gzip. Iterate :meth:`batches` (or :meth:`records`) for the
    wanted fields; ``columnar=False`` decodes every TSV line one by one (the reference the columnar
    decoder is tested against)."""

    def __init__(self, path: Path, malformed: MalformedLog, columnar: bool = True) -> None:
        self.path = path
        self.malformed = malformed
        self.columnar = columnar
        self.kind: str | None = log_kind(path.name)
        self.records_read = 0
        """Records decoded (lines that could not be are reported to ``malformed``)."""
        self.records_unusable = 0
        """Records decoded whose fields could not be mapped (missing or bad), reported to ``malformed`` too."""
        self.bytes_read = 0
        """Bytes of the file (as it lies on disk: compressed, for a gzip file) read so far."""

    @property
    def records_usable(self) -> int:
        """Records read that could be mapped."""
        return self.records_read - self.records_unusable

    def _open(self) -> io.BufferedIOBase:
        try:
            return open_log(self.path)
        except OSError as error:
            raise LogReadError(why_unreadable(self.path, error)) from None

    def _blocks(self) -> Iterator[tuple[int, bytes, int]]:
        with self._open() as stream:
            raw = getattr(stream, "fileobj", None) or stream

            def read() -> bytes:
                found = stream.read1(_CHUNK)
                self.bytes_read = raw.tell()
                return found

            yield from complete_lines(read, str(self.path), self.malformed)

    def batches(self, wanted: Callable[[str | None], tuple[str, ...]]) -> Iterator[RecordBatch]:
        """Yield the records of every readable line in batches; ``wanted(kind)`` names the fields to convert.

        Raises :class:`LogReadError` when the file cannot be opened or holds nothing that looks like a
        Zeek log.
        """
        return self.batches_from(self._blocks(), wanted)

    def records(self, wanted: Callable[[str | None], tuple[str, ...]]) -> Iterator[tuple[str | None, Record]]:
        """Like :meth:`batches`, one ``(kind, record)`` at a time."""
        for batch in self.batches(wanted):
            for record in batch.rows():
                yield batch.kind, record

    def batches_from(self, blocks: Iterable[tuple[int, bytes, int]],
                     wanted: Callable[[str | None], tuple[str, ...]]) -> Iterator[RecordBatch]:
        """Like :meth:`batches`, over numbered blocks of complete lines read elsewhere (:func:`complete_lines`),
        such as the part of a growing file a follower has just read, preceded by the file's header lines."""
        reading = _Reading(wanted)
        for number, block, lines in joined(blocks):
            yield from self._block(reading, number, block, lines)
        if not reading.looked_like_log and self.records_read == 0:
            raise LogReadError(f"{self.path}: not a Zeek log (no #fields header and no JSON records)")

    def _block(self, reading: _Reading, number: int, block: bytes, block_lines: int) -> Iterator[RecordBatch]:
        """The batches of one block of ``block_lines`` lines: its ``#`` lines set the header; the data lines
        between them are decoded as columns when :func:`~sensor.zeek.columns.decode_block` can, else line by
        line."""
        position, end = 0, len(block)
        while position < end:
            if block.startswith(b"#", position):
                line_end = block.index(b"\n", position)
                self._directive(reading, block[position:line_end])
                number += 1
                position = line_end + 1
                continue
            following = next_directive(block, position)
            stop = end if following < 0 else following + 1
            run = block if position == 0 and stop == end else block[position:stop]
            lines = block_lines if run is block else run.count(b"\n")
            decoded = None
            if reading.header is not None and self.columnar:
                from sensor.zeek.columns import decode_block  # pyarrow and numpy load with a TSV log, not per command

                decoded = decode_block(reading.header.fields, reading.columnar, reading.header.unset_field, run,
                                       lines, _IDENTITY)
            if decoded is not None:
                yield RecordBatch(self.kind, self.records_read, [], decoded, lines, reading.types, decoded.unset)
                self.records_read += lines
                reading.looked_like_log = True
            else:
                yield from self._lines(reading, number, run)
            number += lines
            position = stop

    def _directive(self, reading: _Reading, line: bytes) -> None:
        directive, _, value = line[1:].partition(b"\t" if b"\t" in line else b" ")
        key = directive.decode("ascii", "replace")
        directives = reading.directives
        directives[key] = value
        if key == "types" and "fields" in directives:
            header = reading.header = self._header(directives)
            self.kind = header.path or self.kind
            wanted = reading.wanted(self.kind)
            reading.decoder = RowDecoder(header, wanted)
            reading.columnar = [(name, found[1]) for name in wanted if (found := header.converter(name)) is not None]
            reading.types = {name: header.type_of(name) for name, _ in reading.columnar}
            reading.looked_like_log = True

    def _lines(self, reading: _Reading, number: int, run: bytes) -> Iterator[RecordBatch]:
        """The records of data lines read one by one (each bad line reported), a batch per log kind."""
        batch = RecordBatch(self.kind, self.records_read, [])
        source = str(self.path)
        decoder = reading.decoder
        for line in run.split(b"\n")[:-1]:
            number += 1
            if not line:
                continue
            record: Record | None
            if line[:1] == b"{":
                record = self._json(number, line)
                if record is None:
                    continue
                reading.looked_like_log = True
                if self.kind is None:
                    self.kind = _sniff_kind(record)
            elif decoder is None:
                self.malformed.report(source, number, "data before any #fields/#types header")
                continue
            else:
                record = self._tsv(decoder, number, line)
                if record is None:
                    continue
            if self.kind != batch.kind:
                if batch.records:
                    yield batch
                batch = RecordBatch(self.kind, self.records_read, [])
            batch.records.append(record)
            batch.count += 1
            self.records_read += 1
        if batch.records:
            yield batch

    def _tsv(self, decoder: RowDecoder, number: int, line: bytes) -> Record | None:
        source = str(self.path)
        try:
            text = line.decode()
        except UnicodeDecodeError:
            self.malformed.report(source, number, "not UTF-8 text")
            return None
        parts = text.split("\t")
        if len(parts) != decoder.width:
            self.malformed.report(source, number, f"{len(parts)} columns where the header has {decoder.width}")
            return None
        try:
            return decoder.decode(text, parts)
        except ValueError as error:
            self.malformed.report(source, number, str(error))
            return None

    def _header(self, directives: dict[str, bytes]) -> Header:
        fields = tuple(f.decode("utf-8", "replace") for f in directives["fields"].split(b"\t"))
        types = tuple(t.decode("utf-8", "replace") for t in directives["types"].split(b"\t"))
        return Header(
            path=directive_value(directives.get("path", b"")),
            fields=fields,
            types=types,
            set_separator=directive_value(directives.get("set_separator", b",")),
            empty_field=directive_value(directives.get("empty_field", b"(empty)")),
            unset_field=directive_value(directives.get("unset_field", b"-")),
            index={name: position for position, name in enumerate(fields)},
        )

    def _json(self, number: int, line: bytes) -> dict[str, Any] | None:
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError as error:
            self.malformed.report(str(self.path), number, f"invalid JSON: {error}")
            return None
        if not isinstance(record, dict):
            self.malformed.report(str(self.path), number, "JSON line is not an object")
            return None
        return record


def _sniff_kind(record: Mapping[str, Any]) -> str | None:
    """The log a JSON record comes from, by its ``_path`` or, failing that, its characteristic fields."""
    path = record.get("_path")
    if isinstance(path, str):
        return path
    if "conn_state" in record:
        return "conn"
    if "note" in record:
        return "notice"
    if "qtype" in record or "query" in record:
        return "dns"
    if "scanner" in record and "kind" in record:
        return "t1046"
    return None
