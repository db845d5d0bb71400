"""Thin Twisted protocols that turn transport callbacks into :class:`~sensor.observations.HoneyportHit`,
and the factory that owns every limit.

Identity (source and target address and port) is read from the transport — ``getPeer()`` and
``getHost()``, or the datagram's sender — and never from received bytes. Each accepted TCP connection is
exactly one hit, reported with the client's first bytes: at the first data, at close, or
:data:`TOUCH_WAIT` after accept, whichever comes first, so a touch and what the scanner sent are one alert
and the first alert still leaves within a second. A client that speaks only after that is reported again
(``follow_up``) when it does. Connections over a cap are still hits: they are reported at once, then aborted.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, cast
from typing import Protocol as TypingProtocol

from twisted.internet.protocol import DatagramProtocol, Factory, Protocol, connectionDone
from twisted.python.failure import Failure

from honeyports.profiles import Profile, datagram_reply
from sensor.observations import PAYLOAD_LIMIT, HoneyportHit, IPAddress, Touch, Transport

log = logging.getLogger(__name__)

TOUCH_WAIT = 1.0
"""Seconds a TCP touch waits for the client's first bytes before it is reported without them."""

Emit = Callable[[HoneyportHit], object]
"""Where hits go: in the daemon, ``Pipeline.observe``."""

Clock = Callable[[], float]


class DelayedCall(TypingProtocol):
    """What ``callLater`` returns (Twisted's ``IDelayedCall``)."""

    def active(self) -> bool: ...

    def cancel(self) -> None: ...


class Scheduler(TypingProtocol):
    """The part of a reactor the listeners need: ``callLater`` (``IReactorTime``)."""

    def callLater(self, delay: float, callable: Callable[..., Any], *args: Any,
                  **kw: Any) -> DelayedCall: ...


class StreamTransport(TypingProtocol):
    """The part of a TCP transport (``ITCPTransport``) the protocol uses."""

    def write(self, data: bytes) -> None: ...

    def loseConnection(self) -> None: ...

    def abortConnection(self) -> None: ...

    def getPeer(self) -> object: ...

    def getHost(self) -> object: ...


class DatagramTransport(TypingProtocol):
    """The part of a UDP transport (``IUDPTransport``) the protocol uses."""

    def write(self, packet: bytes, addr: tuple[str, int]) -> None: ...

    def getHost(self) -> object: ...


def host_address(host: str) -> IPAddress:
    """A transport's host string as an address: IPv6 scope removed, IPv4-mapped IPv6 made IPv4."""
    address = ipaddress.ip_address(host.partition("%")[0])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def endpoint(address: object) -> tuple[str, int]:
    """(host, port) of a Twisted ``IPv4Address``/``IPv6Address``; raise ``ValueError`` for anything else."""
    host, port = getattr(address, "host", None), getattr(address, "port", None)
    if not isinstance(host, str) or not isinstance(port, int):
        raise ValueError(f"not an IP endpoint: {address!r}")
    return host, port


@dataclass(slots=True)
class ListenerStats:
    """Counters a node reports on shutdown and the tests and benchmark read."""

    hits: int = 0
    """Touches emitted (accepted connections, datagrams, half-open handshakes)."""
    refused_total: int = 0
    """Connections counted, then aborted because ``max_connections`` were open."""
    refused_source: int = 0
    """Connections counted, then aborted because their source had ``max_connections_per_source`` open."""
    timed_out: int = 0
    """Connections aborted at ``idle_timeout``."""
    half_open: int = 0
    """Of the hits, SYN-scan handshakes that never reached ``accept()`` (see :mod:`honeyports.halfopen`)."""
    answered: int = 0
    """First requests answered by a profile."""
    datagram_bytes_in: int = 0
    datagram_bytes_out: int = 0


