"""Remote honeyport nodes: observations forwarded over TLS to one central correlator.

A node (``t1046-sensor honeyports`` or ``run`` with a ``node:`` section) spools each
:class:`~sensor.observations.HoneyportHit` and :class:`~sensor.observations.MdnsQuery` it makes, numbered
by a node-unique sequence, in a :class:`~sensor.sinks.Spool`; a :class:`NodeForwarder` (a
:class:`~sensor.sinks.SpooledSink` whose transport is :class:`NodeLinkTransport`) delivers the spool to
the central daemon, retrying with backoff while the centre is unreachable. The central daemon (``run``
with a ``nodes:`` section) serves :class:`NodeListener`.

The protocol (version 1, docs/deployment.md) is one JSON object per line, each with ``"v": 1`` and a
``"type"``:

* node → centre ``hello`` {node, epoch, token}; centre → node ``ready`` {last_seq} or ``refused`` {reason}.
* node → centre ``obs`` {seq, kind: honeyport | mdns, and the observation's fields}; centre → node
  ``ack`` {seq} for every ``obs`` it has handled (observed, a duplicate, or malformed and skipped).

A node proves its name with its own token (``nodes.node_tokens_file``: a stolen token speaks for one node
only, and is revoked by deleting its line) or, where the centre also has a shared token, a node not named
there gives its name with that. Either way the name is kept beside the TLS peer address
(``edge-a@10.1.2.3``) in every observation the node submits, never taken from an observation. A
node run is its name and ``epoch`` (random, kept in the node's state directory); the centre remembers the
last sequence number of each run (bounded), so a batch re-sent after a lost ack is not counted twice. The
daemon saves those numbers in its checkpoint with the correlator state they went into, and acknowledges
observations only once that checkpoint is written: until then the node keeps them spooled, and a centre
killed with -9 neither loses nor repeats any of them.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hmac
import logging
import math
import os
import re
import secrets
import ssl
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from ipaddress import ip_address
from pathlib import Path
from typing import Any

import orjson

from sensor.config import NodeConfig, NodesConfig, SensorConfig
from sensor.daemon.metrics import Metrics
from sensor.errors import SensorError
from sensor.observations import HoneyportHit, IPAddress, MdnsQuery, Observation, Transport
from sensor.outputs.settings import read_secret
from sensor.outputs.sink import Backoff, SpooledSink
from sensor.outputs.spool import Spool, SpoolRecord, write_atomically
from sensor.outputs.transport import DeliveryError

log = logging.getLogger(__name__)

PROTOCOL_VERSION = 1
MAX_PAYLOAD = 4096
"""Bytes of a honeyport hit's payload carried to the centre."""
MAX_TEXT = 255
"""Longest text field (an mDNS name is at most 255 octets)."""
HELLO_SECONDS = 10.0
"""Time a node has, after the TLS handshake, to say hello."""
IDLE_SECONDS = 300.0
"""A node connection with no line for this long is closed (the node reconnects when it has news)."""
SEND_SECONDS = 30.0
"""Time the node gives one batch to be sent and acknowledged."""
NODE_BATCH = 2000
"""Observations the node sends before it waits for their acknowledgement (the centre acknowledges them
at its next commit, a fraction of a second later when the centre's state is small)."""
MAX_UNACKED = 10 * NODE_BATCH
"""Observations one connection may have waiting for the centre's commit (ten batches); a node past that is
refused, so a centre that cannot commit holds a bounded amount for a node that does not wait for its acks."""
RETRY_MAX_SECONDS = 10.0
"""Longest wait between the node's attempts to reach the centre (a connection attempt is cheap)."""
LOG_INTERVAL = 60.0
"""Rejections are logged once, then at most once per this many seconds with a count."""

Submittable = HoneyportHit | MdnsQuery
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_EPOCH = re.compile(r"[0-9a-f]{16}")
_PROFILE = re.compile(r"[A-Za-z0-9_.-]{1,32}")


