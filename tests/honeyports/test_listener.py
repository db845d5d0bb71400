"""The factory's limits and the hits' identity, on ``StringTransport``/``MemoryReactorClock``; the
half-open watcher's decisions as a pure table; the service's start-up problems on a memory reactor."""

from __future__ import annotations

import ipaddress
import socket
import struct

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.error import CannotListenError
from twisted.internet.testing import MemoryReactorClock, StringTransport

from honeyports.halfopen import HalfOpenWatcher, parse_ipv4, parse_ipv6
from honeyports.listener import (
    TOUCH_WAIT,
    ConnectionTable,
    HoneyportDatagramProtocol,
    HoneyportFactory,
    ListenerStats,
)
from honeyports.profiles import PROFILES
from honeyports.service import HoneyportService
from sensor.config import HoneyportsConfig
from sensor.observations import HoneyportHit, Touch, Transport


def _factory(hits: list[HoneyportHit], clock: MemoryReactorClock, per_source: int = 2, total: int = 3,
             timeout: float = 5.0) -> HoneyportFactory:
    table = ConnectionTable(total, per_source, timeout, read_limit=64)
    return HoneyportFactory(PROFILES["ssh"], table, hits.append, "node-7", clock.seconds, clock, ("0.0.0.0", 22))


def _connect(factory: HoneyportFactory, peer: str, port: int = 50000,
             host: str = "10.0.0.1") -> tuple[object, StringTransport]:
    family = IPv6Address if ":" in peer else IPv4Address
    transport = StringTransport(hostAddress=family("TCP", host, 22), peerAddress=family("TCP", peer, port))
    protocol = factory.buildProtocol(transport.getPeer())
    protocol.makeConnection(transport)
    return protocol, transport


def test_hit_identity_comes_from_the_transport_not_the_payload() -> None:
    hits: list[HoneyportHit] = []
    clock = MemoryReactorClock()
    clock.advance(1234.5)
    protocol, _transport = _connect(_factory(hits, clock), "10.1.2.3", 41000)
    clock.advance(0.3)
    protocol.dataReceived(b"SSH-2.0-x source=10.6.6.6 port=1\r\n")  # type: ignore[attr-defined]
    assert hits == [HoneyportHit(ts=1234.5, source=ipaddress.ip_address("10.1.2.3"), source_port=41000,
                                 target=ipaddress.ip_address("10.0.0.1"), target_port=22, transport=Transport.TCP,
                                 profile="ssh", node="node-7", touch=Touch.CONNECT,
                                 payload=b"SSH-2.0-x source=10.6.6.6 port=1\r\n")], \
        "one hit, stamped at accept, with the first bytes; its identity from the transport"
    protocol.connectionLost(None)  # type: ignore[attr-defined]
    assert len(hits) == 1, "no follow-up: the bytes came with the touch"


def test_a_touch_waits_up_to_a_second_for_the_first_bytes_and_late_bytes_follow_at_close() -> None:
    hits: list[HoneyportHit] = []
    clock = MemoryReactorClock()
    factory = _factory(hits, clock)
    silent, _ = _connect(factory, "10.1.2.4")
    clock.advance(TOUCH_WAIT - 0.01)
    assert hits == [], "still waiting for the client's first bytes"
    clock.advance(0.01)
    assert [(h.ts, h.payload, h.follow_up) for h in hits] == [(0.0, b"", False)], "reported without them at 1 s"
    clock.advance(4.0)
    silent.dataReceived(b"GET / HTTP/1.0\r\n\r\n")  # type: ignore[attr-defined]
    silent.connectionLost(None)  # type: ignore[attr-defined]
    assert [(h.ts, h.payload, h.follow_up) for h in hits[1:]] == [(5.0, b"GET / HTTP/1.0\r\n\r\n", True)]
    hits.clear()
    closing, _ = _connect(factory, "10.1.2.5")
    closing.connectionLost(None)  # type: ignore[attr-defined]
    assert [(h.payload, h.follow_up) for h in hits] == [(b"", False)], "nc -z: reported at close, once"
    clock.advance(2 * TOUCH_WAIT)
    assert len(hits) == 1


def test_ipv4_mapped_and_scoped_ipv6_peers_are_normalised() -> None:
    hits: list[HoneyportHit] = []
    clock = MemoryReactorClock()
    factory = _factory(hits, clock, per_source=10, total=10)
    _connect(factory, "::ffff:10.1.2.3", host="::ffff:10.0.0.1")
    _connect(factory, "fe80::1%eth0", host="fe80::2")
    clock.advance(TOUCH_WAIT)
    assert [str(h.source) for h in hits] == ["10.1.2.3", "fe80::1"]
    assert str(hits[0].target) == "10.0.0.1"


