"""Every service profile driven through a real factory and protocol on ``StringTransport``: banner, first
request, garbage, oversize and empty input; UDP never answers with more than it received."""

from __future__ import annotations

import functools
import re
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.address import IPv4Address
from twisted.internet.testing import MemoryReactorClock, StringTransport

from honeyports.listener import ConnectionTable, HoneyportFactory, HoneyportProtocol
from honeyports.profiles import DEFAULT_PORT_PROFILES, PROFILES, DnsProfile, datagram_reply, profile_name_for
from sensor.observations import HoneyportHit

NMAP_PROBES = Path("/usr/share/nmap/nmap-service-probes")
SMB_NEGOTIATE = (b"\0\0\0\xa4\xff\x53\x4d\x42\x72\0\0\0\0\x08\x01\x40\0\0\0\0\0\0\0\0\0\0\0\0\0\0\x40\x06\0\0\x01\0\0"
                 b"\x81\0\x02PC NETWORK PROGRAM 1.0\0\x02MICROSOFT NETWORKS 1.03\0\x02MICROSOFT NETWORKS 3.0\0"
                 b"\x02LANMAN1.0\0\x02LM1.2X002\0\x02Samba\0\x02NT LANMAN 1.0\0\x02NT LM 0.12\0")
RDP_REQUEST = b"\x03\0\0*%\xe0\0\0\0\0\0Cookie: mstshash=nmap\r\n\x01\0\x08\0\x03\0\0\0"
DNS_QUERY = bytes.fromhex("abcd01000001000000000000076578616d706c6503636f6d0000010001")
READ_LIMIT = 256

FIRST_REQUESTS: dict[str, tuple[bytes, bytes]] = {
    "generic": (b"hello\r\n", b""),
    "ssh": (b"SSH-2.0-OpenSSH_9.2\r\n", b""),
    "http": (b"GET / HTTP/1.0\r\n\r\n", b"HTTP/1.1 200 OK\r\nServer: nginx/1.18.0 (Ubuntu)\r\n"),
    "telnet": (b"\xff\xfb\x18\xff\xfb\x1f\r\n", b"\r\nLogin incorrect\r\n"),
    "ftp": (b"USER anonymous\r\n", b"331 "),
    "smtp": (b"EHLO scanner\r\n", b"250-mail.corp.internal\r\n"),
    "mysql": (b"\x20\0\0\x01" + b"\0" * 32, b"\x48\0\0\x02\xff\x15\x04#28000Access denied"),
    "redis": (b"*1\r\n$4\r\ninfo\r\n", b"$"),
    "rdp": (RDP_REQUEST, b"\x03\0\0\x13\x0e\xd0"),
    "vnc": (b"RFB 003.008\n", b"\0\0\0\0\x1aToo many security failures"),
    "smb": (SMB_NEGOTIATE, b"\0\0\0a\xffSMBr"),
    "dns": (struct.pack(">H", len(DNS_QUERY)) + DNS_QUERY, struct.pack(">H", len(DNS_QUERY)) + b"\xab\xcd\x81\x05"),
}


class Connection:
    """A factory with one protocol on a StringTransport, as the reactor would build it at accept."""

    def __init__(self, profile: str, max_per_source: int = 4, max_total: int = 8) -> None:
        self.hits: list[HoneyportHit] = []
        self.clock = MemoryReactorClock()
        self.table = ConnectionTable(max_total, max_per_source, idle_timeout=10.0, read_limit=READ_LIMIT)
        self.factory = HoneyportFactory(PROFILES[profile], self.table, self.hits.append, "node-1",
                                        lambda: 1000.0, self.clock, ("10.0.0.1", 2222))

    def open(self, peer: str = "10.9.8.7", port: int = 40000) -> tuple[HoneyportProtocol, StringTransport]:
        transport = StringTransport(hostAddress=IPv4Address("TCP", "10.0.0.1", 2222),
                                    peerAddress=IPv4Address("TCP", peer, port))
        protocol = self.factory.buildProtocol(transport.getPeer())
        protocol.makeConnection(transport)
        return protocol, transport


def _close(protocol: HoneyportProtocol, transport: StringTransport) -> None:
    transport.loseConnection()
    protocol.connectionLost(None)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_banner_then_first_request_answered_then_closed(name: str) -> None:
    conn = Connection(name)
    protocol, transport = conn.open()
    assert transport.value() == PROFILES[name].banner
    assert conn.hits == [] and not transport.disconnecting, "the touch waits for the client's first bytes"
    transport.clear()
    request, expected = FIRST_REQUESTS[name]
    protocol.dataReceived(request)
    assert [hit.payload for hit in conn.hits] == [request[:64]], "reported with what the client sent first"
    assert transport.value().startswith(expected) if expected else transport.value() == b""
    assert transport.disconnecting, "the connection closes after the first answer"
    protocol.dataReceived(b"more after the answer")
    protocol.connectionLost(None)
    assert len(conn.hits) == 1, "one hit per connection, whatever is sent"


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_empty_input_answers_nothing_and_keeps_waiting(name: str) -> None:
    protocol, transport = Connection(name).open()
    transport.clear()
    protocol.dataReceived(b"")
    assert transport.value() == b"" and not transport.disconnecting


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_oversize_input_is_capped_and_answered_once(name: str) -> None:
    conn = Connection(name)
    protocol, transport = conn.open()
    transport.clear()
    for _ in range(100):
        protocol.dataReceived(b"\x00\xff" * 4096)
    assert len(protocol.received) == READ_LIMIT
    assert transport.disconnecting
    assert conn.table.stats.answered == 1


