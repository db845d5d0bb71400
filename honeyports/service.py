"""The honeyport node: every configured listener, the shared limits and the half-open watcher.

``HoneyportService(config, emit, node, reactor).start()`` opens TCP and UDP listeners on each configured
address (IPv4 and IPv6), and returns the problems it met, one per address, transport and reason with the
ports as ranges (``tcp 10.9.9.9:22,80,8000-8100: cannot assign requested address (103 ports)``), instead of
raising: a node with some ports taken still guards the rest. What it listens on is logged the same way, one
line per address and transport (``honeyport listening on 127.0.0.1:2222/tcp``, ``honeyports listening on
127.0.0.1:2222-2224,8081/tcp (4 ports)``, with the port the system chose when 0 was asked for).
``stop()`` closes everything and returns a Deferred that fires when the ports are closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import resource
import socket
import time
from collections.abc import Callable
from typing import Any, Protocol, cast

from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.error import CannotListenError
from twisted.internet.task import LoopingCall

from honeyports.halfopen import HalfOpenWatcher, RawReader, enlarge_receive_buffer
from honeyports.listener import (
    ConnectionTable,
    DelayedCall,
    Emit,
    HoneyportDatagramProtocol,
    HoneyportFactory,
    ListenerStats,
    host_address,
)
from honeyports.profiles import PROFILES, profile_name_for
from sensor.config import HoneyportsConfig, port_ranges
from sensor.errors import SensorError
from sensor.neighbours import Neighbours
from sensor.observations import PAYLOAD_LIMIT, HoneyportHit, Touch, Transport

log = logging.getLogger(__name__)

HALF_OPEN_EXPIRY = 75.0
"""Seconds after which a SYN neither accepted nor reset is a touch: past Linux's SYN-ACK retries (63 s with
``tcp_synack_retries`` 5), so a handshake still waiting in an accept queue is never counted twice."""
LISTEN_BACKLOG = 1024
"""Accept queue per TCP port: a burst of connects waits here instead of being dropped."""


class ListeningPort(Protocol):
    """What ``listenTCP``/``listenUDP`` return (Twisted's ``IListeningPort``)."""

    def stopListening(self) -> Deferred[None] | None: ...

    def getHost(self) -> Any: ...


class DatagramPort(ListeningPort, Protocol):
    """What ``listenUDP`` returns: a listening port whose socket can be had (``getHandle``)."""

    def getHandle(self) -> socket.socket: ...


class HoneyportReactor(Protocol):
    """The reactor interfaces the service uses: TCP, UDP, time and file descriptors."""

    def listenTCP(self, port: int, factory: Any, backlog: int = ..., interface: str = ...) -> ListeningPort: ...

    def listenUDP(self, port: int, protocol: Any, interface: str = ...,
                  maxPacketSize: int = ...) -> DatagramPort: ...

    def callLater(self, delay: float, callable: Callable[..., Any], *args: Any,
                  **kw: Any) -> DelayedCall: ...

    def addReader(self, reader: Any) -> None: ...

    def removeReader(self, reader: Any) -> None: ...


def _reason(error: CannotListenError) -> str:
    socket_error = error.socketError
    if isinstance(socket_error, OSError) and socket_error.errno is not None:
        return os.strerror(socket_error.errno).lower()
    return str(socket_error)


def asyncio_reactor(loop: asyncio.AbstractEventLoop) -> Any:
    """Twisted's asyncio reactor, installed on ``loop`` unless an asyncio reactor already is; raise
    ``SensorError`` when another kind of reactor is installed."""
    from twisted.internet import asyncioreactor
    from twisted.internet.error import ReactorAlreadyInstalledError

    with contextlib.suppress(ReactorAlreadyInstalledError):
        asyncioreactor.install(loop)  # type: ignore[no-untyped-call]
    from twisted.internet import reactor

    if not isinstance(reactor, asyncioreactor.AsyncioSelectorReactor):
        raise SensorError(f"a {type(reactor).__name__} reactor is already installed; asyncio's is needed")
    return reactor


def raise_descriptor_limit() -> int:
    """Lift the soft open-file limit to the hard one (a thousand ports and their connections need it); return
    the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError) as error:
            log.warning("cannot raise the open file limit from %s to %s: %s", soft, hard, error)
    return soft


class HoneyportService:
    """All honeyport listeners of one node, feeding ``emit`` with :class:`HoneyportHit` observations."""

    def __init__(self, config: HoneyportsConfig, emit: Emit, node: str, reactor: Any, *,
                 clock: Callable[[], float] = time.time, half_open: bool = True) -> None:
        self.config = config
        neighbours = Neighbours()
        self.emit: Emit = lambda hit: emit(neighbours.stamped(hit))
        """Hands each hit on, stamped with the MAC this host's neighbour table has for its source."""
        self.node = node
        self._any_reactor = reactor
        self.reactor = cast(HoneyportReactor, reactor)
        self.clock = clock
        self.half_open_wanted = half_open
        self.watcher: HalfOpenWatcher | None = None
        self.table = ConnectionTable(config.max_connections, config.max_connections_per_source,
                                     config.idle_timeout, config.read_limit, self._handshake_completed)
        self.ports: list[tuple[Transport, str, ListeningPort]] = []
        self._readers: list[RawReader] = []
        self._expiry: LoopingCall | None = None

    @property
    def stats(self) -> ListenerStats:
        """Counters of every listener of this node."""
        return self.table.stats

    def bound(self) -> list[tuple[Transport, str, int]]:
        """(transport, address, port) of every open listener; the real port when 0 was configured."""
        return [(transport, address, int(port.getHost().port)) for transport, address, port in self.ports]

    def start(self) -> list[str]:
        """Open every listener; return the problems met (empty when all opened)."""
        problems = [f"honeyports.profiles: port {port}: unknown profile {name!r} (known: {', '.join(PROFILES)})"
                    for port, name in sorted(self.config.profiles.items()) if name not in PROFILES]
        problems += self._check_descriptors()
        refused: dict[tuple[str, str, str], list[int]] = {}
        for address in self.config.listen:
            for port in self.config.tcp:
                self._refused(refused, "tcp", address, port, self._listen_tcp(address, port))
            for port in self.config.udp:
                self._refused(refused, "udp", address, port, self._listen_udp(address, port))
        problems += [f"{transport} {_endpoint(address, port_ranges(ports))}: {reason}"
                     + (f" ({len(ports)} ports)" if len(ports) > 1 else "")
                     for (transport, address, reason), ports in refused.items()]
        self._log_listening()
        if self.half_open_wanted and self.config.tcp:
            problems += self._watch_half_open()
        return problems

    @staticmethod
    def _refused(refused: dict[tuple[str, str, str], list[int]], transport: str, address: str, port: int,
                 reason: str | None) -> None:
        if reason is not None:
            refused.setdefault((transport, address, reason), []).append(port)

    def _log_listening(self) -> None:
        """One line per address and transport, its ports as ranges (the ports the system chose for 0)."""
        bound: dict[tuple[str, str], list[int]] = {}
        for protocol, address, port in self.bound():
            bound.setdefault((address, protocol.value), []).append(port)
        for (address, transport), ports in bound.items():
            if len(ports) == 1:
                log.info("honeyport listening on %s/%s", _endpoint(address, ports[0]), transport)
            else:
                log.info("honeyports listening on %s/%s (%d ports)", _endpoint(address, port_ranges(ports)),
                         transport, len(ports))

    def stop(self) -> Deferred[None]:
        """Close every listener and the half-open watcher; fires when the ports are closed."""
        if self._expiry is not None and self._expiry.running:
            self._expiry.stop()
        for reader in self._readers:
            reader.read_all()
            self.reactor.removeReader(reader)
            reader.connectionLost(None)
        self._readers.clear()
        if self.watcher is not None:
            self.watcher.flush()
        stopping = [d for _, _, port in self.ports if (d := port.stopListening()) is not None]
        self.ports.clear()
        done: Deferred[None] = Deferred()
        DeferredList(stopping, consumeErrors=True).addBoth(lambda _: done.callback(None))
        return done

    # -- listeners ----------------------------------------------------------------------------------------

    def _profile(self, port: int) -> str:
        name = profile_name_for(port, self.config.profiles)
        return name if name in PROFILES else "generic"

    def _listen_tcp(self, address: str, port: int) -> str | None:
        """Open one TCP listener; why it could not be opened, or None."""
        profile = PROFILES[self._profile(port)]
        factory = HoneyportFactory(profile, self.table, self.emit, self.node, self.clock, self.reactor,
                                   (address, port))
        try:
            listening = self.reactor.listenTCP(port, factory, backlog=LISTEN_BACKLOG, interface=address)
        except CannotListenError as error:
            return _reason(error)
        self.ports.append((Transport.TCP, address, listening))
        return None

    def _listen_udp(self, address: str, port: int) -> str | None:
        """Open one UDP listener; why it could not be opened, or None."""
        profile = PROFILES[self._profile(port)]
        protocol = HoneyportDatagramProtocol(profile, self.emit, self.node, self.clock, self.table.stats,
                                             PAYLOAD_LIMIT)
        try:
            listening = self.reactor.listenUDP(port, protocol, interface=address)
        except CannotListenError as error:
            return _reason(error)
        enlarge_receive_buffer(listening.getHandle())
        self.ports.append((Transport.UDP, address, listening))
        return None

    def _check_descriptors(self) -> list[str]:
        """Raise the soft open-file limit to the hard one when the listeners and connections need more; a
        problem when even that is too low."""
        needed = len(self.config.listen) * (len(self.config.tcp) + len(self.config.udp))
        needed += self.config.max_connections + 64
        soft = raise_descriptor_limit()
        if soft != resource.RLIM_INFINITY and soft < needed:
            return [f"open file limit {soft} is below the {needed} descriptors needed for the listeners and "
                    "max_connections; raise it (ulimit -n) or lower max_connections"]
        return []

    # -- half-open handshakes -----------------------------------------------------------------------------

    def _watch_half_open(self) -> list[str]:
        wildcard = any(host_address(a).is_unspecified for a in self.config.listen)
        addresses = () if wildcard else tuple(str(host_address(a)) for a in self.config.listen)
        self.watcher = HalfOpenWatcher(self.config.tcp, addresses, self._half_open_touch,
                                       expire_after=HALF_OPEN_EXPIRY)
        families = {socket.AF_INET6 if ":" in a else socket.AF_INET for a in self.config.listen}
        problems = []
        for family in sorted(families):
            try:
                reader = RawReader(family, self.watcher, self.clock)
            except OSError as error:
                why = "needs CAP_NET_RAW" if error.errno in (errno.EPERM, errno.EACCES) else error.strerror
                problems.append(f"half-open (SYN scan) detection off for {family.name}: {why}")
                continue
            self._readers.append(reader)
            self.reactor.addReader(reader)
        if self._readers:
            self._expiry = LoopingCall(self._expire_pending)
            self._expiry.clock = self._any_reactor
            self._expiry.start(1.0, now=False)
        else:
            self.watcher = None
        return problems

    def _expire_pending(self) -> None:
        if self.watcher is not None:
            self.watcher.expire(self.clock())

    def _handshake_completed(self, source: str, source_port: int, target: str, target_port: int) -> None:
        if self.watcher is not None:
            self.watcher.completed((source, source_port, target, target_port), self.clock())

    def _half_open_touch(self, source: str, source_port: int, target: str, target_port: int, ts: float) -> None:
        self.table.stats.hits += 1
        self.table.stats.half_open += 1
        self.emit(HoneyportHit(ts=ts, source=host_address(source), source_port=source_port,
                               target=host_address(target), target_port=target_port, transport=Transport.TCP,
                               profile=self._profile(target_port), node=self.node, touch=Touch.HALF_OPEN))


def _endpoint(address: str, port: int | str) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
