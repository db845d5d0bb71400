"""The RELP transport: RFC 5424 messages over rsyslog's Reliable Event Logging Protocol, where the receiver
acknowledges every message, so a batch counts as delivered only when each of its messages was answered
``200 OK``.

A frame is ``TXNR SP COMMAND SP DATALEN [SP DATA] LF``: the session opens with ``open`` (offering
``relp_version=0`` and ``commands=syslog``), sends one ``syslog`` frame per message with up to
:data:`WINDOW` of them unanswered, and ends with ``close``; the receiver answers each with ``rsp`` and the
same transaction number, and may announce ``serverclose`` when it shuts down. Messages that were sent but
not answered when a session broke are sent again on the next one and counted in
``t1046_sink_resent_total``; those answered are not sent again. See rsyslog's librelp (``doc/relp.html``)
and imrelp for the receiving end.

It owns the session and the framing; the messages are :func:`sensor.outputs.syslog.rfc5424`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl

from sensor.outputs.spool import SpoolRecord
from sensor.outputs.syslog import CONNECT_SECONDS, rfc5424, sd_name
from sensor.outputs.transport import DeliveryError

log = logging.getLogger(__name__)

WINDOW = 128
"""Messages sent and not answered yet, at most (librelp's default window)."""
ANSWER_SECONDS = 30.0
"""Longest wait for the receiver's answer to a frame."""
_MAX_TXNR = 999_999_999
_OFFER = b"relp_version=0\nrelp_software=t1046-sensor\ncommands=syslog"


class RelpError(Exception):
    """The session broke: the receiver went, answered out of protocol, or refused a message."""


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, str, bytes]:
    """One RELP frame: (transaction number, command, data)."""
    txnr = int(await reader.readuntil(b" "))
    command = (await reader.readuntil(b" ")).decode("ascii").strip()
    digits = b""
    while (char := await reader.readexactly(1)) not in (b" ", b"\n"):
        digits += char
        if len(digits) > 9:
            raise RelpError("frame length too long")
    length = int(digits)
    if char == b"\n":
        if length:
            raise RelpError("frame without its data")
        return txnr, command, b""
    data = await reader.readexactly(length)
    if await reader.readexactly(1) != b"\n":
        raise RelpError("frame without its trailer")
    return txnr, command, data


def frame(txnr: int, command: str, data: bytes) -> bytes:
    """One RELP frame ready to write."""
    if not data:
        return b"%d %s 0\n" % (txnr, command.encode())
    return b"%d %s %d %s\n" % (txnr, command.encode(), len(data), data)


class _Session:
    """One RELP session: a reader task matching answers to the frames sent."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self.writer = writer
        self._txnr = 0
        self._answers: dict[int, asyncio.Future[bytes]] = {}
        self.broken: str | None = None
        self._window = asyncio.Semaphore(WINDOW)
        self._task = asyncio.get_running_loop().create_task(self._read(), name="relp-answers")

    async def _read(self) -> None:
        try:
            while True:
                txnr, command, data = await read_frame(self._reader)
                if command == "serverclose":
                    self._break("the receiver closed the session")
                    return
                answer = self._answers.pop(txnr, None)
                if command != "rsp" or answer is None:
                    self._break(f"unexpected {command!r} frame {txnr}")
                    return
                answer.set_result(data)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError, ssl.SSLError, ValueError,
                RelpError) as error:
            self._break(f"connection lost: {error or type(error).__name__}")

    def _break(self, why: str) -> None:
        if self.broken is None:
            self.broken = why
        for answer in self._answers.values():
            if not answer.done():
                answer.set_exception(RelpError(why))
        self._answers.clear()
        self.writer.close()

    def alive(self) -> bool:
        return self.broken is None and not self.writer.is_closing() and not self._reader.at_eof()

    async def request(self, command: str, data: bytes) -> asyncio.Future[bytes]:
        """Send one frame (waiting for room in the window); the future holds the receiver's answer."""
        await self._window.acquire()
        if self.broken is not None:
            self._window.release()
            raise RelpError(self.broken)
        self._txnr = self._txnr % _MAX_TXNR + 1
        answer = asyncio.get_running_loop().create_future()
        answer.add_done_callback(lambda _done: self._window.release())
        self._answers[self._txnr] = answer
        self.writer.write(frame(self._txnr, command, data))
        return answer

    async def answer(self, answer: asyncio.Future[bytes]) -> None:
        """Wait for an answer; raise :class:`RelpError` unless it is ``200``."""
        data = await asyncio.wait_for(answer, ANSWER_SECONDS)
        if not data.startswith(b"200"):
            self._break(f"the receiver answered {data[:80]!r}")
            raise RelpError(self.broken)

    async def close(self) -> None:
        if self.broken is None:
            with contextlib.suppress(RelpError, OSError, TimeoutError, ssl.SSLError):
                await asyncio.wait_for(self.answer(await self.request("close", b"")), 5)
        self._break("closed")
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        with contextlib.suppress(OSError, ssl.SSLError, TimeoutError):
            await asyncio.wait_for(self.writer.wait_closed(), 5)


def _acknowledged(answer: asyncio.Future[bytes]) -> bool:
    """True when the receiver answered this frame ``200``."""
    return answer.done() and not answer.cancelled() and answer.exception() is None and answer.result()[:3] == b"200"


class RelpTransport:
    """RFC 5424 messages over RELP, each acknowledged by the receiver."""

    def __init__(self, host: str, port: int, facility: int, hostname: str, app_name: str,
                 tls: ssl.SSLContext | None, server_name: str | None) -> None:
        self.host, self.port = host, port
        self._facility = facility
        self._hostname = sd_name(hostname)
        self._app_name = sd_name(app_name)
        self._tls = tls
        self._server_name = server_name or host
        self._session: _Session | None = None

    async def send(self, records: list[SpoolRecord]) -> None:
        where = f"relp://{self.host}:{self.port}"
        try:
            session = await self._open()
        except (OSError, ssl.SSLError, TimeoutError, RelpError, asyncio.IncompleteReadError) as error:
            await self.close()
            raise DeliveryError(f"{where}: cannot open a session: {error or type(error).__name__}") from None
        answers: list[asyncio.Future[bytes]] = []
        try:
            for record in records:
                message = rfc5424(record, self._facility, self._hostname, self._app_name)
                answers.append(await session.request("syslog", message))
            for answer in answers:
                await session.answer(answer)
        except (OSError, ssl.SSLError, TimeoutError, RelpError) as error:
            pending = [record for index, record in enumerate(records)
                       if index >= len(answers) or not _acknowledged(answers[index])]
            await self.close()
            raise DeliveryError(f"{where}: {error or type(error).__name__} ({len(records) - len(pending)} of "
                                f"{len(records)} acknowledged)", pending=pending, uncertain=True) from None

    async def _open(self) -> _Session:
        if self._session is not None and self._session.alive():
            return self._session
        await self.close()
        reader, writer = await asyncio.wait_for(asyncio.open_connection(
            self.host, self.port, ssl=self._tls, server_hostname=self._server_name if self._tls else None),
            CONNECT_SECONDS)
        session = _Session(reader, writer)
        self._session = session
        offer = await asyncio.wait_for(session.request("open", _OFFER), ANSWER_SECONDS)
        await session.answer(offer)
        return session

    def reopen(self) -> None:
        """Sessions are reopened on the next failure; nothing to do."""

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()