def test_per_source_cap_counts_then_aborts_and_slots_come_back() -> None:
    hits: list[HoneyportHit] = []
    clock = MemoryReactorClock()
    factory = _factory(hits, clock)
    opened = [_connect(factory, "10.1.1.1", 50000 + i) for i in range(3)]
    assert len(hits) == 1, "a refused connection is a touch, reported at once"
    clock.advance(TOUCH_WAIT)
    assert len(hits) == 3, "the admitted ones after waiting for their first bytes"
    assert [t.disconnecting for _, t in opened] == [False, False, True]
    assert factory.table.stats.refused_source == 1 and factory.table.by_source == {ipaddress.ip_address("10.1.1.1"): 2}
    for protocol, _ in opened:
        protocol.connectionLost(None)  # type: ignore[attr-defined]
    assert factory.table.by_source == {} and factory.table.open_total == 0


def test_total_cap_is_shared_by_all_sources() -> None:
    hits: list[HoneyportHit] = []
    clock = MemoryReactorClock()
    factory = _factory(hits, clock, per_source=5, total=3)
    transports = [_connect(factory, f"10.2.0.{i}")[1] for i in range(5)]
    clock.advance(TOUCH_WAIT)
    assert [t.disconnecting for t in transports] == [False, False, False, True, True]
    assert factory.table.stats.refused_total == 2 and len(hits) == 5


def test_slow_client_is_aborted_at_the_lifetime_limit() -> None:
    clock = MemoryReactorClock()
    factory = _factory([], clock, timeout=5.0)
    protocol, transport = _connect(factory, "10.3.3.3")
    for _ in range(4):
        clock.advance(1.0)
        protocol.dataReceived(b"S")  # type: ignore[attr-defined]  # slowloris: a byte at a time, no newline
    assert not transport.disconnecting
    aborted: list[bool] = []
    transport.abortConnection = lambda: aborted.append(True)  # type: ignore[method-assign]
    clock.advance(1.0)
    assert aborted == [True] and factory.table.stats.timed_out == 1
    protocol.connectionLost(None)  # type: ignore[attr-defined]
    assert factory.open_connections == 0 and not clock.getDelayedCalls()


def test_closed_connection_cancels_its_timer() -> None:
    clock = MemoryReactorClock()
    factory = _factory([], clock)
    protocol, _ = _connect(factory, "10.4.4.4")
    protocol.connectionLost(None)  # type: ignore[attr-defined]
    assert not clock.getDelayedCalls()


def test_many_sources_leave_no_state_behind() -> None:
    clock = MemoryReactorClock()
    factory = _factory([], clock, per_source=1, total=100)
    for i in range(5000):
        protocol, _ = _connect(factory, str(ipaddress.ip_address("10.0.0.0") + i))
        protocol.connectionLost(None)  # type: ignore[attr-defined]
    assert factory.table.by_source == {} and factory.open_connections == 0


def test_udp_hit_and_reply_bounded_by_the_datagram() -> None:
    hits: list[HoneyportHit] = []
    stats = ListenerStats()
    protocol = HoneyportDatagramProtocol(PROFILES["dns"], hits.append, "n", lambda: 5.0, stats, payload_limit=8)
    sent: list[tuple[bytes, tuple[str, int]]] = []

    class Transport_:
        def getHost(self) -> IPv4Address:
            return IPv4Address("UDP", "10.0.0.1", 53)

        def write(self, packet: bytes, addr: tuple[str, int]) -> None:
            sent.append((packet, addr))

    protocol.makeConnection(Transport_())  # type: ignore[arg-type]
    query = bytes.fromhex("abcd01000001000000000000076578616d706c6503636f6d0000010001")
    protocol.datagramReceived(query, ("10.5.5.5", 5353))
    protocol.datagramReceived(b"\x00", ("10.5.5.5", 5353))
    assert [(str(h.source), h.source_port, h.target_port, h.transport, h.payload) for h in hits] == [
        ("10.5.5.5", 5353, 53, Transport.UDP, query[:8]), ("10.5.5.5", 5353, 53, Transport.UDP, b"\x00")]
    assert len(sent) == 1 and len(sent[0][0]) == len(query) and sent[0][1] == ("10.5.5.5", 5353)
    assert stats.datagram_bytes_out <= stats.datagram_bytes_in


# -- half-open watcher ---------------------------------------------------------------------------------

SYN, RST, ACK = 0x02, 0x04, 0x10
KEY = ("10.9.9.9", 40000, "10.0.0.1", 22)


def _watcher(max_pending: int = 100) -> tuple[HalfOpenWatcher, list[tuple[str, int, str, int, float]]]:
    touches: list[tuple[str, int, str, int, float]] = []
    watcher = HalfOpenWatcher({22, 80}, {"10.0.0.1"}, lambda *t: touches.append(t), expire_after=10.0,
                              max_pending=max_pending)
    return watcher, touches


def test_syn_then_reset_without_ack_is_one_half_open_touch() -> None:
    watcher, touches = _watcher()
    watcher.segment(KEY, SYN, 1.0)
    watcher.segment(KEY, SYN, 1.5)  # retransmitted SYN: same handshake
    watcher.segment(KEY, RST, 1.6)
    watcher.segment(KEY, RST, 1.7)
    assert touches == [(*KEY, 1.0)] and not watcher.pending


def test_accepted_handshake_is_left_to_the_listener() -> None:
    watcher, touches = _watcher()
    watcher.segment(KEY, SYN, 1.0)
    watcher.completed(KEY, 1.1)
    watcher.segment(KEY, RST | ACK, 2.0)
    watcher.expire(100.0)
    assert touches == []


