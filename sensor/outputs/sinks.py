"""Alert sinks: stdout, JSONL file, syslog (RFC 5424 over UDP, TCP, TLS) and HTTP (Splunk HEC,
Elasticsearch/OpenSearch ``_bulk``, a generic webhook).

Every sink is a :class:`SpooledSink`: an alert handed to it is rendered in the sink's format and appended
to the sink's own disk spool (``state_dir/spool/NAME``) before :meth:`SpooledSink.accept` returns; a worker
task of that sink alone then delivers the spool in batches, retrying with exponential backoff. A sink that
is down only grows its own spool, so one sink's failure never delays another. A spool is capped in bytes;
when full, the oldest alerts are dropped (or the newest, by ``spool_full: drop_newest``), with an error log
line and the ``t1046_spool_dropped_total`` metric.

Hand-offs carry the sequence number of the daemon's checkpoint that committed them, and a spool remembers
the last one it took, so re-handing a committed batch after a crash does not repeat it. The file sink
records the size of its file with its spool cursor and trims a write that a crash left uncounted, so the
file gets every alert exactly once.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import logging
import os
import random
import socket
import ssl
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import orjson

from sensor.alerts.alert import Alert
from sensor.alerts.render import RENDERERS, render_document
from sensor.config import (
    HTTP_KINDS,
    KNOWN_SETTINGS,
    SPOOL_POLICIES,
    SYSLOG_FACILITIES,
    SYSLOG_PROTOCOLS,
    OutputConfig,
    SensorConfig,
)
from sensor.errors import SensorError
from sensor.metrics import Metrics

log = logging.getLogger(__name__)

DEFAULT_SPOOL_BYTES = 64 << 20
DEFAULT_BATCH = 100
DRAIN_SECONDS = 10.0
"""How long shutdown waits for each sink to deliver what is spooled."""
HELD_RETRY_SECONDS = 1.0
"""How often a sink tries again to spool the alerts a full disk kept in memory."""
_SYSLOG_SEVERITY = {1: 5, 2: 4, 3: 3, 4: 2}
"""Alert severity (1 low … 4 critical) → syslog severity (notice, warning, error, critical)."""
SD_ID = "t1046@32473"
"""Structured-data id of our RFC 5424 element (32473 is the enterprise number reserved for examples)."""
class DeliveryError(SensorError):
    """A batch could not be delivered now; the sink keeps it and retries."""


class RejectedBatch(SensorError):
    """The receiver refused a batch for good (for example HTTP 400): retrying cannot help."""


class Sink(Protocol):
    """Takes alerts; never raises into the pipeline and never blocks on a receiver. Whoever built a sink
    closes it (for a spooled sink: :func:`drain_all` on the event loop)."""

    def deliver(self, alert: Alert, observer: str) -> None: ...


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


# -- spool -----------------------------------------------------------------------------------------------


def write_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``: temporary file, fsync, rename, fsync of the directory."""
    temporary = path.with_name(f".{path.name}.tmp")
    with temporary.open("wb") as stream:
        stream.write(data)
        stream.flush()
        os.fsync(stream.fileno())
    temporary.replace(path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


class Spool:
    """Alerts awaiting delivery: an append-only file, a delivered-up-to cursor and a size cap."""

    def __init__(self, directory: Path, max_bytes: int, policy: str, name: str, metrics: Metrics) -> None:
        directory.mkdir(parents=True, exist_ok=True)
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
        self._stream = self._data.open("ab")
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
        self._stream = self._data.open("ab")
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

    def _save_cursor(self) -> None:
        """Saved before the file is emptied, and again after, so no crash can skip or repeat a record."""
        cursor = {"offset": self.cursor, "last_seq": self.last_seq, "extra": self.extra}
        write_atomically(self._cursor_file, orjson.dumps(cursor))

    def _update_metrics(self) -> None:
        self._metrics.spool_bytes.labels(sink=self.name).set(self.pending_bytes)

    def close(self) -> None:
        self._stream.close()


# -- transports ------------------------------------------------------------------------------------------


class Transport(Protocol):
    """Delivers one batch of spooled records, raising :class:`DeliveryError` to be retried later."""

    async def send(self, records: list[SpoolRecord]) -> None: ...

    def reopen(self) -> None: ...

    async def close(self) -> None: ...


class StdoutTransport:
    """JSON lines to standard output (or another binary stream)."""

    def __init__(self, stream: BinaryIO | None = None) -> None:
        self._stream = stream if stream is not None else sys.stdout.buffer

    async def send(self, records: list[SpoolRecord]) -> None:
        try:
            self._stream.write(b"".join(record.document + b"\n" for record in records))
            self._stream.flush()
        except (OSError, ValueError) as error:
            raise DeliveryError(f"stdout: {error}") from None

    def reopen(self) -> None:
        """Standard output is never reopened."""

    async def close(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self._stream.flush()


class FileTransport:
    """JSON lines appended to a file: reopened on SIGHUP (for logrotate) and rotated by size.

    Its spool's cursor keeps the file's inode and size after each batch, so a write that a crash left
    uncounted is trimmed on start and written again once: the file gets every alert exactly once.
    """

    def __init__(self, path: Path, spool: Spool, max_bytes: int = 0, keep: int = 5) -> None:
        self.path = path
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
            self._stream = self.path.open("ab")
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


def rfc5424(record: SpoolRecord, facility: int, hostname: str, app_name: str) -> bytes:
    """One RFC 5424 message: ``<PRI>1 TIMESTAMP HOST APP - MSGID [SD] MSG``, the JSON document as MSG."""
    priority = facility * 8 + _SYSLOG_SEVERITY.get(record.severity, 5)
    timestamp = datetime.fromtimestamp(record.ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    header = f"<{priority}>1 {timestamp} {hostname} {app_name} - alert [{SD_ID} event_id=\"{record.event_id}\"] "
    return header.encode("ascii", "replace") + record.document


def _sd_name(value: str) -> str:
    """An RFC 5424 HOSTNAME/APP-NAME: printable ASCII without spaces, or ``-``."""
    cleaned = "".join(ch for ch in value if 33 <= ord(ch) <= 126)[:48]
    return cleaned or "-"


class SyslogTransport:
    """RFC 5424 messages over UDP (one per datagram), or TCP/TLS with octet-counting framing (RFC 6587,
    RFC 5425)."""

    def __init__(self, host: str, port: int, protocol: str, facility: int, hostname: str, app_name: str,
                 tls: ssl.SSLContext | None, server_name: str | None) -> None:
        self.host, self.port, self.protocol = host, port, protocol
        self._facility = facility
        self._hostname = _sd_name(hostname)
        self._app_name = _sd_name(app_name)
        self._tls = tls
        self._server_name = server_name or host
        self._writer: asyncio.StreamWriter | None = None
        self._udp: socket.socket | None = None

    async def send(self, records: list[SpoolRecord]) -> None:
        messages = [rfc5424(record, self._facility, self._hostname, self._app_name) for record in records]
        try:
            if self.protocol == "udp":
                self._send_udp(messages)
                return
            writer = await self._connect()
            writer.write(b"".join(b"%d %s" % (len(message), message) for message in messages))
            await asyncio.wait_for(writer.drain(), 30)
        except (OSError, ssl.SSLError, TimeoutError) as error:
            await self.close()
            raise DeliveryError(f"syslog {self.protocol}://{self.host}:{self.port}: {error}") from None

    def _send_udp(self, messages: list[bytes]) -> None:
        if self._udp is None:
            info = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_DGRAM)[0]
            self._udp = socket.socket(info[0], socket.SOCK_DGRAM)
            self._udp.connect(info[4])
        for message in messages:
            self._udp.send(message)

    async def _connect(self) -> asyncio.StreamWriter:
        if self._writer is not None and not self._writer.is_closing():
            return self._writer
        _reader, writer = await asyncio.wait_for(asyncio.open_connection(
            self.host, self.port, ssl=self._tls, server_hostname=self._server_name if self._tls else None), 30)
        self._writer = writer
        return writer

    def reopen(self) -> None:
        """Connections are reopened on the next failure; nothing to do."""

    async def close(self) -> None:
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError, ssl.SSLError, TimeoutError):
                await asyncio.wait_for(writer.wait_closed(), 5)


class HttpTransport:
    """POSTs batches to Splunk HEC, Elasticsearch/OpenSearch ``_bulk`` or a webhook (a JSON array).

    ``_bulk`` uses ``create`` with ``_id`` = ``event.id``, so a batch sent twice indexes each alert once
    (409 conflicts count as delivered). HTTP 408, 429 and 5xx are retried; other 4xx drop the batch loudly.
    """

    def __init__(self, url: str, kind: str, auth: str | None, index: str | None, sourcetype: str,
                 headers: Mapping[str, str], tls: ssl.SSLContext | None, timeout: float, observer: str) -> None:
        self.url = url
        self.kind = kind
        self._auth = auth
        self._index = index
        self._sourcetype = sourcetype
        self._headers = dict(headers)
        self._tls = tls
        self._timeout = timeout
        self._observer = observer

    def body(self, records: list[SpoolRecord]) -> tuple[bytes, str]:
        """The request body and content type for a batch."""
        if self.kind == "hec":
            parts = []
            for record in records:
                meta: dict[str, Any] = {"time": round(record.ts, 6), "host": self._observer,
                                        "source": "t1046-sensor", "sourcetype": self._sourcetype}
                if self._index:
                    meta["index"] = self._index
                parts.append(orjson.dumps(meta)[:-1] + b',"event":' + record.document + b"}")
            return b"\n".join(parts), "application/json"
        if self.kind == "bulk":
            lines = []
            for record in records:
                action: dict[str, Any] = {"_id": record.event_id}
                if self._index:
                    action["_index"] = self._index
                lines.append(orjson.dumps({"create": action}) + b"\n" + record.document + b"\n")
            return b"".join(lines), "application/x-ndjson"
        return b"[" + b",".join(record.document for record in records) + b"]", "application/json"

    async def send(self, records: list[SpoolRecord]) -> None:
        body, content_type = self.body(records)
        status, answer = await asyncio.to_thread(self._post, body, content_type)
        if status in (408, 429) or status >= 500:
            raise DeliveryError(f"{self.kind} {self._safe_url()}: HTTP {status}")
        if status >= 400:
            raise RejectedBatch(f"{self.kind} {self._safe_url()}: HTTP {status}: {answer[:200]!r}")
        if self.kind == "bulk":
            self._check_bulk(answer)

    def _check_bulk(self, answer: bytes) -> None:
        try:
            result = orjson.loads(answer)
        except orjson.JSONDecodeError:
            raise DeliveryError(f"bulk {self._safe_url()}: answer is not JSON") from None
        if not isinstance(result, dict) or not result.get("errors"):
            return
        for item in result.get("items", []):
            outcome: dict[str, Any] = next(iter(item.values()), {}) if isinstance(item, dict) else {}
            status = outcome.get("status", 500) if isinstance(outcome, dict) else 500
            if not isinstance(status, int) or (status >= 300 and status != 409):
                raise DeliveryError(f"bulk {self._safe_url()}: item failed with status {status}")

    def _post(self, body: bytes, content_type: str) -> tuple[int, bytes]:
        headers = {"Content-Type": content_type, "User-Agent": "t1046-sensor", **self._headers}
        if self._auth:
            headers["Authorization"] = self._auth
        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=self._timeout, context=self._tls) as response:  # noqa: S310
                return int(response.status), bytes(response.read())
        except urllib.error.HTTPError as error:
            return error.code, error.read()
        except (OSError, ValueError) as error:
            raise DeliveryError(f"{self.kind} {self._safe_url()}: {error}") from None

    def _safe_url(self) -> str:
        """The URL without any user:password part."""
        parts = urllib.parse.urlsplit(self.url)
        return urllib.parse.urlunsplit(parts._replace(netloc=parts.hostname or "")) if parts.password else self.url

    def reopen(self) -> None:
        """Every request opens its own connection."""

    async def close(self) -> None:
        """Nothing is held open."""