class ProtocolError(SensorError):
    """A line that is not a valid message of this protocol."""


class MalformedObservation(ProtocolError):
    """An ``obs`` line with a readable sequence number but an invalid observation: acknowledged, skipped."""

    def __init__(self, seq: int, reason: str) -> None:
        super().__init__(reason)
        self.seq = seq


# -- messages ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Hello:
    node: str
    epoch: str
    token: str

    def __repr__(self) -> str:
        return f"Hello(node={self.node!r}, epoch={self.epoch!r}, token=<hidden>)"


@dataclass(frozen=True, slots=True)
class Ready:
    last_seq: int


@dataclass(frozen=True, slots=True)
class Refused:
    reason: str


@dataclass(frozen=True, slots=True)
class Submission:
    seq: int
    observation: Submittable


@dataclass(frozen=True, slots=True)
class Ack:
    seq: int


Message = Hello | Ready | Refused | Submission | Ack


def _line(document: dict[str, Any]) -> bytes:
    return orjson.dumps({"v": PROTOCOL_VERSION, **document}) + b"\n"


def encode_hello(node: str, epoch: str, token: str) -> bytes:
    return _line({"type": "hello", "node": node, "epoch": epoch, "token": token})


def encode_ready(last_seq: int) -> bytes:
    return _line({"type": "ready", "last_seq": last_seq})


def encode_refused(reason: str) -> bytes:
    return _line({"type": "refused", "reason": reason})


def encode_ack(seq: int) -> bytes:
    return _line({"type": "ack", "seq": seq})


def encode_submission(seq: int, observation: Submittable) -> bytes:
    """The ``obs`` line of an observation, without its newline (it is what the node spools)."""
    fields: dict[str, Any]
    if isinstance(observation, HoneyportHit):
        fields = {"kind": "honeyport", "target": str(observation.target), "target_port": observation.target_port,
                  "transport": observation.transport.value, "profile": observation.profile,
                  "payload": base64.b64encode(observation.payload[:MAX_PAYLOAD]).decode(),
                  "follow_up": observation.follow_up}
    else:
        fields = {"kind": "mdns", "name": observation.name, "qtype": observation.qtype,
                  "unicast_response": observation.unicast_response, "legacy_unicast": observation.legacy_unicast,
                  "target": str(observation.target) if observation.target is not None else None}
    return _line({"type": "obs", "seq": seq, "ts": observation.ts, "source": str(observation.source),
                  "source_port": observation.source_port, **fields}).rstrip(b"\n")


