"""The syslog sink's transport: RFC 5424 messages over UDP (one per datagram), or over TCP and TLS with
octet-counting framing (RFC 6587, RFC 5425), at least once across receiver restarts.

A UDP datagram carries one message of at most ``max_message`` bytes (65 507 by default, the most one IPv4
datagram holds). A longer message is truncated, as RFC 5426 section 3.2 lets a sender do: its MSG is cut
at a character boundary and its structured data says so, ``truncated="LENGTH"`` giving the whole MSG's
length; the whole alert goes to the sink's dead-letter file. A datagram the kernel refuses anyway is refused
for good (dead letters), and a batch that breaks off part way is retried from the message that failed, so
nothing that was sent is sent again and one message never stalls the ones after it.

Plain syslog over TCP has no acknowledgement, and a write into a connection the receiver has closed
"succeeds". So a TCP/TLS connection here is checked before each write (the kernel's view of the socket: a
receiver that closed or reset it is noticed then, not after the next batch vanished), and a batch counts as
delivered only once the receiver's TCP has acknowledged every byte of it and the connection has then stayed
open for :data:`SETTLE_SECONDS` (a receiver that stops with our bytes unread resets the connection, which
shows up within that time). A batch that broke off is sent again, whole, on a new connection; its records
count in ``t1046_sink_resent_total`` (duplicates are possible, losses are not). RELP
(:mod:`sensor.outputs.relp`) has real acknowledgements for operators who need them.

It owns the wire format (:func:`rfc5424`) and the connection; the spool and retries belong to the sink.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import errno
import fcntl
import socket
import ssl
import struct
import termios

from sensor.alerts.render import rfc3339
from sensor.outputs.spool import SpoolRecord
from sensor.outputs.transport import DeliveryError, Outcome, Rejection
from sensor.text import sd_param

SYSLOG_SEVERITY = {1: 5, 2: 4, 3: 3, 4: 2}
"""Alert severity (1 low … 4 critical) → syslog severity (notice, warning, error, critical)."""
SD_ID = "t1046@32473"
"""Structured-data id of our RFC 5424 element (32473 is the enterprise number reserved for examples)."""
SETTLE_SECONDS = 0.25
"""How long a connection must stay open after the receiver's TCP acknowledged a batch for it to count."""
CONNECT_SECONDS = 30.0
"""Longest wait to connect, or for the receiver to acknowledge a batch."""
_TCP_ESTABLISHED = 1
"""``tcpi_state`` of an open connection (Linux ``TCP_ESTABLISHED``); a closed or reset peer leaves it."""


UDP_MESSAGE = 65507
"""Bytes of the largest message one UDP datagram over IPv4 carries (65 535 less the IP and UDP headers)."""
SMALLEST_MESSAGE = 480
"""The size every IPv4 syslog receiver must take (RFC 5426 section 3.2): the least ``max_message``."""


def rfc5424(record: SpoolRecord, facility: int, hostname: str, app_name: str, limit: int = 0) -> bytes:
    """One RFC 5424 message: ``<PRI>1 TIMESTAMP HOST APP - MSGID [SD] MSG``, the JSON document as MSG; with a
    ``limit``, a longer message is truncated to it (its structured data then says ``truncated="LENGTH"``)."""
    priority = facility * 8 + SYSLOG_SEVERITY.get(record.severity, 5)
    stamp = rfc3339(record.ts)
    head = f"<{priority}>1 {stamp} {hostname} {app_name} - alert [{SD_ID} event_id=\"{sd_param(record.event_id)}\""
    message = (head + "] ").encode("ascii", "replace") + record.document
    if not limit or len(message) <= limit:
        return message
    header = f'{head} truncated="{len(record.document)}"] '.encode("ascii", "replace")
    cut = record.document[:max(0, limit - len(header))]
    return header + cut.decode("utf-8", "ignore").encode()  # no character cut in half


def sd_name(value: str) -> str:
    """An RFC 5424 HOSTNAME/APP-NAME: printable ASCII without spaces, or ``-``."""
    cleaned = "".join(ch for ch in value if 33 <= ord(ch) <= 126)[:48]
    return cleaned or "-"