# -- the sink --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with jitter between delivery attempts."""

    initial: float = 0.5
    maximum: float = 60.0

    def delay(self, failures: int) -> float:
        base: float = min(self.maximum, self.initial * 2.0 ** min(failures - 1, 30))
        return base * random.uniform(0.8, 1.2)  # noqa: S311 - jitter, not cryptography


class SpooledSink:
    """A transport behind its own disk spool and worker task."""

    def __init__(self, name: str, fmt: str, spool: Spool, transport: Transport, metrics: Metrics,
                 batch_size: int = DEFAULT_BATCH, backoff: Backoff | None = None) -> None:
        self.name = name
        self.format = fmt
        self.spool = spool
        self.transport = transport
        self._metrics = metrics
        self._batch_size = batch_size
        self._backoff = backoff or Backoff()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.failures = 0
        self.delivered = 0
        self._unspooled: list[list[SpoolRecord]] = []
        """Rendered batches the spool could not take (a full disk), oldest first: retried before anything newer."""
        self._holding = False
        self.held_bytes = 0
        """Size of the held batches as spool records."""

    def start(self) -> None:
        """Start the worker on the running event loop."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"sink-{self.name}")

    def render(self, seq: int, alert: Alert, observer: str) -> SpoolRecord:
        return SpoolRecord(seq, alert.event_id, alert.ts, alert.severity, render_document(alert, observer, self.format))

    def accept(self, seq: int, alerts: Sequence[Alert], observer: str) -> None:
        """Spool the alerts committed as checkpoint ``seq``; a batch already taken is skipped."""
        if alerts and seq > self.last_taken:
            self.enqueue([self.render(seq, alert, observer) for alert in alerts])

    def deliver(self, alert: Alert, observer: str) -> None:
        """The :class:`Sink` protocol for callers without checkpoints: spool one alert and go on."""
        self.accept(self.last_taken + 1, [alert], observer)
        with contextlib.suppress(RuntimeError):
            self.start()

    @property
    def last_taken(self) -> int:
        """The sequence number of the newest record taken: spooled, or held in memory for a full disk."""
        return self._unspooled[-1][-1].seq if self._unspooled else self.spool.last_seq

    def enqueue(self, records: list[SpoolRecord]) -> None:
        """Spool ``records`` after everything taken before. Records the spool cannot take (a full disk) are held
        in memory, within the spool's size cap, and spooled first as soon as there is room again."""
        self._unspooled.append(records)
        self.held_bytes += sum(len(record.encode()) for record in records)
        while self.held_bytes > self.spool.max_bytes and len(self._unspooled) > 1:
            dropped = self._unspooled.pop(0)
            self.held_bytes -= sum(len(record.encode()) for record in dropped)
            self.spool.dropped += len(dropped)
            self._metrics.spool_dropped.labels(sink=self.name).inc(len(dropped))
            log.error("sink %s: %d records held in memory for a full disk dropped: more than %d bytes wait",
                      self.name, len(dropped), self.spool.max_bytes)
        self._spool_held()
        if self._unspooled:
            self._gauge_queue()
            self._wake.set()  # the worker retries them every HELD_RETRY_SECONDS

    @property
    def held_alerts(self) -> int:
        """Records held in memory because the spool could not take them (a full disk)."""
        return sum(map(len, self._unspooled))

    def _spool_held(self) -> None:
        """Move the batches held in memory into the spool, oldest first, as far as the disk lets."""
        while self._unspooled:
            batch = self._unspooled[0]
            try:
                self.spool.append(batch)
            except OSError as error:
                self._metrics.sink_failures.labels(sink=self.name).inc()
                if not self._holding:
                    self._holding = True
                    log.error("sink %s: cannot spool %d records (%s): held in memory and retried every %.0f s; "
                              "a crash before they are spooled loses them", self.name, len(batch), error,
                              HELD_RETRY_SECONDS)
                return
            self._unspooled.pop(0)
            self.held_bytes = 0 if not self._unspooled else self.held_bytes - sum(len(r.encode()) for r in batch)
            if not self._unspooled and self._holding:
                self._holding = False
                log.warning("sink %s: the records held in memory are spooled", self.name)
            self._queue_changed()

    def _queue_changed(self) -> None:
        self._gauge_queue()
        self._wake.set()

    def _gauge_queue(self) -> None:
        self._metrics.sink_queue.labels(sink=self.name).set(self.spool.pending_bytes + self.held_bytes)

    def reopen(self) -> None:
        self.transport.reopen()

    async def _run(self) -> None:
        while True:
            self._spool_held()
            records, end = self.spool.read(self._batch_size)
            if not records:
                if self._closing:
                    return
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), HELD_RETRY_SECONDS if self._unspooled else None)
                continue
            try:
                await self.transport.send(records)
            except DeliveryError as error:
                self.failures += 1
                self._metrics.sink_failures.labels(sink=self.name).inc()
                delay = self._backoff.delay(self.failures)
                if self.failures == 1 or self.failures % 10 == 0:
                    log.warning("sink %s: delivery failed (%d in a row, %d bytes spooled), retrying in %.1fs: %s",
                                self.name, self.failures, self.spool.pending_bytes, delay, error)
                if self._closing:
                    return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop_wait(), delay)
                continue
            except RejectedBatch as error:
                self._metrics.sink_failures.labels(sink=self.name).inc()
                self._metrics.spool_dropped.labels(sink=self.name).inc(len(records))
                log.error("sink %s: receiver rejected %d alerts for good, dropped: %s", self.name, len(records), error)
            else:
                if self.failures:
                    log.warning("sink %s: delivering again after %d failures", self.name, self.failures)
                self.failures = 0
                self.delivered += len(records)
                self._metrics.sink_delivered.labels(sink=self.name).inc(len(records))
            self.spool.advance(end)
            self._gauge_queue()

    async def _stop_wait(self) -> None:
        while not self._closing:
            self._wake.clear()
            await self._wake.wait()

    async def drain(self, timeout: float) -> bool:
        """Deliver what is spooled (one more attempt when failing), then stop; True when all got out."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
        await self.transport.close()
        self._spool_held()
        if self._unspooled:
            log.error("sink %s: %d records could not be spooled (full disk?) and are lost", self.name,
                      self.held_alerts)
        pending = self.spool.pending_bytes
        self.spool.close()
        if pending:
            log.warning("sink %s: %d bytes stay spooled for the next start", self.name, pending)
        return pending == 0 and not self._unspooled

    def close(self) -> None:
        """Synchronous close for callers without an event loop: the spool keeps what is undelivered."""
        if self._task is not None:
            self._task.cancel()
        self.spool.close()


async def drain_all(sinks: Sequence[SpooledSink], timeout: float) -> bool:
    """Drain every sink at once (each for up to ``timeout`` seconds); True when all delivered everything."""
    results = await asyncio.gather(*(sink.drain(timeout) for sink in sinks))
    for sink, delivered in zip(sinks, results, strict=True):
        if not delivered:
            log.warning("sink %s stopped before it delivered everything; the rest stays spooled", sink.name)
    return all(results)


# -- construction ----------------------------------------------------------------------------------------


class SinkConfigError(SensorError):
    """An output's settings are invalid; the message names the output and the key."""