def test_accept_seen_before_its_syn_is_not_counted_twice() -> None:
    watcher, touches = _watcher()
    watcher.completed(KEY, 1.0)
    watcher.segment(KEY, SYN, 1.2)
    watcher.expire(100.0)
    assert touches == [] and not watcher.accepted_first


def test_reset_with_ack_is_not_a_syn_scan_but_unanswered_syn_expires_into_a_touch() -> None:
    watcher, touches = _watcher()
    watcher.segment(KEY, SYN, 1.0)
    watcher.segment(KEY, RST | ACK, 1.1)
    watcher.expire(10.5)
    assert touches == []
    watcher.expire(11.0)
    assert touches == [(*KEY, 1.0)]
    watcher.completed(KEY, 20.0)
    watcher.expire(30.0)
    assert not watcher.accepted_first, "remembered accepts are forgotten after a few seconds"


def test_shutdown_flush_counts_handshakes_still_waiting_to_be_accepted() -> None:
    watcher, touches = _watcher()
    other = ("10.9.9.9", 40001, "10.0.0.1", 80)
    watcher.segment(KEY, SYN, 1.0)
    watcher.segment(other, SYN, 1.1)
    watcher.completed(other, 1.2)
    watcher.flush()
    assert touches == [(*KEY, 1.0)] and not watcher.pending


def test_other_ports_and_addresses_are_ignored_and_pending_is_bounded() -> None:
    watcher, touches = _watcher(max_pending=10)
    watcher.segment(("10.9.9.9", 1, "10.0.0.1", 23), SYN, 1.0)
    watcher.segment(("10.9.9.9", 1, "10.0.0.2", 22), SYN, 1.0)
    assert not watcher.pending
    for port in range(1000, 1050):
        watcher.segment(("10.9.9.9", port, "10.0.0.1", 80), SYN, 2.0)
    assert len(watcher.pending) == 10 and len(touches) == 40, "evicted SYNs are counted, not lost"


def test_segment_parsers() -> None:
    tcp = struct.pack(">HHIIBBHHH", 40000, 22, 1, 0, 5 << 4, SYN, 1024, 0, 0)
    ip = bytes([0x45, 0]) + struct.pack(">H", 40) + b"\0" * 5 + bytes([6]) + b"\0\0" + socket.inet_aton(
        "10.9.9.9") + socket.inet_aton("10.0.0.1")
    assert parse_ipv4(ip + tcp) == (KEY, SYN)
    assert parse_ipv4(ip[:19]) is None and parse_ipv4(ip + tcp[:5]) is None
    assert parse_ipv6(tcp, "fe80::9%eth0", "fe80::1") == (("fe80::9", 40000, "fe80::1", 22), SYN)
    assert parse_ipv6(tcp[:10], "::1", "::1") is None


# -- service start-up on a memory reactor ----------------------------------------------------------------


class FakeUdpPort:
    def __init__(self, port: int) -> None:
        self.port = port
        self.handle = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    def getHost(self) -> IPv4Address:
        return IPv4Address("UDP", "127.0.0.1", self.port)

    def getHandle(self) -> socket.socket:
        return self.handle

    def stopListening(self) -> None:
        self.handle.close()


class BusyReactor(MemoryReactorClock):
    """A memory reactor (with UDP) where TCP port 22 is taken."""

    def __init__(self) -> None:
        super().__init__()
        self.udp: list[tuple[int, str]] = []

    def listenUDP(self, port: int, protocol: object, interface: str = "", maxPacketSize: int = 8192) -> FakeUdpPort:
        self.udp.append((port, interface))
        return FakeUdpPort(port)

    def listenTCP(self, port, factory, backlog=50, interface=""):  # type: ignore[no-untyped-def]
        if port == 22:
            raise CannotListenError(interface, port, OSError(98, "Address already in use"))
        return super().listenTCP(port, factory, backlog, interface)


def test_start_reports_problems_instead_of_crashing() -> None:
    config = HoneyportsConfig(listen=("127.0.0.1", "::1"), tcp=(22, 2222), udp=(15353,), profiles={2222: "nope"})
    reactor = BusyReactor()
    service = HoneyportService(config, lambda hit: None, "n", reactor, half_open=False)
    problems = service.start()
    assert "tcp 127.0.0.1:22: address already in use" in problems
    assert "tcp [::1]:22: address already in use" in problems
    assert any("unknown profile 'nope'" in p for p in problems)
    assert sorted((t.value, a) for t, a, _ in service.ports) == [
        ("tcp", "127.0.0.1"), ("tcp", "::1"), ("udp", "127.0.0.1"), ("udp", "::1")]
    assert [tcp[3] for tcp in reactor.tcpServers] == ["127.0.0.1", "::1"]
    assert reactor.udp == [(15353, "127.0.0.1"), (15353, "::1")]
    assert reactor.tcpServers[0][1].profile.name == "generic", "an unknown profile falls back to generic"
    done: list[None] = []
    service.stop().addCallback(done.append)
    assert done == [None] and not service.ports
