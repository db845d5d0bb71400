"""The mDNS watcher: every question multicast on UDP 5353 (RFC 6762) becomes an :class:`MdnsQuery`, and a
host's announcement of its own addresses an :class:`MdnsHost` (so one host seen over IPv4 and IPv6 is one
scanner).

The watcher is a passive listener, not a responder. It binds the mDNS groups themselves
(``224.0.0.251:5353``, and ``[ff02::fb%if]:5353`` per interface) with ``SO_REUSEADDR``/``SO_REUSEPORT``,
so it shares the port with a running avahi-daemon or mDNSResponder and never takes their unicast
traffic. ``IP_MULTICAST_ALL``/``IPV6_MULTICAST_ALL`` are cleared, so only the configured interfaces'
traffic arrives. Every datagram is parsed with zeroconf's ``DNSIncoming``; zeroconf's own listener cannot
be used, because it drops queries unless a service is registered and de-duplicates identical packets from
different senders.

The source address and port come from the socket (``recvfrom``), never from the payload. Packets sent
from one of this host's own addresses (our decoys, a local avahi-daemon) are ignored. Malformed packets
are counted and dropped. A packet is parsed only within the parsing budget of its source and of the link
(:mod:`sensor.mdns.budget`), and one wakeup of the loop reads at most :data:`_DATAGRAMS_PER_WAKEUP`
datagrams, so a flood of 64-question packets cannot stall the loop the honeyports share.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
import struct
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, ip_address

import ifaddr
from zeroconf import IncomingDecodeError
from zeroconf._dns import DNSAddress
from zeroconf._protocol.incoming import DNSIncoming

from sensor.errors import SensorError
from sensor.mdns.budget import ParseBudget, packet_cost
from sensor.observations import MDNS_PORT, IPAddress, MdnsHost, MdnsQuery

log = logging.getLogger(__name__)

MDNS_GROUP_V4 = IPv4Address("224.0.0.251")
MDNS_GROUP_V6 = IPv6Address("ff02::fb")
MAX_HOSTS_PER_PACKET = 4
"""Names whose addresses one response may announce for its sender."""
MAX_ADDRESSES_PER_HOST = 16
"""A name announced with more addresses than this is not one host telling its own."""
MAX_QUESTIONS = 64
"""Questions taken from one packet; the rest are counted in :attr:`WatcherStats.questions_dropped`."""
_DATAGRAMS_PER_WAKEUP = 16
_RECV_SIZE = 65535
_IP_MULTICAST_ALL = getattr(socket, "IP_MULTICAST_ALL", 49)
_IPV6_MULTICAST_ALL = getattr(socket, "IPV6_MULTICAST_ALL", 29)
_TYPE_A, _TYPE_AAAA = 1, 28
_DECODE_ERRORS = (IncomingDecodeError, IndexError, ValueError, struct.error, RecursionError)

QueryEmitter = Callable[[MdnsQuery | MdnsHost], object]


class WatcherError(SensorError):
    """The watcher cannot listen on any of the configured interfaces."""


class MalformedPacketError(ValueError):
    """A datagram on port 5353 that is not a DNS message."""


@dataclass(slots=True)
class WatcherStats:
    """What the watcher saw; an operator (and the fuzz tests) read these."""

    packets: int = 0
    queries: int = 0
    """Query packets (QR=0) from other hosts."""
    questions: int = 0
    """Observations emitted: one per question."""
    questions_dropped: int = 0
    without_questions: int = 0
    """Responses (announcements, answers) and queries with no question: nothing to observe."""
    own: int = 0
    """Packets from one of this host's own addresses, ignored."""
    announcements: int = 0
    """Observations of a host announcing its own addresses (from responses)."""
    malformed: int = 0
    receive_errors: int = 0
    over_budget: int = 0
    """Packets dropped unparsed: their source, or the link, had spent its parsing budget."""


def questions_of(data: bytes, source: IPAddress, source_port: int, target: IPAddress, ts: float,
                 limit: int = MAX_QUESTIONS) -> tuple[list[MdnsQuery], int]:
    """The questions of one datagram as observations, and how many beyond ``limit`` were left out.

    A response (QR=1) has no questions worth observing and gives ``([], 0)``. zeroconf exports
    ``DNSIncoming`` only from its ``_protocol`` package: it is the parser the issue asks for. Raise
    :class:`MalformedPacketError` when the datagram is not a DNS message.
    """
    packet = _parse(data, source, source_port, ts)
    questions = packet.questions if packet.is_query() else []
    observations = [
        MdnsQuery(
            ts=ts,
            source=source,
            source_port=source_port,
            name=question.name.rstrip("."),
            qtype=_type_name(question.type, question.type_label),
            unicast_response=bool(question.unicast),
            legacy_unicast=source_port != MDNS_PORT,
            target=target,
            via="watcher",
        )
        for question in questions[:limit]
    ]
    return observations, max(0, len(questions) - limit)