def read_secret(settings: Mapping[str, Any], name: str, where: str) -> str | None:
    """A secret from ``NAME_env`` (an environment variable) or ``NAME_file`` (a file); never logged."""
    env, file = settings.get(f"{name}_env"), settings.get(f"{name}_file")
    if env is not None and file is not None:
        raise SinkConfigError(f"{where}: set {name}_env or {name}_file, not both")
    if env is not None:
        value = os.environ.get(str(env))
        if not value:
            raise SinkConfigError(f"{where}.{name}_env: environment variable {env} is not set")
        return value.strip()
    if file is not None:
        try:
            return Path(str(file)).expanduser().read_text(encoding="utf-8").strip()
        except OSError as error:
            raise SinkConfigError(f"{where}.{name}_file: cannot read {file}: {error.strerror}") from None
    return None


def _int(settings: Mapping[str, Any], key: str, where: str, default: int, low: int = 1) -> int:
    value = settings.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise SinkConfigError(f"{where}.{key}: {value!r} is not a whole number >= {low}")
    return value


def _text(settings: Mapping[str, Any], key: str, where: str, default: str = "", options: tuple[str, ...] = ()) -> str:
    value = settings.get(key, default)
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise SinkConfigError(f"{where}.{key}: {value!r} is not a string")
    text = str(value)
    if options and text not in options:
        raise SinkConfigError(f"{where}.{key}: {text!r} is not one of {', '.join(options)}")
    return text


def _tls_context(settings: Mapping[str, Any], where: str) -> ssl.SSLContext:
    try:
        context = ssl.create_default_context(cafile=settings.get("ca_file"))
        if settings.get("cert_file"):
            context.load_cert_chain(str(settings["cert_file"]), settings.get("key_file"))
    except (OSError, ssl.SSLError) as error:
        raise SinkConfigError(f"{where}: TLS files: {error}") from None
    if settings.get("insecure") is True:
        log.warning("%s: insecure: true, the receiver's certificate is NOT verified", where)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def sink_name(output: OutputConfig) -> str:
    """A stable name for an output: its ``name`` setting, or its type and a digest of where it goes."""
    if output.settings.get("name"):
        return str(output.settings["name"])
    where = "|".join(str(output.settings.get(key, "")) for key in ("path", "host", "port", "url", "kind"))
    return f"{output.type}-{hashlib.sha256(where.encode()).hexdigest()[:8]}"


def build_sink(config: SensorConfig, output: OutputConfig, index: int, metrics: Metrics,
               stdout: BinaryIO | None = None) -> SpooledSink:
    """One sink from its output settings; raise :class:`SinkConfigError` naming the bad key."""
    where = f"outputs[{index}]"
    make_transport = _transport_maker(config, output, where, stdout)
    max_bytes, policy, retry_max, batch_size = _spool_settings(output.settings, where)
    name = sink_name(output)
    spool = Spool(config.state_dir / "spool" / name, max_bytes, policy, name, metrics)
    return SpooledSink(name, output.format, spool, make_transport(spool), metrics, batch_size,
                       Backoff(maximum=float(retry_max)))


