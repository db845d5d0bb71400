"""Half-open touches: the SYN scans (``nmap -sS``, masscan) that never reach ``accept()``.

A SYN scanner sends SYN, gets the kernel's SYN-ACK from the honeyport's listening socket, and answers with
RST (RFC 9293 §3.5.3: a reset for a segment that acknowledges nothing it sent, so the RST carries no ACK
flag) — the handshake never completes and user space never sees it. This watcher reads a copy of inbound
TCP segments from a raw socket (``CAP_NET_RAW``), filtered in the kernel by a classic BPF program to SYNs
without ACK and RSTs, and keeps the SYNs addressed to honeyports as *pending* handshakes:

* the listener accepted the connection → :meth:`HalfOpenWatcher.completed` forgets it (the listener
  counted it);
* a RST without ACK arrives for it → a half-open touch, reported at once;
* neither happens within ``expire_after`` seconds → a touch too (the SYN-ACK was sent and never answered).

So every SYN to a honeyport is counted exactly once, by the listener or here. Pending state is bounded
(``max_pending``; the oldest is reported and dropped when full). Without ``CAP_NET_RAW`` the watcher is
off and only completed handshakes are counted.
"""

from __future__ import annotations

import ctypes
import logging
import socket
import struct
from collections import OrderedDict
from collections.abc import Callable, Collection

log = logging.getLogger(__name__)

Key = tuple[str, int, str, int]
"""(source address, source port, target address, target port) of a handshake."""

Touch = Callable[[str, int, str, int, float], None]
"""Called with the handshake's key and its SYN's time."""

_SYN, _RST, _ACK = 0x02, 0x04, 0x10
_SO_ATTACH_FILTER = 26
_IPV6_RECVPKTINFO = 49
_IPV6_PKTINFO = 50
_SO_RCVBUFFORCE = 33
RECEIVE_BUFFER = 8 << 20
"""Bytes of kernel buffer for the raw socket (and the UDP honeyports): a burst of SYNs or datagrams waits
there while the loop is busy."""


def _bpf(ipv4: bool) -> list[tuple[int, int, int, int]]:
    """Classic BPF: accept TCP segments that are RST, or SYN without ACK; drop the rest.

    On an IPv4 raw socket the program sees the IP header first (its length from the IHL nibble); on an
    IPv6 raw socket it sees the TCP header only.
    """
    load_flags = [(0xB1, 0, 0, 0), (0x50, 0, 0, 13)] if ipv4 else [(0x30, 0, 0, 13)]
    return [
        *load_flags,
        (0x45, 2, 0, _RST),           # jset RST → accept
        (0x54, 0, 0, _SYN | _ACK),    # A &= SYN|ACK
        (0x15, 0, 1, _SYN),           # jeq SYN → accept, else drop
        (0x06, 0, 0, 0x40000),        # accept
        (0x06, 0, 0, 0),              # drop
    ]


