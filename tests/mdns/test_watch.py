"""The watcher's packet path: questions to observations, identity from the socket, malformed packets dropped."""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sensor.mdns.watch import MAX_QUESTIONS, MDNS_GROUP_V4, MalformedPacketError, MdnsWatcher, questions_of
from sensor.observations import MdnsQuery
from tests.mdns.packets import PTR, SRV, query_packet, response_packet

SOURCE = ipaddress.ip_address("10.40.0.9")
OWN = ipaddress.ip_address("10.40.0.1")


def watcher() -> tuple[MdnsWatcher, list[MdnsQuery]]:
    seen: list[MdnsQuery] = []
    result = MdnsWatcher(["eth0"], seen.append, clock=lambda: 100.0, own_addresses=lambda: frozenset({OWN}))
    result.refresh()
    return result, seen


def test_one_observation_per_question_with_identity_from_the_socket() -> None:
    packet = query_packet(("_ssh._tcp.local.", PTR), ("_rfb._tcp.local.", PTR), unicast=True)
    source6 = ipaddress.ip_address("fe80::1")
    queries, dropped = questions_of(packet, source6, 5353, ipaddress.ip_address("ff02::fb"), 5.0)
    assert dropped == 0
    assert [(q.name, q.qtype, q.unicast_response, q.legacy_unicast, q.source, q.via) for q in queries] == [
        ("_ssh._tcp.local", "PTR", True, False, source6, "watcher"),
        ("_rfb._tcp.local", "PTR", True, False, source6, "watcher"),
    ]


def test_legacy_unicast_responses_own_packets_and_probes() -> None:
    subject, seen = watcher()
    assert subject.datagram(query_packet(("_ssh._tcp.local.", PTR)), SOURCE, 41000, MDNS_GROUP_V4) == 1
    assert seen[0].legacy_unicast and seen[0].source_port == 41000 and seen[0].target == MDNS_GROUP_V4
    assert subject.datagram(query_packet(("_ssh._tcp.local.", PTR)), OWN, 5353, MDNS_GROUP_V4) == 0
    assert subject.datagram(response_packet("vm._ssh._tcp.local."), SOURCE, 5353, MDNS_GROUP_V4) == 0
    probe = query_packet(("vm._ssh._tcp.local.", 255), probe_of="vm._ssh._tcp.local.")
    assert subject.datagram(probe, SOURCE, 5353, MDNS_GROUP_V4) == 1
    assert seen[-1].qtype == "ANY"
    stats = subject.stats
    assert (stats.packets, stats.own, stats.without_questions, stats.questions) == (4, 1, 1, 2)


def test_questions_per_packet_are_capped() -> None:
    packet = query_packet(*[(f"_t{i}._tcp.local.", PTR) for i in range(MAX_QUESTIONS + 10)])
    queries, dropped = questions_of(packet, SOURCE, 5353, MDNS_GROUP_V4, 1.0)
    assert (len(queries), dropped) == (MAX_QUESTIONS, 10)


def test_malformed_packets_are_counted_and_dropped() -> None:
    subject, seen = watcher()
    good = query_packet(("_ssh._tcp.local.", PTR))
    for bad in (b"", b"\x00", good[:15], good[:12] + b"\xc0\x0c" + good[14:]):
        assert subject.datagram(bad, SOURCE, 5353, MDNS_GROUP_V4) == 0
    assert subject.stats.malformed == 4 and seen == []


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=600))
def test_random_datagrams_never_raise(data: bytes) -> None:
    subject, _ = watcher()
    subject.datagram(data, SOURCE, 5353, MDNS_GROUP_V4)
    assert subject.stats.malformed + subject.stats.without_questions + subject.stats.queries == 1


_SEEDS = [
    query_packet(("_ssh._tcp.local.", PTR), ("_services._dns-sd._udp.local.", PTR), unicast=True),
    query_packet(("vm._ssh._tcp.local.", SRV), probe_of="vm._ssh._tcp.local."),
    response_packet("backup-nas._smb._tcp.local."),
]


@settings(max_examples=600, deadline=None)
@given(st.sampled_from(_SEEDS), st.lists(st.tuples(st.integers(0, 700), st.integers(0, 255)), max_size=12),
       st.integers(0, 700), st.randoms(use_true_random=False))
def test_mutated_packets_never_raise(seed: bytes, flips: list[tuple[int, int]], cut: int,
                                     rng: random.Random) -> None:
    data = bytearray(seed)
    for offset, value in flips:
        if data:
            data[offset % len(data)] = value
    if rng.random() < 0.3:
        data = data[:cut]
    subject, seen = watcher()
    subject.datagram(bytes(data), SOURCE, rng.choice([5353, 40000]), MDNS_GROUP_V4)
    for query in seen:
        assert query.source == SOURCE
    with contextlib.suppress(MalformedPacketError):
        questions_of(bytes(data), SOURCE, 5353, MDNS_GROUP_V4, 1.0)


def test_refresh_makes_a_new_address_own_and_a_dropped_one_foreign(caplog: pytest.LogCaptureFixture) -> None:
    own = {OWN}
    seen: list[MdnsQuery] = []
    subject = MdnsWatcher(["eth0"], seen.append, clock=lambda: 100.0, own_addresses=lambda: frozenset(own))
    subject.refresh()
    gained = ipaddress.ip_address("10.40.0.200")
    own.add(gained)
    own.discard(OWN)
    with caplog.at_level(logging.INFO, logger="sensor.mdns.watch"):
        subject.refresh()
    assert "changed: added 10.40.0.200; removed 10.40.0.1" in caplog.text
    question = query_packet(("_ssh._tcp.local.", PTR))
    assert subject.datagram(question, gained, 5353, MDNS_GROUP_V4) == 0
    assert subject.datagram(question, OWN, 5353, MDNS_GROUP_V4) == 1
    assert [query.source for query in seen] == [OWN]