@pytest.mark.parametrize("name", sorted(PROFILES))
@settings(max_examples=60, deadline=None)
@given(garbage=st.binary(min_size=1, max_size=600))
def test_garbage_never_raises_and_answers_are_bounded(name: str, garbage: bytes) -> None:
    protocol, transport = Connection(name).open()
    transport.clear()
    for start in range(0, len(garbage), 97):
        protocol.dataReceived(garbage[start:start + 97])
    assert len(transport.value()) <= 1024
    reply = datagram_reply(PROFILES[name], garbage)
    assert len(reply) <= len(garbage)


@settings(max_examples=200, deadline=None)
@given(datagram=st.binary(max_size=600))
def test_udp_answers_are_never_longer_than_the_datagram(datagram: bytes) -> None:
    for profile in PROFILES.values():
        assert len(datagram_reply(profile, datagram)) <= len(datagram)


def test_dns_refuses_with_the_query_length() -> None:
    refused = datagram_reply(DnsProfile(), DNS_QUERY)
    assert len(refused) == len(DNS_QUERY)
    assert refused[:2] == DNS_QUERY[:2] and refused[2] & 0x80 and refused[3] & 0x0F == 5
    assert datagram_reply(DnsProfile(), b"short") == b""


def test_default_profiles_follow_the_usual_service_and_overrides_win() -> None:
    assert {p: profile_name_for(p, {}) for p in (22, 80, 8080, 8081, 2222, 2323, 3306, 13306, 6379, 16379,
                                                  3389, 33389, 5900, 35900, 445, 21, 25, 31337)} == {
        22: "ssh", 80: "http", 8080: "http", 8081: "http", 2222: "ssh", 2323: "telnet", 3306: "mysql",
        13306: "mysql", 6379: "redis", 16379: "redis", 3389: "rdp", 33389: "rdp", 5900: "vnc", 35900: "vnc",
        445: "smb", 21: "ftp", 25: "smtp", 31337: "generic"}
    assert profile_name_for(22, {22: "telnet"}) == "telnet"
    assert set(DEFAULT_PORT_PROFILES.values()) <= set(PROFILES)


def test_http_head_has_no_body_and_garbage_gets_400() -> None:
    http = PROFILES["http"]
    assert http.answer(b"HEAD / HTTP/1.1\r\n\r\n").endswith(b"\r\n\r\n")
    assert http.answer(b"\x16\x03\x01garbage\r\n\r\n").startswith(b"HTTP/1.1 400 Bad Request\r\n")


def test_smb_without_nt_lm_dialect_is_not_answered() -> None:
    assert PROFILES["smb"].answer(SMB_NEGOTIATE.replace(b"NT LM 0.12", b"NT LM 0.11")) == b""
    assert PROFILES["smb"].answer(b"\0\0\0\x04\xfeSMB") == b""


@functools.cache
def _nmap_matches() -> list[tuple[str, re.Pattern[bytes]]]:
    """(service, pattern) of every ``match`` line of nmap-service-probes that Python's re can compile."""
    matches = []
    line_pattern = re.compile(rb"^match (\S+) m\|(.*?)\|([si]*) ")
    for line in NMAP_PROBES.read_bytes().splitlines():
        found = line_pattern.match(line)
        if found is None:
            continue
        flags = (re.S if b"s" in found.group(3) else 0) | (re.I if b"i" in found.group(3) else 0)
        try:
            matches.append((found.group(1).decode(), re.compile(found.group(2), flags)))
        except re.error:
            continue
    return matches


def _nmap_names(response: bytes) -> set[str]:
    """Services whose nmap-service-probes ``match`` lines match ``response``."""
    return {service for service, pattern in _nmap_matches() if pattern.search(response)}


@pytest.mark.skipif(not NMAP_PROBES.exists(), reason="nmap's service probes are not installed")
@pytest.mark.parametrize(("name", "service", "request_bytes"), [
    ("ssh", "ssh", b""), ("ftp", "ftp", b""), ("smtp", "smtp", b""), ("vnc", "vnc", b""),
    ("telnet", "telnet", b""), ("mysql", "mysql", b""), ("http", "http", b"GET / HTTP/1.0\r\n\r\n"),
    ("redis", "redis", b"*1\r\n$4\r\ninfo\r\n"), ("rdp", "ms-wbt-server", RDP_REQUEST),
    ("smb", "microsoft-ds", SMB_NEGOTIATE),
])
def test_nmap_signatures_name_the_service(name: str, service: str, request_bytes: bytes) -> None:
    profile = PROFILES[name]
    response = profile.answer(request_bytes) if request_bytes else profile.banner
    assert service in _nmap_names(response)