def _spool_settings(settings: Mapping[str, Any], where: str) -> tuple[int, str, int, int]:
    """(spool_max_bytes, spool_full, retry_max_seconds, batch_size) of an output."""
    return (_int(settings, "spool_max_bytes", where, DEFAULT_SPOOL_BYTES, 4096),
            _text(settings, "spool_full", where, "drop_oldest", SPOOL_POLICIES),
            _int(settings, "retry_max_seconds", where, 60), _int(settings, "batch_size", where, DEFAULT_BATCH))


def check_outputs(config: SensorConfig, outputs: tuple[OutputConfig, ...]) -> None:
    """Everything :func:`build_sinks` checks, without making spools or touching destinations; raise
    :class:`SinkConfigError` for the first invalid output."""
    _check_names(outputs)
    for index, output in enumerate(outputs):
        check_output(config, output, index)


def _check_names(outputs: tuple[OutputConfig, ...]) -> None:
    names = [sink_name(output) for output in outputs]
    for name in names:
        if names.count(name) > 1:
            raise SinkConfigError(f"outputs: two outputs are named {name!r}; give them distinct names")


def check_output(config: SensorConfig, output: OutputConfig, index: int) -> None:
    """Everything :func:`build_sink` checks -- settings, secrets, TLS files, the file sink's directory --
    without making a spool or touching the destination; raise :class:`SinkConfigError` naming the key."""
    _transport_maker(config, output, f"outputs[{index}]", None)


