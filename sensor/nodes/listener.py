"""The central daemon's node listener (``nodes:``): TLS connections from honeyport nodes, hello and token
check, observations submitted into the pipeline with the node's name and TLS peer as their node, and
acknowledgements after the checkpoint that holds them (so a centre killed with -9 loses and repeats
nothing).

Unauthenticated clients cannot lock nodes out: a connection has :data:`HANDSHAKE_SECONDS` for its TLS
handshake and :data:`HELLO_SECONDS` more for a hello with a valid token; until then it is one of at most
:data:`MAX_UNAUTHENTICATED_PER_ADDRESS` from its address (more are refused at once) and of at most
``max_nodes`` waiting connections in all (past that, the one waiting longest is closed); only a node that
proved its token takes one of the ``max_nodes`` session slots, which waiting connections never hold.
Every rejection is logged with its source, each source at least once a minute."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import Callable
from dataclasses import replace

from sensor.config import NodesConfig, SensorConfig
from sensor.errors import SensorError
from sensor.metrics import Metrics
from sensor.nodes.codec import (
    HANDSHAKE_SECONDS,
    HELLO_SECONDS,
    IDLE_SECONDS,
    NODE_BATCH,
    Hello,
    MalformedObservation,
    ProtocolError,
    Submission,
    decode_message,
    encode_ack,
    encode_ready,
    encode_refused,
)
from sensor.nodes.limits import DedupeWindow, RateLimitedLog, TokenBucket
from sensor.nodes.tokens import TOKENS_CHECK_SECONDS, NodeTokens, centre_tokens
from sensor.observations import HoneyportHit, Observation

log = logging.getLogger(__name__)

MAX_UNAUTHENTICATED_PER_ADDRESS = 4
"""Connections one address may have open before their hello proved a token."""
MAX_UNACKED = 10 * NODE_BATCH
"""Observations one connection may have waiting for the centre's commit (ten batches); a node past that is
refused, so a centre that cannot commit holds a bounded amount for a node that does not wait for its acks."""


class _Rejected(Exception):
    """Ends a node session: ``result`` is the metric label, ``reason`` what the node is told."""

    def __init__(self, result: str, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.result = result
        self.reason = reason



class NodeListener:
    """The central daemon's TLS listener: authenticates nodes and feeds their observations to ``observe``."""

    def __init__(self, config: NodesConfig, tokens: NodeTokens, observe: Callable[[Observation], object],
                 metrics: Metrics, *, ack_after_commit: bool = False, clock: Callable[[], float] = time.time,
                 tokens_check_seconds: float = TOKENS_CHECK_SECONDS) -> None:
        self.config = config
        self._ack_after_commit = ack_after_commit
        self._unacked: dict[asyncio.StreamWriter, list[int]] = {}
        """With ``ack_after_commit``: each connection's handled sequence numbers waiting for a commit."""
        self._committed: dict[tuple[str, str], int] = {}
        """With ``ack_after_commit``: the last sequence of each run as of the last commit."""
        self._tokens = tokens
        self._tokens_check_seconds = tokens_check_seconds
        self._tokens_watch: asyncio.Task[None] | None = None
        self._proven: dict[asyncio.StreamWriter, tuple[str, str]] = {}
        """The node name and token each connection proved at its hello."""
        self._observe = observe
        self._metrics = metrics
        self._clock = clock
        self.dedupe = DedupeWindow(config.dedupe_nodes)
        self._server: asyncio.Server | None = None
        self._sessions: set[asyncio.StreamWriter] = set()
        """Connections of nodes that proved their token: the ``max_nodes`` slots."""
        self._waiting: dict[asyncio.StreamWriter, str] = {}
        """Connections that have not proved a token yet, oldest first, with their address."""
        self._rejections = RateLimitedLog()
        self.port = 0

    async def start(self) -> int:
        """Listen; return the bound port. Raise ``SensorError`` when the certificate or address is unusable."""
        context = centre_tls(self.config)
        host, port = self.config.listen
        try:
            self._server = await asyncio.start_server(
                self._serve, host, port, ssl=context, limit=self.config.max_message_bytes,
                ssl_handshake_timeout=HANDSHAKE_SECONDS, backlog=self.config.max_nodes)
        except OSError as error:
            raise SensorError(f"nodes: cannot listen on {host}:{port}: {error.strerror}") from None
        self.port = int(self._server.sockets[0].getsockname()[1])
        self._tokens_watch = asyncio.get_running_loop().create_task(self._watch_tokens())
        log.info("nodes: listening for honeyport nodes on %s:%d (TLS; nodes with their own token: %d)", host,
                 self.port, self._tokens.per_node)
        return self.port

    async def _watch_tokens(self) -> None:
        while True:
            await asyncio.sleep(self._tokens_check_seconds)
            self.check_tokens()

    def check_tokens(self) -> None:
        """Read the node tokens file again if it changed, and close the connections it no longer admits."""
        if not self._tokens.check():
            return
        for writer, (node, token) in list(self._proven.items()):
            if not self._tokens.admits(node, token):
                log.warning("nodes: node %s is no longer admitted by the node tokens: closing its connection", node)
                writer.close()

    async def stop(self) -> None:
        """Stop listening and close every node connection."""
        if self._tokens_watch is not None:
            self._tokens_watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._tokens_watch
            self._tokens_watch = None
        if self._server is not None:
            self._server.close()
        for writer in [*self._sessions, *self._waiting]:
            writer.close()
        if self._server is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 5)
            self._server = None

    def state(self) -> str:
        """The node runs' last sequence numbers, to save with the correlator state they went into."""
        return self.dedupe.dump()

    def restore(self, state: str) -> None:
        """Take the sequence numbers a checkpoint saved (before :meth:`start`)."""
        try:
            self.dedupe.load(state)
        except (ValueError, TypeError, KeyError) as error:
            log.warning("nodes: the checkpoint's node sequences are unreadable (%s); a batch a node re-sends may "
                        "be counted again once", error)
        self._committed = self.dedupe.snapshot()

    @property
    def acks_pending(self) -> bool:
        """Whether handled observations wait for a commit before they are acknowledged."""
        return any(self._unacked.values())

    def committed(self) -> None:
        """Everything observed so far is saved with the correlator: acknowledge it, and tell reconnecting nodes
        so. Until then a node keeps it spooled, so a crash of the centre loses and repeats none of it."""
        self._committed = self.dedupe.snapshot()
        for writer, pending in self._unacked.items():
            if pending:
                writer.write(b"".join(encode_ack(seq) for seq in pending))
                pending.clear()

    def _count(self, result: str, amount: int = 1) -> None:
        self._metrics.node_submissions.labels(result=result).inc(amount)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        peer_host = str(peer[0]) if isinstance(peer, tuple) and peer else "unknown"
        try:
            self._wait(writer, peer_host)
            await self._session(reader, writer, peer_host)
        except _Rejected as rejected:
            self._count(rejected.result)
            self._rejections.warning(peer_host, "nodes: %s from %s: %s", rejected.result, peer_host, rejected)
            with contextlib.suppress(OSError, RuntimeError):
                writer.write(encode_refused(rejected.reason))
                await asyncio.wait_for(writer.drain(), 5)
        except (OSError, TimeoutError, asyncio.IncompleteReadError) as error:
            log.debug("nodes: connection from %s ended: %r", peer_host, error)
        finally:
            self._waiting.pop(writer, None)
            self._sessions.discard(writer)
            self._proven.pop(writer, None)
            self._unacked.pop(writer, None)
            self._metrics.node_connections.set(len(self._sessions))
            writer.close()
            with contextlib.suppress(OSError, TimeoutError, ssl.SSLError):
                await asyncio.wait_for(writer.wait_closed(), 5)

    def _wait(self, writer: asyncio.StreamWriter, peer_host: str) -> None:
        """Admit a connection that has yet to prove a token, within its address's cap and the waiting room's."""
        if sum(1 for host in self._waiting.values() if host == peer_host) >= MAX_UNAUTHENTICATED_PER_ADDRESS:
            raise _Rejected("refused", "too many connections without hello",
                            f"{MAX_UNAUTHENTICATED_PER_ADDRESS} connections from it wait for their hello already")
        if len(self._waiting) >= self.config.max_nodes:
            oldest = next(iter(self._waiting))
            self._waiting.pop(oldest)
            self._count("refused")
            self._rejections.warning("waiting room", "nodes: %d connections waiting for their hello: the oldest "
                                     "one is closed", self.config.max_nodes)
            oldest.close()
        self._waiting[writer] = peer_host

    def _admit(self, writer: asyncio.StreamWriter) -> None:
        """The connection proved its token: it leaves the waiting room for a session slot, if one is free."""
        self._waiting.pop(writer, None)
        if len(self._sessions) >= self.config.max_nodes:
            raise _Rejected("refused", "too many node connections",
                            f"{len(self._sessions)} node connections already open")
        self._sessions.add(writer)
        self._metrics.node_connections.set(len(self._sessions))

    async def _read(self, reader: asyncio.StreamReader, timeout: float) -> bytes | None:
        """The next line, or None at a clean end of the connection."""
        try:
            return await asyncio.wait_for(reader.readuntil(b"\n"), timeout)
        except asyncio.LimitOverrunError:
            raise _Rejected("malformed", "line too long",
                            f"a line longer than {self.config.max_message_bytes} bytes") from None
        except asyncio.IncompleteReadError as error:
            if error.partial:
                raise _Rejected("malformed", "truncated line", "a line cut short by the end of the stream") from None
            return None

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer_host: str) -> None:
        line = await self._read(reader, HELLO_SECONDS)
        if line is None:
            return
        try:
            hello = decode_message(line)
        except ProtocolError as error:
            raise _Rejected("malformed", "expected hello", f"not a hello: {error}") from None
        if not isinstance(hello, Hello):
            raise _Rejected("malformed", "expected hello", f"{type(hello).__name__} before hello")
        self.check_tokens()
        if not self._tokens.admits(hello.node, hello.token):
            raise _Rejected("unauthenticated", "unauthenticated", f"wrong token (node says it is {hello.node!r})")
        self._admit(writer)
        self._proven[writer] = (hello.node, hello.token)
        identity = f"{hello.node}@{peer_host}"
        run = (hello.node, hello.epoch)
        last = self._committed.get(run, 0) if self._ack_after_commit else self.dedupe.last(run)
        writer.write(encode_ready(last))
        await writer.drain()
        log.info("nodes: node %s connected (run %s, last sequence %d)", identity, hello.epoch, last)
        unacked = self._unacked.setdefault(writer, []) if self._ack_after_commit else None
        bucket = TokenBucket.full(self.config.rate, time.monotonic())
        handled = 0
        try:
            while (line := await self._read(reader, IDLE_SECONDS)) is not None:
                wait = bucket.delay(time.monotonic())
                if wait > 0:
                    await asyncio.sleep(wait)
                seq = self._submit(line, run, identity)
                if unacked is None:
                    writer.write(encode_ack(seq))
                elif len(unacked) >= MAX_UNACKED:
                    raise _Rejected("refused", "too many unacknowledged observations",
                                    f"{len(unacked)} observations wait for a commit (is the state directory full?)")
                else:
                    unacked.append(seq)
                handled += 1
                await writer.drain()
        finally:
            log.info("nodes: node %s disconnected after %d submissions", identity, handled)

    def _submit(self, line: bytes, run: tuple[str, str], identity: str) -> int:
        """Handle one ``obs`` line; its sequence number, to acknowledge."""
        try:
            message = decode_message(line)
        except MalformedObservation as error:
            self._count("malformed")
            self._rejections.warning(identity, "nodes: malformed observation %d from node %s: %s", error.seq, identity,
                                     error)
            return error.seq
        except ProtocolError as error:
            raise _Rejected("malformed", "expected obs", f"not an observation: {error}") from None
        if not isinstance(message, Submission):
            raise _Rejected("malformed", "expected obs", f"{type(message).__name__} instead of an observation")
        if not self.dedupe.admit(run, message.seq):
            self._count("duplicate")
            return message.seq
        observation = message.observation
        ts = min(observation.ts, self._clock())
        if isinstance(observation, HoneyportHit):
            self._observe(replace(observation, ts=ts, node=identity))
        else:
            self._observe(replace(observation, ts=ts))
        self._count("accepted")
        return message.seq


# -- the node --------------------------------------------------------------------------------------------



def centre_tls(nodes: NodesConfig) -> ssl.SSLContext:
    """The centre's TLS server context; raise ``SensorError`` when its certificate or key is unusable."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(nodes.cert_file, nodes.key_file)
    except (OSError, ssl.SSLError) as error:
        raise SensorError(f"nodes: cannot load cert_file {nodes.cert_file} and key_file {nodes.key_file}: "
                          f"{error}") from None
    return context





async def start_listener(config: SensorConfig, observe: Callable[[Observation], object], metrics: Metrics,
                         state: str = "") -> NodeListener | None:
    """The central listener when ``nodes:`` is configured, started with the node sequences of the last
    checkpoint (``state``) and acknowledging after commits; raise ``SensorError`` when it cannot start."""
    if config.nodes is None:
        return None
    listener = NodeListener(config.nodes, centre_tokens(config.nodes), observe, metrics, ack_after_commit=True)
    if state:
        listener.restore(state)
    await listener.start()
    return listener