def enlarge_receive_buffer(sock: socket.socket, size: int = RECEIVE_BUFFER) -> None:
    """Give ``sock`` a kernel receive buffer of ``size`` bytes (past ``net.core.rmem_max`` with
    ``CAP_NET_ADMIN``, else as far as it allows), so a burst waits there while the event loop is busy."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE, size)
    except PermissionError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)


def _attach_filter(sock: socket.socket, program: list[tuple[int, int, int, int]]) -> None:
    code = b"".join(struct.pack("HBBI", *instruction) for instruction in program)
    buffer = ctypes.create_string_buffer(code)
    fprog = struct.pack("HL", len(program), ctypes.addressof(buffer))
    sock.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_FILTER, fprog)


def parse_ipv4(packet: bytes) -> tuple[Key, int] | None:
    """(key, TCP flags) of an IPv4 TCP segment as read from a raw socket; None when truncated."""
    if len(packet) < 20:
        return None
    header = (packet[0] & 0x0F) * 4
    if len(packet) < header + 14:
        return None
    source_port, target_port = struct.unpack_from(">HH", packet, header)
    key = (socket.inet_ntop(socket.AF_INET, packet[12:16]), source_port,
           socket.inet_ntop(socket.AF_INET, packet[16:20]), target_port)
    return key, packet[header + 13]


def parse_ipv6(segment: bytes, source: str, target: str) -> tuple[Key, int] | None:
    """(key, TCP flags) of a TCP segment read from an IPv6 raw socket (which strips the IPv6 header)."""
    if len(segment) < 14:
        return None
    source_port, target_port = struct.unpack_from(">HH", segment)
    return (source.partition("%")[0], source_port, target, target_port), segment[13]


class HalfOpenWatcher:
    """Reads inbound SYN/RST segments for the honeyports' ports; reports handshakes never accepted.

    It is a Twisted ``IReadDescriptor`` per socket (registered with ``reactor.addReader``); the pure
    decision logic is :meth:`segment` and :meth:`expire`, which take the time as an argument.
    """

    def __init__(self, ports: Collection[int], addresses: Collection[str], touch: Touch,
                 expire_after: float = 75.0, max_pending: int = 65536) -> None:
        self.ports = frozenset(ports)
        self.addresses = frozenset(addresses)
        """Target addresses watched; empty: any (the honeyports listen on a wildcard address)."""
        self.touch = touch
        self.expire_after = expire_after
        self.max_pending = max_pending
        self.pending: OrderedDict[Key, float] = OrderedDict()
        self.accepted_first: OrderedDict[Key, float] = OrderedDict()
        """Handshakes the listener accepted before this watcher read their SYN (two descriptors, no order).
        Remembered as long as a SYN waits for its accept (``expire_after``): in overload the raw socket's
        buffer can hold SYNs for many seconds, and a SYN read after its accept was forgotten would become
        a second touch."""

    # -- pure decision logic ---------------------------------------------------------------------------

    def segment(self, key: Key, flags: int, now: float) -> None:
        """Take one inbound segment (already known to be SYN-without-ACK or RST)."""
        if key[3] not in self.ports or (self.addresses and key[2] not in self.addresses):
            return
        if flags & _RST:
            if not flags & _ACK:
                syn_time = self.pending.pop(key, None)
                if syn_time is not None:
                    self._report(key, syn_time)
            return
        if key in self.pending or self.accepted_first.pop(key, None) is not None:
            return
        if len(self.pending) >= self.max_pending:
            oldest, syn_time = self.pending.popitem(last=False)
            self._report(oldest, syn_time)
        self.pending[key] = now

    def completed(self, key: Key, now: float) -> None:
        """The listener accepted this handshake: it counted it, so this watcher must not, even when the SYN
        is read after the accept."""
        if self.pending.pop(key, None) is None:
            if len(self.accepted_first) >= self.max_pending:
                self.accepted_first.popitem(last=False)
            self.accepted_first[key] = now

    def expire(self, now: float) -> None:
        """Report the SYNs that got neither an accept nor a reset within ``expire_after`` seconds."""
        cutoff = now - self.expire_after
        while self.accepted_first and next(iter(self.accepted_first.values())) <= cutoff:
            self.accepted_first.popitem(last=False)
        while self.pending:
            key, syn_time = next(iter(self.pending.items()))
            if syn_time > cutoff:
                break
            del self.pending[key]
            self._report(key, syn_time)

    def flush(self) -> None:
        """Report every pending SYN (shutdown): a handshake still waiting in the kernel's accept queue
        when the listeners close was a touch all the same."""
        while self.pending:
            key, syn_time = self.pending.popitem(last=False)
            self._report(key, syn_time)
        self.accepted_first.clear()

    def _report(self, key: Key, syn_time: float) -> None:
        self.touch(key[0], key[1], key[2], key[3], syn_time)


class RawReader:
    """One raw socket (IPv4 or IPv6) feeding a :class:`HalfOpenWatcher`: a Twisted ``IReadDescriptor``."""

    _BATCH = 512

    def __init__(self, family: socket.AddressFamily, watcher: HalfOpenWatcher, clock: Callable[[], float]) -> None:
        self.family = family
        self.watcher = watcher
        self.clock = clock
        self.sock = socket.socket(family, socket.SOCK_RAW, socket.IPPROTO_TCP)
        try:
            self.sock.setblocking(False)
            enlarge_receive_buffer(self.sock)
            _attach_filter(self.sock, _bpf(family == socket.AF_INET))
            if family == socket.AF_INET6:
                self.sock.setsockopt(socket.IPPROTO_IPV6, _IPV6_RECVPKTINFO, 1)
        except OSError:
            self.sock.close()
            raise

    def fileno(self) -> int:
        """The raw socket's descriptor."""
        return self.sock.fileno()

    def logPrefix(self) -> str:
        """Name in Twisted's logs."""
        return "honeyports-halfopen"

    def doRead(self) -> None:
        """Drain up to a batch of segments."""
        self._read(self._BATCH)

    def read_all(self, limit: int = 1 << 20) -> None:
        """Drain every queued segment (up to ``limit``): the last read before the watcher is flushed."""
        self._read(limit)

    def _read(self, limit: int) -> None:
        now = self.clock()
        for _ in range(limit):
            try:
                parsed = parse_ipv4(self.sock.recv(128)) if self.family == socket.AF_INET else self._read_ipv6()
            except (BlockingIOError, InterruptedError):
                return
            if parsed is not None:
                self.watcher.segment(parsed[0], parsed[1], now)

    def _read_ipv6(self) -> tuple[Key, int] | None:
        segment, ancillary, _, sender = self.sock.recvmsg(128, socket.CMSG_SPACE(20))
        for level, kind, data in ancillary:
            if level == socket.IPPROTO_IPV6 and kind == _IPV6_PKTINFO and len(data) >= 16:
                return parse_ipv6(segment, sender[0], socket.inet_ntop(socket.AF_INET6, data[:16]))
        return None

    def connectionLost(self, reason: object) -> None:
        """Close the socket."""
        self.sock.close()