def _transport_maker(config: SensorConfig, output: OutputConfig, where: str,
                     stdout: BinaryIO | None) -> Callable[[Spool], Transport]:
    """Check an output's settings (reading its secrets and TLS files); return what makes its transport."""
    settings = output.settings
    for extra in sorted(set(settings) - set(KNOWN_SETTINGS.get(output.type, ()))):
        raise SinkConfigError(f"{where}.{extra}: unknown key for a {output.type} output "
                              f"(known: {', '.join(KNOWN_SETTINGS.get(output.type, ()))})")
    if output.format not in RENDERERS:
        raise SinkConfigError(f"{where}.format: {output.format!r} is not one of {', '.join(RENDERERS)}")
    _spool_settings(settings, where)
    if output.type == "stdout":
        return lambda spool: StdoutTransport(stdout)
    if output.type == "file":
        path = Path(_text(settings, "path", where)).expanduser()
        path = path if path.is_absolute() else config.state_dir / path
        writable_directory(path.parent, f"{where}.path")
        max_bytes, keep = _int(settings, "max_bytes", where, 0, 0), _int(settings, "keep", where, 5)
        return lambda spool: FileTransport(path, spool, max_bytes, keep)
    if output.type == "syslog":
        protocol = _text(settings, "protocol", where, "tcp", SYSLOG_PROTOCOLS)
        facility = _text(settings, "facility", where, "local0", tuple(SYSLOG_FACILITIES))
        syslog = SyslogTransport(
            host=_text(settings, "host", where), port=_int(settings, "port", where, 6514 if protocol == "tls" else 514),
            protocol=protocol, facility=SYSLOG_FACILITIES[facility],
            hostname=_text(settings, "hostname", where, socket.gethostname()),
            app_name=_text(settings, "app_name", where, "t1046-sensor"),
            tls=_tls_context(settings, where) if protocol == "tls" else None,
            server_name=settings.get("server_name"))
        return lambda spool: syslog
    if output.type == "http":
        http = _http_transport(config, settings, where)
        return lambda spool: http
    raise SinkConfigError(f"{where}.type: {output.type!r} is not a sink type")