def _get(document: dict[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    value = document.get(key)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise ProtocolError(f"{key}: missing or not a {getattr(kind, '__name__', kind)}")
    return value


def _text(document: dict[str, Any], key: str, pattern: re.Pattern[str] | None = None) -> str:
    value: str = _get(document, key, str)
    if len(value) > MAX_TEXT or (pattern is not None and not pattern.fullmatch(value)):
        raise ProtocolError(f"{key}: not a valid value")
    return value


def _count(document: dict[str, Any], key: str, high: int = 2**63 - 1) -> int:
    value: int = _get(document, key, int)
    if not 0 <= value <= high:
        raise ProtocolError(f"{key}: {value} out of range")
    return value


def _address(document: dict[str, Any], key: str) -> IPAddress:
    try:
        return ip_address(_text(document, key))
    except ValueError:
        raise ProtocolError(f"{key}: not an IP address") from None


def _observation(document: dict[str, Any]) -> Submittable:
    ts = float(_get(document, "ts", (int, float)))
    if not math.isfinite(ts) or ts < 0:
        raise ProtocolError("ts: not a time")
    source = _address(document, "source")
    source_port = _count(document, "source_port", 65535)
    kind = _get(document, "kind", str)
    if kind == "honeyport":
        transport = _get(document, "transport", str)
        if transport not in (Transport.TCP.value, Transport.UDP.value):
            raise ProtocolError("transport: not tcp or udp")
        try:
            payload = base64.b64decode(_get(document, "payload", str)[: 2 * MAX_PAYLOAD], validate=True)
        except (binascii.Error, ValueError):
            raise ProtocolError("payload: not base64") from None
        return HoneyportHit(ts=ts, source=source, source_port=source_port, target=_address(document, "target"),
                            target_port=_count(document, "target_port", 65535), transport=Transport(transport),
                            profile=_text(document, "profile", _PROFILE), payload=payload[:MAX_PAYLOAD],
                            follow_up=_get(document, "follow_up", bool) if "follow_up" in document else False)
    if kind == "mdns":
        target = None if document.get("target") is None else _address(document, "target")
        return MdnsQuery(ts=ts, source=source, source_port=source_port, name=_text(document, "name"),
                         qtype=_text(document, "qtype")[:16], target=target,
                         unicast_response=_get(document, "unicast_response", bool),
                         legacy_unicast=_get(document, "legacy_unicast", bool))
    raise ProtocolError("kind: not honeyport or mdns")


def decode_message(line: bytes) -> Message:
    """One protocol line as a typed message; raise :class:`ProtocolError` for anything else."""
    try:
        document = orjson.loads(line)
    except orjson.JSONDecodeError:
        raise ProtocolError("not JSON") from None
    if not isinstance(document, dict):
        raise ProtocolError("not a JSON object")
    if document.get("v") != PROTOCOL_VERSION:
        raise ProtocolError(f"unsupported protocol version {str(document.get('v'))[:16]!r}")
    kind = document.get("type")
    if kind == "obs":
        seq = _count(document, "seq")
        try:
            return Submission(seq, _observation(document))
        except ProtocolError as error:
            raise MalformedObservation(seq, str(error)) from None
    if kind == "ack":
        return Ack(_count(document, "seq"))
    if kind == "hello":
        return Hello(_text(document, "node", _NAME), _text(document, "epoch", _EPOCH), _text(document, "token"))
    if kind == "ready":
        return Ready(_count(document, "last_seq"))
    if kind == "refused":
        return Refused(_text(document, "reason")[:80])
    raise ProtocolError("type: unknown message type")


# -- the centre's bounds ---------------------------------------------------------------------------------


@dataclass(slots=True)
class TokenBucket:
    """``rate`` submissions a second with bursts of ``burst``; :meth:`delay` says how long to wait."""

    rate: float
    burst: float
    tokens: float
    stamp: float

    @classmethod
    def full(cls, rate: float, now: float) -> TokenBucket:
        return cls(rate, max(1.0, rate), max(1.0, rate), now)

    def delay(self, now: float) -> float:
        """Take one token at ``now``; the seconds to wait before the submission may be handled."""
        self.tokens = min(self.burst, self.tokens + max(0.0, now - self.stamp) * self.rate)
        self.stamp = now
        self.tokens -= 1.0
        return max(0.0, -self.tokens / self.rate)


class DedupeWindow:
    """The last sequence number handled for each node run (name, epoch), for at most ``capacity`` runs;
    the run heard from least recently is forgotten first."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._last: OrderedDict[tuple[str, str], int] = OrderedDict()

    def __len__(self) -> int:
        return len(self._last)

    def last(self, run: tuple[str, str]) -> int:
        return self._last.get(run, 0)

    def admit(self, run: tuple[str, str], seq: int) -> bool:
        """True when ``seq`` is new for ``run`` (and remember it); False for a re-sent one."""
        last = self._last.get(run, 0)
        self._last[run] = max(last, seq)
        self._last.move_to_end(run)
        while len(self._last) > self.capacity:
            self._last.popitem(last=False)
        return seq > last

    def snapshot(self) -> dict[tuple[str, str], int]:
        """The last sequence of every run, as of now."""
        return dict(self._last)

    def dump(self) -> str:
        return orjson.dumps({"v": PROTOCOL_VERSION, "runs": [[n, e, s] for (n, e), s in self._last.items()]}).decode()

    def load(self, data: str) -> None:
        document = orjson.loads(data)
        for node, epoch, seq in document["runs"][-self.capacity:]:
            if isinstance(node, str) and isinstance(epoch, str) and isinstance(seq, int):
                self._last[(node, epoch)] = seq


class RateLimitedLog:
    """A warning logged the first time, then at most once per ``interval`` with what was held back."""

    def __init__(self, interval: float = LOG_INTERVAL, clock: Callable[[], float] = time.monotonic) -> None:
        self._interval = interval
        self._clock = clock
        self._next = float("-inf")
        self._held = 0

    def warning(self, text: str, *args: object) -> None:
        now = self._clock()
        if now < self._next:
            self._held += 1
            return
        held, self._held = self._held, 0
        self._next = now + self._interval
        log.warning(text + (f" (and {held} more since the last such line)" if held else ""), *args)


# -- the centre ------------------------------------------------------------------------------------------


class _Rejected(Exception):
    """Ends a node session: ``result`` is the metric label, ``reason`` what the node is told."""

    def __init__(self, result: str, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.result = result
        self.reason = reason


def read_token(settings: NodesConfig | NodeConfig, where: str) -> str | None:
    """The node token from ``token_env`` or ``token_file`` (None when neither is set); never logged."""
    token = read_secret({"token_env": settings.token_env,
                         "token_file": str(settings.token_file) if settings.token_file else None}, "token", where)
    if token is not None and not token:
        raise SensorError(f"{where}: the node token is empty")
    return token


MIN_TOKEN_CHARS = 16
"""Shortest token a node tokens file may give a node."""
TOKENS_CHECK_SECONDS = 5.0
"""How often the centre looks whether its node tokens file changed (it also looks at every hello)."""


class NodeTokens:
    """Who may submit: each node named in the node tokens file, with its own token only; any other name with
    the shared token, when there is one.

    The file holds ``NAME TOKEN`` lines (blank lines and ``#`` comments aside). It is read again whenever it
    changes; a file that has become unreadable or invalid leaves the last good table in force, with a
    warning. Tokens are compared in constant time and never logged.
    """

    def __init__(self, shared: str | None, path: Path | None) -> None:
        if shared is None and path is None:
            raise SensorError("nodes: no node token (token_env, token_file or node_tokens_file)")
        self._shared = shared.encode() if shared is not None else None
        self._path = path
        self._stamp: tuple[int, int, int] | None = None
        self._own: dict[str, bytes] = {}
        if path is not None:
            self._own, self._stamp = self._read(path)

    @property
    def per_node(self) -> int:
        """Nodes named in the tokens file."""
        return len(self._own)

    def admits(self, node: str, token: str) -> bool:
        """Whether ``token`` proves the name ``node``."""
        own = self._own.get(node)
        offered = token.encode()
        if own is not None:
            return hmac.compare_digest(offered, own)
        if self._shared is None:
            hmac.compare_digest(offered, offered)  # an unknown name costs what a known one does
            return False
        return hmac.compare_digest(offered, self._shared)

    def check(self) -> bool:
        """Read the tokens file again if it changed; True when the table changed."""
        if self._path is None:
            return False
        try:
            stat = self._path.stat()
        except OSError as error:
            log.warning("nodes: node_tokens_file %s: %s; the last tokens read stay in force", self._path,
                        error.strerror)
            return False
        if (stat.st_ino, stat.st_size, stat.st_mtime_ns) == self._stamp:
            return False
        try:
            own, self._stamp = self._read(self._path)
        except SensorError as error:
            self._stamp = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
            log.warning("%s; the last tokens read stay in force", error)
            return False
        changed = own != self._own
        self._own = own
        if changed:
            log.info("nodes: node_tokens_file %s read again: %d nodes", self._path, len(own))
        return changed

    @staticmethod
    def _read(path: Path) -> tuple[dict[str, bytes], tuple[int, int, int]]:
        where = f"nodes: node_tokens_file {path}"
        try:
            with path.open("rb") as stream:
                stat = os.fstat(stream.fileno())
                text = stream.read().decode("utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise SensorError(f"{where}: cannot read: {getattr(error, 'strerror', None) or error}") from None
        if stat.st_mode & 0o077:
            log.warning("%s can be read by other users (mode %o): chmod 600 it", where, stat.st_mode & 0o777)
        own: dict[str, bytes] = {}
        for number, line in enumerate(text.splitlines(), 1):
            words = line.split("#", 1)[0].split()
            if not words:
                continue
            if len(words) != 2 or not _NAME.fullmatch(words[0]):
                raise SensorError(f"{where}:{number}: expected NAME TOKEN (a node name: letters, digits, . _ -)")
            name, token = words
            if name in own:
                raise SensorError(f"{where}:{number}: node {name} is named twice")
            if len(token) < MIN_TOKEN_CHARS:
                raise SensorError(f"{where}:{number}: the token of {name} is shorter than {MIN_TOKEN_CHARS} characters")
            own[name] = token.encode()
        return own, (stat.st_ino, stat.st_size, stat.st_mtime_ns)


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
        self._rejections = RateLimitedLog()
        self.port = 0

    async def start(self) -> int:
        """Listen; return the bound port. Raise ``SensorError`` when the certificate or address is unusable."""
        context = centre_tls(self.config)
        host, port = self.config.listen
        try:
            self._server = await asyncio.start_server(
                self._serve, host, port, ssl=context, limit=self.config.max_message_bytes,
                ssl_handshake_timeout=HELLO_SECONDS, backlog=self.config.max_nodes)
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
        for writer in list(self._sessions):
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
            if len(self._sessions) >= self.config.max_nodes:
                raise _Rejected("refused", "too many node connections",
                                f"{len(self._sessions)} node connections already open")
            self._sessions.add(writer)
            self._metrics.node_connections.set(len(self._sessions))
            await self._session(reader, writer, peer_host)
        except _Rejected as rejected:
            self._count(rejected.result)
            self._rejections.warning("nodes: %s from %s: %s", rejected.result, peer_host, rejected)
            with contextlib.suppress(OSError, RuntimeError):
                writer.write(encode_refused(rejected.reason))
                await asyncio.wait_for(writer.drain(), 5)
        except (OSError, TimeoutError, asyncio.IncompleteReadError) as error:
            log.debug("nodes: connection from %s ended: %r", peer_host, error)
        finally:
            self._sessions.discard(writer)
            self._proven.pop(writer, None)
            self._unacked.pop(writer, None)
            self._metrics.node_connections.set(len(self._sessions))
            writer.close()
            with contextlib.suppress(OSError, TimeoutError, ssl.SSLError):
                await asyncio.wait_for(writer.wait_closed(), 5)

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
            self._rejections.warning("nodes: malformed observation %d from node %s: %s", error.seq, identity, error)
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
                                                       limit=1 << 16, ssl_handshake_timeout=HELLO_SECONDS)
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
        if _EPOCH.fullmatch(epoch):
            return epoch
    epoch = secrets.token_hex(8)
    write_atomically(path, epoch.encode())
    return epoch


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


def centre_tokens(nodes: NodesConfig) -> NodeTokens:
    """Who may submit to the centre; raise ``SensorError`` when a token or the node tokens file is unusable."""
    return NodeTokens(read_token(nodes, "nodes"), nodes.node_tokens_file)


def node_credentials(config: SensorConfig) -> tuple[NodeConfig, str, ssl.SSLContext]:
    """A node's settings, token and TLS client context; raise ``SensorError`` naming what is unusable."""
    node = config.node
    if node is None:
        raise SensorError("node: not configured")
    if not _NAME.fullmatch(config.name):
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