def _parse(data: bytes, source: IPAddress, source_port: int, ts: float) -> DNSIncoming:
    try:
        packet = DNSIncoming(data, (str(source), source_port), now=ts * 1000.0)
        valid = packet.valid
    except _DECODE_ERRORS as error:
        raise MalformedPacketError(str(error)) from error
    if not valid:
        raise MalformedPacketError(f"{len(data)} bytes are not a DNS message")
    return packet


def hosts_of(data: bytes, source: IPAddress, source_port: int, ts: float) -> list[MdnsHost]:
    """The names a response announces with the sender's own address among their A/AAAA records (a host
    telling the link its addresses), at most :data:`MAX_HOSTS_PER_PACKET` of them. A query gives ``[]``.
    Raise :class:`MalformedPacketError` when the datagram is not a DNS message."""
    packet = _parse(data, source, source_port, ts)
    if packet.is_query():
        return []
    try:
        records = packet.answers()
    except _DECODE_ERRORS as error:
        raise MalformedPacketError(str(error)) from error
    names: dict[str, set[IPAddress]] = {}
    for record in records:
        if isinstance(record, DNSAddress) and record.type in (_TYPE_A, _TYPE_AAAA) and len(names) < 64:
            with contextlib.suppress(ValueError):
                names.setdefault(record.name.lower().rstrip("."), set()).add(ip_address(record.address))
    return [MdnsHost(ts=ts, source=source, name=name, addresses=tuple(sorted(found, key=lambda a: (a.version, a))))
            for name, found in names.items() if source in found and len(found) <= MAX_ADDRESSES_PER_HOST
            ][:MAX_HOSTS_PER_PACKET]


def _type_name(number: int, label: str) -> str:
    """``PTR``, ``SRV`` … as Zeek's dns.log writes them; ``TYPE65`` style for types zeroconf does not name."""
    return f"TYPE{number}" if label.startswith("unknown") else label.upper()


def _adapter_addresses(names: Sequence[str] | None = None) -> Iterator[IPAddress]:
    """The addresses of this host's interfaces (only the named ones, when ``names`` is given), scope dropped."""
    for adapter in ifaddr.get_adapters():
        if names is not None and adapter.nice_name not in names:
            continue
        for entry in adapter.ips:
            text = entry.ip if isinstance(entry.ip, str) else entry.ip[0]
            yield ip_address(text.partition("%")[0])


def local_addresses() -> frozenset[IPAddress]:
    """Every address of every interface of this host (our own packets come from these)."""
    return frozenset(_adapter_addresses())


def interface_addresses(names: Sequence[str]) -> list[IPAddress]:
    """The addresses of the named interfaces, IPv4 first."""
    return sorted(_adapter_addresses(names), key=lambda address: address.version)


def _listed(addresses: frozenset[IPAddress], most: int = 8) -> str:
    ordered = sorted(addresses, key=lambda address: (address.version, address))
    text = ", ".join(map(str, ordered[:most])) or "none"
    return text + (f" and {len(ordered) - most} more" if len(ordered) > most else "")


