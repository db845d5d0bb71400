"""Reading Zeek logs: TSV driven by its ``#fields``/``#types`` header, JSON lines, plain or gzip.

A reader yields :class:`Record` mappings that hold only the fields a consumer asked for, converted by
their Zeek type (``time`` → float, ``port``/``count`` → int, ``bool`` → bool, ``set``/``vector`` → list,
unset → absent). Column positions are never hard-coded: each header is parsed once into converters.

Lines that cannot be read are skipped and counted; :class:`MalformedLog` warns about the first few of
each file and summarises the rest, so a garbage file cannot flood stderr. A file that cannot be opened,
or that holds no Zeek log at all, raises :class:`~sensor.errors.LogReadError`.
"""

from __future__ import annotations

import gzip
import io
import logging
import operator
import re
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from sensor.errors import LogReadError

log = logging.getLogger(__name__)

MAX_LINE = 1 << 20
"""Longest line read, in bytes; a longer one is skipped as malformed without being held in memory."""
_CHUNK = 1 << 20
_ESCAPE = re.compile(rb"\\x([0-9a-fA-F]{2})")
Record = Mapping[str, Any]
KINDS = ("conn", "notice", "dns", "t1046")
"""The logs the sensor reads; others in a directory are passed over."""

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


def discover(paths: list[Path]) -> list[tuple[str | None, list[Path]]]:
    """Group the given files and directories into streams, one per log kind, oldest file first.

    Files named on the command line are taken whatever their name (their kind is read from the file);
    in a directory (and its ``log-queue/``) only conn, notice, dns and t1046 logs are taken.
    """
    streams: dict[str | None, list[Path]] = {}
    for path in paths:
        if path.is_dir():
            found = [p for p in sorted(path.iterdir()) if p.is_file()]
            queue = path / "log-queue"
            if queue.is_dir():
                found += sorted(p for p in queue.iterdir() if p.is_file())
            for candidate in found:
                kind = log_kind(candidate.name)
                if kind in KINDS:
                    streams.setdefault(kind, []).append(candidate)
        elif path.exists():
            streams.setdefault(None, []).append(path)
        else:
            raise LogReadError(f"{path}: no such file or directory")
    ordered: list[tuple[str | None, list[Path]]] = []
    for kind, files in streams.items():
        ordered.append((kind, files if kind is None else sorted(files, key=age_order)))
    return ordered


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


class MalformedLog:
    """Counts unreadable lines and warns about the first few per file, then only summarises."""

    def __init__(self, warn_first: int = 3) -> None:
        self.total = 0
        self._warn_first = warn_first
        self._per_file: dict[str, int] = {}

    def report(self, source: str, line_number: int, reason: str) -> None:
        """Count one bad line of ``source``; log it if it is among the first few of that file."""
        self.total += 1
        seen = self._per_file.get(source, 0) + 1
        self._per_file[source] = seen
        if seen <= self._warn_first:
            log.warning("%s:%d: skipped malformed line: %s", source, line_number, reason)

    def summarise(self) -> None:
        """Log one line per file whose bad lines were not all shown."""
        for source, count in self._per_file.items():
            if count > self._warn_first:
                log.warning("%s: %d malformed lines skipped in all", source, count)


def _unescape(raw: str) -> str:
    """Undo Zeek's ``\\xNN`` escaping (the escaped bytes may be UTF-8 sequences)."""
    if "\\" not in raw:
        return raw
    return _ESCAPE.sub(lambda m: bytes((int(m.group(1), 16),)), raw.encode()).decode("utf-8", "replace")


def _to_bool(raw: str) -> bool:
    if raw == "T":
        return True
    if raw == "F":
        return False
    raise ValueError(f"{raw!r} is not T or F")


def _scalar_converter(zeek_type: str) -> Callable[[str], Any]:
    if zeek_type in ("time", "interval", "double"):
        return float
    if zeek_type in ("count", "int", "port"):
        return int
    if zeek_type == "bool":
        return _to_bool
    if zeek_type in ("addr", "subnet", "enum"):
        return str
    return _unescape