class HoneyportProtocol(Protocol):
    """One accepted connection: banner, one request (capped), the profile's answer, close."""

    def __init__(self, factory: HoneyportFactory) -> None:
        self.factory = factory
        self.received = b""
        self.answered = False
        self.hit: HoneyportHit | None = None
        """The touch, made at accept; reported with the first bytes (:meth:`report`), its identity reused for
        a follow-up."""
        self.reported = False
        self._wait: DelayedCall | None = None

    @property
    def stream(self) -> StreamTransport:
        """The transport, typed by what this protocol uses of it."""
        return cast(StreamTransport, self.transport)

    def connectionMade(self) -> None:
        """Send the banner and wait for the first bytes when admitted; else report the touch and drop it."""
        if not self.factory.admit(self):
            self.report()
            self.stream.abortConnection()
            return
        self._wait = self.factory.scheduler.callLater(TOUCH_WAIT, self.report)
        if self.factory.profile.banner:
            self.stream.write(self.factory.profile.banner)

    def dataReceived(self, data: bytes) -> None:
        """Report the touch with the first bytes; keep at most ``read_limit`` bytes; answer once the profile
        sees a whole first request."""
        if self.answered:
            return
        self.received += data[: self.factory.read_limit - len(self.received)]
        if self.received and not self.reported:
            self.report()
        full = len(self.received) >= self.factory.read_limit
        if full or self.factory.profile.is_complete(self.received):
            self.answered = True
            self.factory.answer(self)

    def report(self) -> None:
        """Emit the touch with what the client sent so far (nothing more once it is reported)."""
        if self.reported or self.hit is None:
            return
        self.reported = True
        if self._wait is not None and self._wait.active():
            self._wait.cancel()
        self.factory.emit(replace(self.hit, payload=self.received[:PAYLOAD_LIMIT]))
        self.hit = replace(self.hit, payload=self.received[:PAYLOAD_LIMIT])

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """Release this connection's slot and timer; report the touch if it was not yet, or what the client
        sent after it was reported without bytes."""
        self.factory.release(self)
        if self.hit is None:
            return
        if not self.reported:
            self.report()
        elif self.received and not self.hit.payload:
            self.factory.emit(replace(self.hit, ts=self.factory.clock(), follow_up=True,
                                      payload=self.received[:PAYLOAD_LIMIT]))


class HoneyportFactory(Factory):
    """Owns one TCP listener's profile and the node-wide limits shared by all listeners.

    Limits: a hard lifetime per connection (``idle_timeout``: no slowloris holds a slot longer), at most
    ``read_limit`` bytes kept per connection, and a cap on open connections per source and in total,
    kept in a :class:`ConnectionTable` shared by every listener of the node.
    """

    noisy = False

    def __init__(self, profile: Profile, table: ConnectionTable, emit: Emit, node: str, clock: Clock,
                 scheduler: Scheduler, bound: tuple[str, int]) -> None:
        self.profile = profile
        self.table = table
        self.emit = emit
        self.node = node
        self.clock = clock
        self.scheduler = scheduler
        self.bound = bound
        """The listening (address, port): the target when ``getHost()`` fails on an already reset socket."""
        self.read_limit = table.read_limit
        self._open: dict[HoneyportProtocol, tuple[IPAddress, DelayedCall]] = {}

    def buildProtocol(self, addr: object) -> HoneyportProtocol:
        """A protocol for every accepted connection: even refused ones are counted by it first."""
        return HoneyportProtocol(self)

    def admit(self, protocol: HoneyportProtocol) -> bool:
        """Make the hit of a new connection (the protocol reports it); True when it may stay open under the
        caps."""
        source_host, source_port = endpoint(protocol.stream.getPeer())
        try:
            target_host, target_port = endpoint(protocol.stream.getHost())
        except OSError:
            target_host, target_port = self.bound
        source = host_address(source_host)
        target = host_address(target_host)
        self.table.stats.hits += 1
        self.table.connection_seen(source, source_port, target, target_port)
        protocol.hit = HoneyportHit(ts=self.clock(), source=source, source_port=source_port, target=target,
                                    target_port=target_port, transport=Transport.TCP, profile=self.profile.name,
                                    node=self.node, touch=Touch.CONNECT)
        if not self.table.acquire(source):
            return False
        self._open[protocol] = (source, self.scheduler.callLater(self.table.idle_timeout, self._expire, protocol))
        return True

    def answer(self, protocol: HoneyportProtocol) -> None:
        """Write the profile's answer to the first request, then close."""
        reply = self.profile.answer(protocol.received)
        self.table.stats.answered += 1
        if reply:
            protocol.stream.write(reply)
        protocol.stream.loseConnection()

    def release(self, protocol: HoneyportProtocol) -> None:
        """Forget a closed connection: its timer and its slot."""
        entry = self._open.pop(protocol, None)
        if entry is None:
            return
        source, timer = entry
        if timer.active():
            timer.cancel()
        self.table.release(source)

    @property
    def open_connections(self) -> int:
        """Connections of this listener open now."""
        return len(self._open)

    def _expire(self, protocol: HoneyportProtocol) -> None:
        self.table.stats.timed_out += 1
        protocol.stream.abortConnection()