class _Connection(asyncio.Protocol):
    """A write-only stream to a syslog receiver that notices the receiver closing it.

    A receiver sends nothing on a syslog connection: end of stream or a reset means it has gone.
    """

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.lost: str | None = None
        self._gone = asyncio.get_running_loop().create_future()
        self._writable = asyncio.Event()
        self._writable.set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not isinstance(transport, asyncio.Transport):
            raise TypeError(f"a syslog connection over a {type(transport).__name__}")
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        """Anything a syslog receiver says is ignored."""

    def eof_received(self) -> bool:
        self._lose("the receiver closed the connection")
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._lose(f"connection lost: {exc}" if exc else "connection closed")

    def _lose(self, why: str) -> None:
        if self.lost is None:
            self.lost = why
        if not self._gone.done():
            self._gone.set_result(None)
        self._writable.set()

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    def kernel_state(self) -> tuple[int, int]:
        """The socket's TCP state and the bytes the receiver has not acknowledged yet (Linux)."""
        sock = self._open().get_extra_info("socket")
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)
        unacknowledged = array.array("i", [0])
        fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, unacknowledged, True)
        return struct.unpack_from("B", info)[0], unacknowledged[0]

    def alive(self) -> bool:
        """True while neither the event loop nor the kernel has seen the receiver go."""
        if self.lost is not None or self.transport is None or self.transport.is_closing():
            return False
        try:
            state, _ = self.kernel_state()
        except OSError as error:
            self._lose(f"socket: {error}")
            return False
        if state != _TCP_ESTABLISHED:
            self._lose("the receiver closed the connection")
            return False
        return True

    def _open(self) -> asyncio.Transport:
        """The connection's transport; :class:`ConnectionError` before it is made."""
        if self.transport is None:
            raise ConnectionError("not connected")
        return self.transport

    def write(self, data: bytes) -> None:
        self._open().write(data)

    async def drain(self) -> None:
        await self._writable.wait()

    async def gone(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the connection to go; True when it went."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._gone), timeout)
        return self.lost is not None

    async def settled(self) -> None:
        """Return once the receiver's TCP acknowledged everything written and the connection then stayed
        open for :data:`SETTLE_SECONDS`; raise :class:`ConnectionError` when it went first."""
        transport = self._open()
        deadline = asyncio.get_running_loop().time() + CONNECT_SECONDS
        while True:
            if not self.alive():
                raise ConnectionError(self.lost)
            if transport.get_write_buffer_size() == 0 and self.kernel_state()[1] == 0:
                break
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError("the receiver did not acknowledge the batch")
            await self.gone(0.005)
        if await self.gone(SETTLE_SECONDS) or not self.alive():
            raise ConnectionError(self.lost)


class SyslogTransport:
    """RFC 5424 messages over UDP (one per datagram), or TCP/TLS with octet-counting framing."""

    def __init__(self, host: str, port: int, protocol: str, facility: int, hostname: str, app_name: str,
                 tls: ssl.SSLContext | None, server_name: str | None, max_message: int = UDP_MESSAGE) -> None:
        self.host, self.port, self.protocol = host, port, protocol
        self.max_message = max_message
        """Longest UDP message: longer ones are truncated (RFC 5426)."""
        self._facility = facility
        self._hostname = sd_name(hostname)
        self._app_name = sd_name(app_name)
        self._tls = tls
        self._server_name = server_name or host
        self._connection: _Connection | None = None
        self._udp: socket.socket | None = None

    def messages(self, records: list[SpoolRecord]) -> list[bytes]:
        """The RFC 5424 messages of ``records`` for a stream (TCP, TLS): whole, however long."""
        return [rfc5424(record, self._facility, self._hostname, self._app_name) for record in records]

    async def send(self, records: list[SpoolRecord]) -> Outcome | None:
        where = f"syslog {self.protocol}://{self.host}:{self.port}"
        if self.protocol == "udp":
            return self._send_udp(records, where)
        messages = self.messages(records)
        try:
            connection = await self._connect()
        except (OSError, ssl.SSLError, TimeoutError) as error:
            await self.close()
            raise DeliveryError(f"{where}: {error or type(error).__name__}") from None
        try:
            connection.write(b"".join(b"%d %s" % (len(message), message) for message in messages))
            await asyncio.wait_for(connection.drain(), CONNECT_SECONDS)
            await connection.settled()
        except (OSError, ssl.SSLError, TimeoutError) as error:
            await self.close()
            raise DeliveryError(f"{where}: {error or type(error).__name__}", uncertain=True) from None
        return None

    def _send_udp(self, records: list[SpoolRecord], where: str) -> Outcome:
        """One datagram per record: the long ones truncated, one the kernel refuses for its size refused for
        good; an error part way raises :class:`DeliveryError` naming the records from the one that failed."""
        truncated: list[Rejection] = []
        refused: list[Rejection] = []
        for index, record in enumerate(records):
            message = rfc5424(record, self._facility, self._hostname, self._app_name, self.max_message)
            try:
                if self._udp is None:
                    info = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_DGRAM)[0]
                    self._udp = socket.socket(info[0], socket.SOCK_DGRAM)
                    self._udp.connect(info[4])
                self._udp.send(message)
            except OSError as error:
                if error.errno == errno.EMSGSIZE:
                    refused.append(Rejection(record, f"{len(message)} bytes: {error.strerror}"))
                    continue
                self._close_udp()
                raise DeliveryError(f"{where}: {error}", pending=records[index:],
                                    settled=Outcome(tuple(refused), truncated=tuple(truncated))) from None
            if not message.endswith(record.document):
                truncated.append(Rejection(record, f"{len(record.document)} bytes truncated to a {len(message)}-byte "
                                                   f"UDP message (max_message {self.max_message})"))
        return Outcome(tuple(refused), truncated=tuple(truncated))

    async def _connect(self) -> _Connection:
        """The open connection, checked just now; a new one when the receiver has closed the old."""
        if self._connection is not None and self._connection.alive():
            return self._connection
        await self.close()
        loop = asyncio.get_running_loop()
        _transport, connection = await asyncio.wait_for(loop.create_connection(
            _Connection, self.host, self.port, ssl=self._tls,
            server_hostname=self._server_name if self._tls else None), CONNECT_SECONDS)
        self._connection = connection
        return connection

    def reopen(self) -> None:
        """Connections are reopened on the next failure; nothing to do."""

    def _close_udp(self) -> None:
        if self._udp is not None:
            self._udp.close()
            self._udp = None

    async def close(self) -> None:
        self._close_udp()
        connection, self._connection = self._connection, None
        if connection is not None and connection.transport is not None:
            connection.transport.close()
            await connection.gone(5)