@dataclass(frozen=True, slots=True)
class Header:
    """A TSV log's header: its path (log name), fields and their converters."""

    path: str
    fields: tuple[str, ...]
    types: tuple[str, ...]
    set_separator: str = ","
    empty_field: str = "(empty)"
    unset_field: str = "-"
    index: dict[str, int] = field(default_factory=dict)

    def converter(self, name: str) -> tuple[int, Callable[[str], Any]] | None:
        """Column index and value converter of a field, or None when the log lacks it."""
        position = self.index.get(name)
        if position is None:
            return None
        zeek_type = self.types[position] if position < len(self.types) else "string"
        if zeek_type.startswith(("set[", "vector[")):
            element = _scalar_converter(zeek_type[zeek_type.index("[") + 1 : -1])
            separator, empty = self.set_separator, self.empty_field

            def convert(raw: str) -> list[Any]:
                return [] if raw == empty else [element(item) for item in raw.split(separator)]

            return position, convert
        return position, _scalar_converter(zeek_type)


class _RowDecoder:
    """The wanted fields of one TSV header, compiled once: a line becomes a record with one C-level pick
    of the raw columns, and Python work only for the columns that need converting."""

    __slots__ = ("_converted", "_escaped", "_names", "_pick", "unset", "width")

    def __init__(self, header: Header, wanted: tuple[str, ...]) -> None:
        names: list[str] = []
        positions: list[int] = []
        self._converted: list[tuple[str, Callable[[str], Any]]] = []
        self._escaped: list[str] = []
        for name in wanted:
            found = header.converter(name)
            if found is None:
                continue
            names.append(name)
            positions.append(found[0])
            if found[1] is _unescape:
                self._escaped.append(name)
            elif found[1] is not str:
                self._converted.append((name, found[1]))
        self._names = tuple(names)
        self._pick: Callable[[list[str]], Any] = (
            operator.itemgetter(*positions) if len(positions) > 1  # a tuple of the raw columns
            else lambda parts: tuple(parts[position] for position in positions))  # itemgetter of one is no tuple
        self.width = len(header.fields)
        self.unset = header.unset_field

    def decode(self, text: str, parts: list[str]) -> dict[str, Any]:
        """The record of one line (``text``, split into ``parts`` as many as the header's fields);
        ValueError names a field that is bad."""
        raws = self._pick(parts)
        record = dict(zip(self._names, raws, strict=True))
        if self.unset in raws:
            record = {name: raw for name, raw in record.items() if raw != self.unset}
        name = ""
        try:
            for name, convert in self._converted:
                if name in record:
                    record[name] = convert(record[name])
        except ValueError as error:
            raise ValueError(f"field {name}: {error}") from None
        if "\\" in text:
            for name in self._escaped:
                if name in record:
                    record[name] = _unescape(record[name])
        return record


def open_log(path: Path) -> io.BufferedIOBase:
    """A log file opened for reading bytes, uncompressed on the fly when it is gzip (by its magic number)."""
    with path.open("rb") as probe:
        magic = probe.read(2)
    return gzip.GzipFile(path, "rb") if magic == b"\x1f\x8b" else path.open("rb")


def _directive_value(raw: bytes) -> str:
    return _ESCAPE.sub(lambda m: bytes((int(m.group(1), 16),)), raw).decode("utf-8", "replace")