class MdnsWatcher:
    """Passive multicast listener on UDP 5353 of the configured interfaces, on an asyncio loop."""

    def __init__(self, interfaces: Sequence[str], emit: QueryEmitter, *,
                 clock: Callable[[], float] = time.time,
                 own_addresses: Callable[[], frozenset[IPAddress]] = local_addresses) -> None:
        self.interfaces = tuple(interfaces)
        self.stats = WatcherStats()
        self._emit = emit
        self._clock = clock
        self._own_addresses = own_addresses
        self._own: frozenset[IPAddress] = frozenset()
        self._budget = ParseBudget()
        self._sockets: list[tuple[socket.socket, IPAddress]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self.watched: tuple[str, ...] = ()

    # -- life cycle -----------------------------------------------------------------------------

    def start(self, loop: asyncio.AbstractEventLoop) -> tuple[str, ...]:
        """Open the sockets and read them on ``loop``; return the interfaces watched.

        Raise :class:`WatcherError` when no interface can be watched (each reason is logged).
        """
        self.refresh()
        indexes: dict[str, int] = {}
        for name in self.interfaces:
            try:
                indexes[name] = socket.if_nametoindex(name)
            except OSError as error:
                log.error("mdns: interface %s cannot be watched: %s", name, error.strerror or error)
        watched = {name for name in indexes if self._open_v6(name, indexes[name])}
        watched |= self._open_v4(indexes)
        if not watched:
            self.close()
            wanted = ", ".join(self.interfaces) or "(none configured)"
            raise WatcherError(f"mDNS watcher: no interface can be watched (wanted: {wanted})")
        self._loop = loop
        for sock, group in self._sockets:
            loop.add_reader(sock.fileno(), self._readable, sock, group)
        self.watched = tuple(name for name in self.interfaces if name in watched)
        log.info("mdns: watching %s", ", ".join(self.watched))
        return self.watched

    def close(self) -> None:
        """Stop reading and close every socket."""
        for sock, _ in self._sockets:
            if self._loop is not None and not self._loop.is_closed():
                self._loop.remove_reader(sock.fileno())
            sock.close()
        self._sockets.clear()
        self._loop = None

    def refresh(self) -> None:
        """Re-read this host's own addresses (call it now and then: addresses come and go)."""
        try:
            own = self._own_addresses()
        except OSError as error:
            log.warning("mdns: own addresses not refreshed: %s", error)
            return
        if self._own and own != self._own:
            log.info("mdns: this host's own addresses, whose packets are not observed, changed: added %s; removed %s",
                     _listed(own - self._own), _listed(self._own - own))
        self._own = own

    # -- the packet path ------------------------------------------------------------------------

    def datagram(self, data: bytes, source: IPAddress, source_port: int, target: IPAddress) -> int:
        """Handle one datagram received from ``source``; return the number of observations emitted."""
        self.stats.packets += 1
        if source in self._own:
            self.stats.own += 1
            return 0
        now = self._clock()
        if not self._budget.allows(source, packet_cost(data), now):
            self.stats.over_budget += 1
            if self.stats.over_budget == 1 or self.stats.over_budget % 10_000 == 0:
                log.warning("mdns: %s sends more than its parsing budget (or the link is flooded): packets dropped "
                            "unparsed (%d so far)", source, self.stats.over_budget)
            return 0
        try:
            observations, dropped = questions_of(data, source, source_port, target, now)
        except MalformedPacketError as error:
            self.stats.malformed += 1
            if self.stats.malformed == 1 or self.stats.malformed % 1000 == 0:
                log.info("mdns: malformed packet from %s:%d dropped (%d so far): %s", source, source_port,
                         self.stats.malformed, error)
            return 0
        if not observations and not dropped:
            self.stats.without_questions += 1
            return self._hosts(data, source, source_port)
        self.stats.queries += 1
        self.stats.questions += len(observations)
        self.stats.questions_dropped += dropped
        for observation in observations:
            self._emit(observation)
        return len(observations)

    def _hosts(self, data: bytes, source: IPAddress, source_port: int) -> int:
        """Emit what a response says of its sender's own addresses; the number of observations."""
        try:
            hosts = hosts_of(data, source, source_port, self._clock())
        except MalformedPacketError:
            self.stats.malformed += 1
            return 0
        self.stats.announcements += len(hosts)
        for host in hosts:
            self._emit(host)
        return len(hosts)

    def _readable(self, sock: socket.socket, group: IPAddress) -> None:
        for _ in range(_DATAGRAMS_PER_WAKEUP):
            try:
                data, peer = sock.recvfrom(_RECV_SIZE)
            except BlockingIOError:
                return
            except OSError as error:
                if error.errno != errno.EINTR:
                    self.stats.receive_errors += 1
                    log.warning("mdns: receive failed: %s", error)
                return
            try:
                source = ip_address(str(peer[0]).partition("%")[0])
            except ValueError:
                self.stats.malformed += 1
                continue
            self.datagram(data, source, int(peer[1]), group)

    # -- sockets --------------------------------------------------------------------------------

    def _open_v4(self, indexes: dict[str, int]) -> set[str]:
        if not indexes:
            return set()
        try:
            sock = _reusable_socket(socket.AF_INET)
        except OSError as error:
            log.error("mdns: no IPv4 socket: %s", error)
            return set()
        joined: set[str] = set()
        try:
            sock.setsockopt(socket.IPPROTO_IP, _IP_MULTICAST_ALL, 0)
            sock.bind((str(MDNS_GROUP_V4), MDNS_PORT))
        except OSError as error:
            log.error("mdns: cannot bind %s:%d: %s", MDNS_GROUP_V4, MDNS_PORT, error)
            sock.close()
            return set()
        for name, index in indexes.items():
            request = struct.pack("=4s4si", MDNS_GROUP_V4.packed, bytes(4), index)
            try:
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, request)
            except OSError as error:
                log.warning("mdns: cannot join %s on %s: %s", MDNS_GROUP_V4, name, error)
                continue
            joined.add(name)
        if joined:
            self._sockets.append((sock, MDNS_GROUP_V4))
        else:
            sock.close()
        return joined

    def _open_v6(self, name: str, index: int) -> bool:
        try:
            sock = _reusable_socket(socket.AF_INET6)
        except OSError as error:
            log.warning("mdns: no IPv6 socket for %s: %s", name, error)
            return False
        try:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.setsockopt(socket.IPPROTO_IPV6, _IPV6_MULTICAST_ALL, 0)
            sock.bind((str(MDNS_GROUP_V6), MDNS_PORT, 0, index))
            request = MDNS_GROUP_V6.packed + struct.pack("=I", index)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, request)
        except OSError as error:
            log.warning("mdns: IPv6 not watched on %s: %s", name, error)
            sock.close()
            return False
        self._sockets.append((sock, MDNS_GROUP_V6))
        return True


def _reusable_socket(family: socket.AddressFamily) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock
