"""Reading a flow log: its format told from its first lines (:func:`sniff`), its lines turned into records
(:class:`FlowParser`), and the records judged into connection attempts (:class:`FlowReader`), handed on as
:class:`~sensor.observations.ConnRows` blocks like conn.log's.

Bad input is what Zeek logs get: a line that cannot be read is counted and skipped (:class:`MalformedLog` warns of
the first few of each file); nothing a flow log holds raises past this module but a file that cannot be opened.
JSON documents (Azure's ``{"records": [...]}``, a ``gcloud`` JSON array, a CloudWatch Logs export's events) are
read record by record where they hold one a line, else whole (up to :data:`MAX_DOCUMENT` bytes).
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

from sensor.config import FlowConfig
from sensor.errors import LogReadError
from sensor.flows import aws, azure, gcp, netfilter, ulogd
from sensor.flows.join import FlowJoin, PacketJoin
from sensor.flows.records import FlowRecord
from sensor.observations import ConnAttempt, ConnRows
from sensor.zeek.logs import open_log
from sensor.zeek.malformed import MalformedLog

VIA = {"netfilter": "firewall", "ulogd": "firewall", "aws": "aws_vpc_flow", "gcp": "gcp_vpc_flow",
       "azure": "azure_flow"}
"""The evidence source (``ConnAttempt.via``) of each format."""
MAX_DOCUMENT = 64 << 20
"""Bytes of a JSON document read whole, at the most (a larger one is reported and skipped)."""
BLOCK = 4096
"""Attempts handed on in one block."""
_WRAPPERS = (b'{"records":[', b'{"records": [', b"[")


def _json_object(line: bytes) -> dict[str, Any] | None:
    try:
        found = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    return found if isinstance(found, dict) else None


def sniff(head: bytes) -> str | None:
    """The flow-log format of a file from its first bytes, or None when it is none of them."""
    lines = [line.strip() for line in head.splitlines() if line.strip()][:5]
    if not lines:
        return None
    first = lines[0]
    if first.startswith(b"{") or first.startswith(b"["):
        text = b" ".join(lines)
        if b'"records"' in text and (b"flowTuples" in text or b'"flows"' in text or b"flowRecords" in text):
            return "azure"
        if b'"jsonPayload"' in text and b'"connection"' in text:
            return "gcp"
        if b'"oob.prefix"' in text or b'"oob.time.sec"' in text:
            return "ulogd"
        if (b'"logEvents"' in text or b'"events"' in text) and b'"message"' in text:
            return "aws"
        if b'"MESSAGE"' in text and netfilter.looks_like(text):
            return "netfilter"
        return None
    if any(netfilter.looks_like(line) and b" kernel: " in line for line in lines):
        return "netfilter"
    return "aws" if aws.looks_like(first) else None


def sniff_file(path: Path) -> str | None:
    """:func:`sniff` of a file's first 64 KiB (uncompressed), None when it cannot be read."""
    try:
        with open_log(path) as stream:
            return sniff(stream.read(64 << 10))
    except (OSError, EOFError, ValueError, zlib.error):
        return None


class FlowParser:
    """The records of one flow log's lines, in its format; a bad line is reported to ``malformed`` as ``source``'s."""

    def __init__(self, fmt: str, malformed: MalformedLog, source: str, aws_fields: tuple[str, ...] | None = None,
                 year: int | None = None) -> None:
        self.fmt = fmt
        self.malformed = malformed
        self.source = source
        self.names = aws_fields or aws.DEFAULT_FIELDS
        """The AWS format in force: the configured one, or the last header line read."""
        self.year = year if year is not None else time.gmtime().tm_year
        self._document: list[bytes] = []
        self._document_bytes = 0
        self._document_line = 0

    def lines(self, data: bytes, first_line: int = 0) -> Iterator[FlowRecord]:
        """The records of the complete lines in ``data``, numbered from ``first_line + 1``."""
        number = first_line
        for raw in data.split(b"\n"):
            number += 1
            line = raw.strip()
            if not line:
                continue
            try:
                yield from self._line(line, number)
            except (ValueError, KeyError, TypeError, IndexError, AttributeError) as error:
                self.malformed.report(self.source, number, f"unusable {self.fmt} record: {error}")

    def _line(self, line: bytes, number: int) -> Iterable[FlowRecord]:
        if self._document or (self.fmt in ("azure", "gcp", "aws") and line[:1] in b"[{" and
                              _json_object(line) is None and _unwrapped(line) is None):
            return self._collect(line, number)
        if self.fmt == "netfilter":
            found = netfilter.parse_line(line, self.year)
            return () if found is None else (found,)
        if self.fmt == "aws" and line[:1] != b"{":
            text = aws.message(line).decode("utf-8", "replace")
            names = aws.fields_of(text)
            if names is not None:
                self.names = names
                return ()
            found = aws.parse(text.split(), self.names)
            return () if found is None else (found,)
        record = _json_object(line) or _unwrapped(line)
        if record is None:
            raise ValueError("not a JSON object")
        return self._records(record)

    def _records(self, record: dict[str, Any]) -> list[FlowRecord]:
        """The records of one JSON object (which may hold many: Azure's, a CloudWatch export's events)."""
        if "records" in record and isinstance(record["records"], list):
            return [found for item in record["records"] if isinstance(item, dict) for found in self._records(item)]
        made: list[FlowRecord | None]
        if self.fmt == "ulogd":
            made = [ulogd.parse(record)]
        elif self.fmt == "gcp":
            made = [gcp.parse(record)]
        elif self.fmt == "azure":
            made = [azure.parse(*found) for found in azure.tuples(record)]
        elif self.fmt == "netfilter":
            made = [netfilter.parse_line(orjson.dumps(record), self.year)]
        else:
            events = record.get("logEvents", record.get("events"))
            if not isinstance(events, list):
                raise ValueError("a JSON object without logEvents or events")
            made = [found for event in events if isinstance(event, dict) and isinstance(event.get("message"), str)
                    for found in self._line(event["message"].encode(), 0)]
        return [found for found in made if found is not None]

    def _collect(self, line: bytes, number: int) -> list[FlowRecord]:
        """A line of a JSON document spread over many lines: kept until the document is whole."""
        if not self._document:
            self._document_line = number
        self._document.append(line)
        self._document_bytes += len(line)
        if self._document_bytes > MAX_DOCUMENT:
            self._document, self._document_bytes = [], 0
            raise ValueError(f"JSON document from line {self._document_line} longer than {MAX_DOCUMENT} bytes")
        if line[:1] not in b"]}":
            return []
        found = _json_value(b"\n".join(self._document))
        if found is None:
            return []
        self._document, self._document_bytes = [], 0
        items = found if isinstance(found, list) else [found]
        return [record for item in items if isinstance(item, dict) for record in self._records(item)]

    def finish(self) -> None:
        """The input ended: a JSON document still open is reported."""
        if self._document:
            self.malformed.report(self.source, self._document_line, "JSON document not closed at the end of the file")
            self._document, self._document_bytes = [], 0


def _json_value(data: bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return None


def _unwrapped(line: bytes) -> dict[str, Any] | None:
    """One record of a document written a record a line (``{"records":[{…}``, ``,{…}``, ``{…}]}``)."""
    for wrapper in _WRAPPERS:
        line = line.removeprefix(wrapper)
    line = line.removeprefix(b",").rstrip(b",")
    for tail in (b"]}", b"]"):
        if line.endswith(tail) and _json_object(line) is None:
            line = line[:-len(tail)]
    return _json_object(line)


Join = PacketJoin | FlowJoin


def make_join(config: FlowConfig, made: Callable[[ConnAttempt], None]) -> Join:
    """The join of a flow source's records: packets for a firewall's log, flows for a cloud's."""
    via = VIA[config.format]
    if config.format in ("netfilter", "ulogd"):
        return PacketJoin(via, made, config.answer_wait, config.max_pending)
    return FlowJoin(via, made, config.pair_within, config.max_pending)


class FlowReader:
    """One stream of a flow log's files (read in turn, one join across them), as blocks of attempts."""

    def __init__(self, config: FlowConfig, files: list[Path], malformed: MalformedLog) -> None:
        self.config = config
        self.files = files
        self.malformed = malformed
        self.records_read = 0
        self._made: list[ConnAttempt] = []
        self.join = make_join(config, self._made.append)

    def blocks(self) -> Iterator[ConnRows]:
        """The attempts of every file, a block at a time; raises :class:`LogReadError` for a file that cannot be
        opened."""
        for path in self.files:
            parser = FlowParser(self.config.format, self.malformed, str(path), self.config.aws_fields,
                                _year(path))
            try:
                with open_log(path) as stream:
                    rest, number = b"", 0
                    while chunk := stream.read(1 << 20):
                        data = rest + chunk
                        cut = data.rfind(b"\n") + 1
                        rest = data[cut:]
                        yield from self._take(parser.lines(data[:cut], number))
                        number += data.count(b"\n", 0, cut)
                    yield from self._take(parser.lines(rest, number))
            except OSError as error:
                raise LogReadError(f"{path}: cannot read: {error.strerror or error}") from None
            except (EOFError, ValueError, zlib.error) as error:  # a damaged gzip stream: what was read stands
                self.malformed.report(str(path), 0, f"cannot read on: {error}")
            parser.finish()
        self.join.flush()
        yield from self._block(force=True)

    def _take(self, records: Iterable[FlowRecord]) -> Iterator[ConnRows]:
        for record in records:
            self.records_read += 1
            self.join.add(record)
        yield from self._block(force=False)

    def _block(self, *, force: bool) -> Iterator[ConnRows]:
        if self._made and (force or len(self._made) >= BLOCK):
            yield ConnRows.of(self._made)
            self._made.clear()


def _year(path: Path) -> int:
    """The year an RFC 3164 stamp in ``path`` belongs to: that of the file's last change."""
    try:
        return time.localtime(path.stat().st_mtime).tm_year
    except OSError:
        return time.localtime().tm_year