class ConnectionTable:
    """Open connections per source and in total, shared by all TCP listeners of a node.

    Only admitted, open connections have an entry, and there are at most ``max_connections`` of them, so
    the table is bounded whatever the number of (possibly spoofed) sources.
    """

    def __init__(self, max_connections: int, max_per_source: int, idle_timeout: float, read_limit: int,
                 on_connection: Callable[[str, int, str, int], None] | None = None) -> None:
        self.max_connections = max_connections
        self.max_per_source = max_per_source
        self.idle_timeout = idle_timeout
        self.read_limit = read_limit
        self.open_total = 0
        self.by_source: dict[IPAddress, int] = {}
        self.stats = ListenerStats()
        self._on_connection = on_connection

    def connection_seen(self, source: IPAddress, source_port: int, target: IPAddress, target_port: int) -> None:
        """Tell the half-open watcher that this handshake completed (it must not be counted twice)."""
        if self._on_connection is not None:
            self._on_connection(str(source), source_port, str(target), target_port)

    def acquire(self, source: IPAddress) -> bool:
        """Take a slot for a connection from ``source``; False (and counted) when a cap is reached."""
        if self.open_total >= self.max_connections:
            self.stats.refused_total += 1
            return False
        count = self.by_source.get(source, 0)
        if count >= self.max_per_source:
            self.stats.refused_source += 1
            return False
        self.by_source[source] = count + 1
        self.open_total += 1
        return True

    def release(self, source: IPAddress) -> None:
        """Give back a slot; a source with no open connection leaves the table."""
        self.open_total -= 1
        count = self.by_source[source] - 1
        if count:
            self.by_source[source] = count
        else:
            del self.by_source[source]


class HoneyportDatagramProtocol(DatagramProtocol):
    """One UDP honeyport: every datagram is a hit; the reply is never longer than the datagram."""

    noisy = False

    def __init__(self, profile: Profile, emit: Emit, node: str, clock: Clock, stats: ListenerStats,
                 payload_limit: int) -> None:
        self.profile = profile
        self.emit = emit
        self.node = node
        self.clock = clock
        self.stats = stats
        self.payload_limit = payload_limit
        self._target: tuple[IPAddress, int]
        """The bound socket's address, read once when the port starts listening (:meth:`startProtocol`)."""

    def startProtocol(self) -> None:
        host, port = endpoint(cast(DatagramTransport, self.transport).getHost())
        self._target = (host_address(host), port)

    def datagramReceived(self, datagram: bytes, addr: Any) -> None:
        """Emit the hit (source from the datagram's sender, target from the bound socket), then reply."""
        source_host, source_port = addr[0], addr[1]
        transport = cast(DatagramTransport, self.transport)
        target, target_port = self._target
        self.stats.hits += 1
        self.stats.datagram_bytes_in += len(datagram)
        self.emit(HoneyportHit(ts=self.clock(), source=host_address(source_host), source_port=source_port,
                               target=target, target_port=target_port,
                               transport=Transport.UDP, profile=self.profile.name,
                               payload=datagram[: self.payload_limit], node=self.node, touch=Touch.DATAGRAM))
        reply = datagram_reply(self.profile, datagram)
        if reply:
            self.stats.datagram_bytes_out += len(reply)
            try:
                transport.write(reply, (source_host, source_port))
            except OSError as error:
                log.debug("udp reply to %s:%s not sent: %s", source_host, source_port, error)
