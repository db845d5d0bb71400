"""A honeyport node's side of the link (``node:``): its observations spooled with a node-unique sequence and
delivered over TLS to the central daemon by a spooled sink, retrying with backoff while the centre is
unreachable."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import ssl
import time
from pathlib import Path

from sensor.config import NodeConfig, SensorConfig
from sensor.errors import SensorError
from sensor.files import write_atomically
from sensor.metrics import Metrics
from sensor.nodes.codec import (
    EPOCH,
    HANDSHAKE_SECONDS,
    IDLE_SECONDS,
    NODE_BATCH,
    NODE_NAME,
    Ack,
    ProtocolError,
    Ready,
    Refused,
    Submittable,
    decode_message,
    encode_hello,
    encode_submission,
)
from sensor.nodes.tokens import read_token
from sensor.observations import Observation
from sensor.outputs.sink import Backoff, SpooledSink
from sensor.outputs.spool import Spool, SpoolRecord
from sensor.outputs.transport import DeliveryError

log = logging.getLogger(__name__)

SEND_SECONDS = 30.0
"""Time the node gives one batch to be sent and acknowledged."""
RETRY_MAX_SECONDS = 10.0
"""Longest wait between the node's attempts to reach the centre (a connection attempt is cheap)."""


class NodeLinkTransport:
    """Sends spooled ``obs`` lines to the central daemon and waits for their acknowledgement."""

    def __init__(self, central: tuple[str, int], tls: ssl.SSLContext, server_name: str, node: str, epoch: str,
                 token: str, timeout: float = SEND_SECONDS) -> None:
        self.central = central
        self._tls = tls
        self._server_name = server_name
        self._node = node
        self._epoch = epoch
        self._token = token
        self._timeout = timeout
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._acked = 0
        self._last_used = 0.0

    async def send(self, records: list[SpoolRecord]) -> None:
        host, port = self.central
        try:
            async with asyncio.timeout(self._timeout):
                await self._send(records)
        except (OSError, TimeoutError, EOFError, asyncio.LimitOverrunError, ProtocolError) as error:
            await self.close()
            raise DeliveryError(f"central {host}:{port}: {error or type(error).__name__}") from None

    async def _send(self, records: list[SpoolRecord]) -> None:
        if time.monotonic() - self._last_used > IDLE_SECONDS / 2:
            await self.close()
        if self._reader is None or self._writer is None:
            self._reader, self._writer = await self._connect()
        self._last_used = time.monotonic()
        pending = [record for record in records if record.seq > self._acked]
        if not pending:
            return
        self._writer.write(b"".join(record.document + b"\n" for record in pending))
        await self._writer.drain()
        while self._acked < pending[-1].seq:
            message = decode_message(await self._reader.readuntil(b"\n"))
            if isinstance(message, Refused):
                raise ProtocolError(f"refused: {message.reason}")
            if not isinstance(message, Ack):
                raise ProtocolError(f"unexpected {type(message).__name__}")
            self._acked = max(self._acked, message.seq)

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        host, port = self.central
        reader, writer = await asyncio.open_connection(host, port, ssl=self._tls, server_hostname=self._server_name,
                                                       limit=1 << 16, ssl_handshake_timeout=HANDSHAKE_SECONDS)
        writer.write(encode_hello(self._node, self._epoch, self._token))
        await writer.drain()
        message = decode_message(await reader.readuntil(b"\n"))
        if isinstance(message, Refused):
            writer.close()
            raise ProtocolError(f"refused: {message.reason}")
        if not isinstance(message, Ready):
            writer.close()
            raise ProtocolError(f"unexpected {type(message).__name__} instead of ready")
        self._acked = message.last_seq
        log.info("node link: connected to %s:%d as %s (the centre has up to sequence %d)", host, port, self._node,
                 message.last_seq)
        return reader, writer

    def reopen(self) -> None:
        """The connection is reopened by the next batch after any failure, or after half the centre's idle
        timeout (so a connection the centre closed for silence is not tried first)."""

    async def close(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError, TimeoutError, ssl.SSLError):
                await asyncio.wait_for(writer.wait_closed(), 5)


class NodeForwarder(SpooledSink):
    """Spools this node's observations, numbered, and delivers them to the central daemon."""

    def forward(self, observation: Observation) -> None:
        """Spool a honeyport hit or mDNS query (others are not forwarded) for the central daemon."""
        if not isinstance(observation, Submittable):
            return
        seq = self.last_taken + 1
        self.enqueue([SpoolRecord(seq, "obs", observation.ts, 0, encode_submission(seq, observation))])
        with contextlib.suppress(RuntimeError):
            self.start()


def _epoch(directory: Path) -> str:
    """This node run's epoch: made once, kept beside the spool so sequence numbers stay unique with it."""
    path = directory / "epoch"
    with contextlib.suppress(OSError, UnicodeDecodeError):
        epoch = path.read_text(encoding="ascii").strip()
        if EPOCH.fullmatch(epoch):
            return epoch
    epoch = secrets.token_hex(8)
    write_atomically(path, epoch.encode())
    return epoch




def node_credentials(config: SensorConfig) -> tuple[NodeConfig, str, ssl.SSLContext]:
    """A node's settings, token and TLS client context; raise ``SensorError`` naming what is unusable."""
    node = config.node
    if node is None:
        raise SensorError("node: not configured")
    if not NODE_NAME.fullmatch(config.name):
        raise SensorError(f"sensor.name: {config.name!r} cannot name a node (letters, digits, . _ -; 64 at most)")
    token = read_token(node, "node")
    if token is None:
        raise SensorError("node.token_env: is required (or token_file): the node token")
    try:
        tls = ssl.create_default_context(cafile=str(node.ca_file) if node.ca_file else None)
    except (OSError, ssl.SSLError) as error:
        raise SensorError(f"node.ca_file: {error}") from None
    tls.minimum_version = ssl.TLSVersion.TLSv1_2
    return node, token, tls


def build_forwarder(config: SensorConfig, metrics: Metrics) -> NodeForwarder:
    """The forwarder of a node configured with ``node:``; raise ``SensorError`` naming what is unusable."""
    node, token, tls = node_credentials(config)
    directory = config.state_dir / "spool" / "node-link"
    spool = Spool(directory, node.spool_max_bytes, node.spool_full, "node-link", metrics)
    epoch = _epoch(directory)
    transport = NodeLinkTransport(node.central, tls, node.server_name or node.central[0], config.name, epoch, token)
    log.info("node link: %s (run %s) forwards to the central daemon at %s:%d; %d bytes spooled", config.name,
             epoch, *node.central, spool.pending_bytes)
    return NodeForwarder("node-link", "ecs", spool, transport, metrics, NODE_BATCH,
                         Backoff(maximum=RETRY_MAX_SECONDS))