class ZeekLog:
    """One Zeek log file, TSV or JSON, plain or gzip. Iterate :meth:`records` for the wanted fields."""

    def __init__(self, path: Path, malformed: MalformedLog) -> None:
        self.path = path
        self.malformed = malformed
        self.kind: str | None = log_kind(path.name)
        self.records_read = 0

    def _open(self) -> io.BufferedIOBase:
        try:
            return open_log(self.path)
        except OSError as error:
            raise LogReadError(f"{self.path}: cannot read: {error.strerror or error}") from None

    def _lines(self) -> Iterator[tuple[int, bytes]]:
        """Numbered lines without their newline; overlong lines are reported, never held whole."""
        number = 0
        pending = b""
        skipping = False
        with self._open() as stream:
            while True:
                try:
                    chunk = stream.read1(_CHUNK)
                except (OSError, EOFError, zlib.error) as error:
                    self.malformed.report(str(self.path), number + 1, f"truncated or corrupt file: {error}")
                    chunk = b""
                if not chunk:
                    break
                lines = (pending + chunk).split(b"\n")
                pending = lines.pop()
                for line in lines:
                    number += 1
                    if skipping:
                        skipping = False
                        self.malformed.report(str(self.path), number, f"line longer than {MAX_LINE} bytes")
                        continue
                    if len(line) > MAX_LINE:
                        self.malformed.report(str(self.path), number, f"line longer than {MAX_LINE} bytes")
                        continue
                    yield number, line
                if len(pending) > MAX_LINE:
                    pending = b""
                    skipping = True
        if pending:
            number += 1
            if skipping:
                self.malformed.report(str(self.path), number, f"line longer than {MAX_LINE} bytes")
            elif pending.startswith(b"#"):
                yield number, pending
            else:
                self.malformed.report(str(self.path), number, "truncated last line (no newline)")

    def records(self, wanted: Callable[[str | None], tuple[str, ...]]) -> Iterator[tuple[str | None, Record]]:
        """Yield ``(kind, record)`` for every readable line; ``wanted(kind)`` names the fields to convert.

        Raises :class:`LogReadError` when the file cannot be opened or holds nothing that looks like a
        Zeek log.
        """
        return self.records_from(self._lines(), wanted)

    def records_from(self, lines: Iterable[tuple[int, bytes]],
                     wanted: Callable[[str | None], tuple[str, ...]]) -> Iterator[tuple[str | None, Record]]:
        """Like :meth:`records`, over numbered lines (without newlines) read elsewhere, such as the part
        of a growing file a follower has just read, preceded by the file's header lines."""
        decoder: _RowDecoder | None = None
        directives: dict[str, bytes] = {}
        looked_like_log = False
        source = str(self.path)
        for number, line in lines:
            if not line:
                continue
            if line[:1] == b"#":
                directive, _, value = line[1:].partition(b"\t" if b"\t" in line else b" ")
                key = directive.decode("ascii", "replace")
                directives[key] = value
                if key == "types" and "fields" in directives:
                    header = self._header(directives)
                    self.kind = header.path or self.kind
                    decoder = _RowDecoder(header, wanted(self.kind))
                    looked_like_log = True
                continue
            if line[:1] == b"{":
                record = self._json(number, line)
                if record is not None:
                    looked_like_log = True
                    if self.kind is None:
                        self.kind = _sniff_kind(record)
                    self.records_read += 1
                    yield self.kind, record
                continue
            if decoder is None:
                self.malformed.report(source, number, "data before any #fields/#types header")
                continue
            try:
                text = line.decode()
            except UnicodeDecodeError:
                self.malformed.report(source, number, "not UTF-8 text")
                continue
            parts = text.split("\t")
            if len(parts) != decoder.width:
                self.malformed.report(source, number, f"{len(parts)} columns where the header has {decoder.width}")
                continue
            try:
                converted = decoder.decode(text, parts)
            except ValueError as error:
                self.malformed.report(source, number, str(error))
                continue
            self.records_read += 1
            yield self.kind, converted
        if not looked_like_log and self.records_read == 0:
            raise LogReadError(f"{self.path}: not a Zeek log (no #fields header and no JSON records)")

    def _header(self, directives: dict[str, bytes]) -> Header:
        fields = tuple(f.decode("utf-8", "replace") for f in directives["fields"].split(b"\t"))
        types = tuple(t.decode("utf-8", "replace") for t in directives["types"].split(b"\t"))
        return Header(
            path=_directive_value(directives.get("path", b"")),
            fields=fields,
            types=types,
            set_separator=_directive_value(directives.get("set_separator", b",")),
            empty_field=_directive_value(directives.get("empty_field", b"(empty)")),
            unset_field=_directive_value(directives.get("unset_field", b"-")),
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