def writable_directory(directory: Path, where: str) -> None:
    """Raise :class:`SinkConfigError` (naming ``where``) unless ``directory`` is, or can be made, a directory
    this user writes."""
    existing = directory
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise SinkConfigError(f"{where}: {existing} is not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise SinkConfigError(f"{where}: {existing} is not writable by this user")


def _http_transport(config: SensorConfig, settings: Mapping[str, Any], where: str) -> HttpTransport:
    url = _text(settings, "url", where)
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SinkConfigError(f"{where}.url: {url!r} is not an http(s) URL")
    kind = _text(settings, "kind", where, "webhook", HTTP_KINDS)
    if kind == "hec" and parts.path in ("", "/"):
        url = urllib.parse.urlunsplit(parts._replace(path="/services/collector/event"))
    if kind == "bulk" and not parts.path.rstrip("/").endswith("_bulk"):
        url = urllib.parse.urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/_bulk"))
    token = read_secret(settings, "token", where)
    password = read_secret(settings, "password", where)
    auth: str | None = None
    if settings.get("username") is not None:
        credentials = f"{_text(settings, 'username', where)}:{password or ''}".encode()
        auth = "Basic " + base64.b64encode(credentials).decode()
    elif token is not None:
        auth = {"hec": "Splunk ", "bulk": "ApiKey ", "webhook": "Bearer "}[kind] + token
    headers = settings.get("headers", {})
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise SinkConfigError(f"{where}.headers: must be a mapping of header name to text")
    if any(key.lower() == "authorization" for key in headers):
        raise SinkConfigError(f"{where}.headers: put credentials in token_env/token_file, not in headers")
    timeout = settings.get("timeout", 10)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise SinkConfigError(f"{where}.timeout: {timeout!r} is not a positive number of seconds")
    tls = _tls_context(settings, where) if parts.scheme == "https" else None
    return HttpTransport(url, kind, auth, settings.get("index"), _text(settings, "sourcetype", where, "t1046:alert"),
                         headers, tls, float(timeout), config.name)


def build_sinks(config: SensorConfig, outputs: tuple[OutputConfig, ...] | None = None,
                metrics: Metrics | None = None, stdout: BinaryIO | None = None) -> list[SpooledSink]:
    """Sinks for the configured outputs; relative file paths are under ``state_dir``.

    Raises :class:`SinkConfigError` for the first invalid output (nothing half-built is left running).
    """
    metrics = metrics if metrics is not None else Metrics()
    chosen = outputs if outputs is not None else config.outputs
    _check_names(chosen)
    sinks: list[SpooledSink] = []
    try:
        for index, output in enumerate(chosen):
            sinks.append(build_sink(config, output, index, metrics, stdout))
    except SinkConfigError:
        for sink in sinks:
            sink.close()
        raise
    return sinks
