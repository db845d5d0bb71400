"""The node protocol's codec and the centre's bounds, without sockets."""

from __future__ import annotations

import contextlib
from dataclasses import replace
from ipaddress import ip_address

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sensor.nodes.codec import (
    Ack,
    Hello,
    MalformedObservation,
    ProtocolError,
    Ready,
    Refused,
    Submission,
    decode_message,
    encode_ack,
    encode_hello,
    encode_ready,
    encode_refused,
    encode_submission,
)
from sensor.nodes.limits import DedupeWindow, RateLimitedLog, TokenBucket
from sensor.observations import PAYLOAD_LIMIT, HoneyportHit, MdnsQuery, Touch, Transport

HIT = HoneyportHit(ts=1700000000.25, source=ip_address("10.1.2.3"), source_port=40000,
                   target=ip_address("10.1.2.200"), target_port=2222, transport=Transport.TCP, profile="ssh",
                   payload=b"SSH-2.0-x\r\n", node="edge-a")
QUERY = MdnsQuery(ts=1700000001.0, source=ip_address("fe80::1"), source_port=5353, name="_ssh._tcp.local",
                  qtype="PTR", unicast_response=True, target=ip_address("ff02::fb"))


def _obs(**changes: object) -> bytes:
    document = orjson.loads(encode_submission(7, HIT))
    document.update(changes)
    return orjson.dumps(document)


def test_messages_round_trip() -> None:
    assert decode_message(encode_hello("edge-a", "0123456789abcdef", "s3cret")) == Hello(
        "edge-a", "0123456789abcdef", "s3cret")
    assert decode_message(encode_ready(41)) == Ready(41)
    assert decode_message(encode_ack(42)) == Ack(42)
    assert decode_message(encode_refused("unauthenticated")) == Refused("unauthenticated")
    assert "s3cret" not in repr(decode_message(encode_hello("edge-a", "0123456789abcdef", "s3cret")))


def test_observations_round_trip_without_the_node_name() -> None:
    hit = decode_message(encode_submission(7, HIT))
    assert hit == Submission(7, HoneyportHit(**{**{f: getattr(HIT, f) for f in HIT.__slots__}, "node": ""}))
    follow_up = decode_message(encode_submission(9, replace(HIT, node="", follow_up=True)))
    assert isinstance(follow_up, Submission) and isinstance(follow_up.observation, HoneyportHit)
    assert follow_up.observation.follow_up and follow_up.observation.payload == HIT.payload
    legacy = orjson.loads(encode_submission(10, HIT))
    del legacy["follow_up"]
    decoded = decode_message(orjson.dumps(legacy))
    assert isinstance(decoded, Submission) and isinstance(decoded.observation, HoneyportHit)
    assert decoded.observation.follow_up is False
    query = decode_message(encode_submission(8, QUERY))
    assert query == Submission(8, QUERY)
    assert b"\n" not in encode_submission(7, HIT)


def test_the_mac_a_nodes_neighbour_table_gave_travels_and_nothing_else_passes_for_one() -> None:
    stamped = replace(HIT, node="", mac="02:77:00:00:00:17")
    assert decode_message(encode_submission(7, stamped)) == Submission(7, stamped)
    asked = replace(QUERY, mac="02:77:00:00:00:18")
    assert decode_message(encode_submission(8, asked)) == Submission(8, asked)
    forged = orjson.loads(encode_submission(7, stamped))
    forged["mac"] = "02:77:00:00:00:17\nevil"
    with pytest.raises(ProtocolError):
        decode_message(orjson.dumps(forged))


@pytest.mark.parametrize(("transport", "touch"), [(Transport.TCP, Touch.HALF_OPEN), (Transport.TCP, Touch.CONNECT),
                                                  (Transport.UDP, Touch.DATAGRAM)])
def test_how_a_honeyport_was_touched_crosses_the_link(transport: Transport, touch: Touch) -> None:
    decoded = decode_message(encode_submission(3, replace(HIT, node="", transport=transport, touch=touch)))
    assert isinstance(decoded, Submission) and isinstance(decoded.observation, HoneyportHit)
    assert decoded.observation.touch is touch


def test_a_node_that_does_not_say_how_proves_nothing_and_cannot_claim_a_handshake_over_udp() -> None:
    legacy = orjson.loads(encode_submission(10, HIT))
    del legacy["touch"]
    decoded = decode_message(orjson.dumps(legacy))
    assert isinstance(decoded, Submission) and isinstance(decoded.observation, HoneyportHit)
    assert decoded.observation.touch is Touch.UNKNOWN, "an older node's TCP touch is not taken as a handshake"
    with pytest.raises(MalformedObservation, match="touch"):
        decode_message(_obs(transport="udp", touch="connect"))
    with pytest.raises(MalformedObservation, match="touch"):
        decode_message(_obs(touch="handshake, trust me"))


def test_the_payload_cannot_name_the_node_or_claim_zeek() -> None:
    forged = decode_message(_obs(node="trusted-core", via="zeek"))
    assert isinstance(forged, Submission) and isinstance(forged.observation, HoneyportHit)
    assert forged.observation.node == ""
    query = orjson.loads(encode_submission(3, QUERY))
    decoded = decode_message(orjson.dumps({**query, "via": "zeek"}))
    assert isinstance(decoded, Submission) and isinstance(decoded.observation, MdnsQuery)
    assert decoded.observation.via == "watcher"


@pytest.mark.parametrize("changes", [
    {"source": "not-an-ip"}, {"source_port": 70000}, {"source_port": True}, {"ts": "now"}, {"ts": -1},
    {"transport": "icmp"}, {"profile": "x" * 40}, {"payload": "***"}, {"kind": "zeek"}, {"target": None},
])
def test_a_bad_observation_keeps_its_sequence_number(changes: dict[str, object]) -> None:
    with pytest.raises(MalformedObservation) as caught:
        decode_message(_obs(**changes))
    assert caught.value.seq == 7


@pytest.mark.parametrize("line", [
    b"", b"garbage", b"[1,2]", b'{"v":2,"type":"ack","seq":1}', b'{"v":1,"type":"nope"}',
    b'{"v":1,"type":"obs","seq":-1}', b'{"v":1,"type":"hello","node":"../etc","epoch":"0123456789abcdef",'
    b'"token":"t"}', b'{"v":1,"type":"hello","node":"a","epoch":"short","token":"t"}',
])
def test_anything_else_is_a_protocol_error(line: bytes) -> None:
    with pytest.raises(ProtocolError):
        decode_message(line)


def test_payload_is_capped() -> None:
    big = HoneyportHit(**{**{f: getattr(HIT, f) for f in HIT.__slots__}, "payload": b"A" * (3 * PAYLOAD_LIMIT)})
    decoded = decode_message(encode_submission(1, big))
    assert isinstance(decoded, Submission) and isinstance(decoded.observation, HoneyportHit)
    assert len(decoded.observation.payload) == PAYLOAD_LIMIT


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=512))
def test_random_bytes_never_crash_the_decoder(line: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        decode_message(line)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["v", "type", "seq", "kind", "ts", "source", "source_port", "target",
                                        "target_port", "transport", "profile", "payload", "name", "qtype",
                                        "unicast_response", "legacy_unicast", "node", "epoch", "token",
                                        "last_seq", "reason"]),
                       st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1), st.floats(),
                                 st.text(max_size=20),
                                 st.sampled_from([1, "obs", "hello", "honeyport", "mdns", "tcp", "10.0.0.1"]))))
def test_random_json_objects_never_crash_the_decoder(document: dict[str, object]) -> None:
    with contextlib.suppress(ProtocolError):
        decode_message(orjson.dumps(document))


def test_token_bucket_slows_a_fast_node_to_its_rate() -> None:
    bucket = TokenBucket.full(10.0, now=0.0)
    assert [bucket.delay(0.0) for _ in range(10)] == [0.0] * 10
    assert bucket.delay(0.0) == pytest.approx(0.1)
    assert bucket.delay(1.0) == 0.0


def test_dedupe_window_is_bounded_and_remembers_the_last_sequence() -> None:
    window = DedupeWindow(capacity=3)
    assert window.admit(("a", "e1"), 1) and window.admit(("a", "e1"), 2)
    assert not window.admit(("a", "e1"), 2) and not window.admit(("a", "e1"), 1)
    assert window.admit(("a", "e2"), 1), "a new run of the node starts its own numbering"
    for index in range(10_000):
        window.admit((f"flood-{index}", "e"), 1)
    assert len(window) == 3
    restored = DedupeWindow(capacity=2)
    restored.load(window.dump())
    assert len(restored) == 2 and restored.last(("flood-9999", "e")) == 1


def test_rejections_are_logged_once_per_interval_for_each_source(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    limited = RateLimitedLog(interval=60.0, clock=lambda: now[0], keys=2)
    for _ in range(100):
        limited.warning("10.0.0.1", "nodes: %s", "bad from 10.0.0.1")
    limited.warning("10.0.0.2", "nodes: %s", "bad from 10.0.0.2")
    now[0] = 61.0
    limited.warning("10.0.0.1", "nodes: %s", "bad from 10.0.0.1")
    limited.warning("10.0.0.3", "nodes: %s", "bad from 10.0.0.3")
    limited.warning("10.0.0.2", "nodes: %s", "bad from 10.0.0.2")
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["nodes: bad from 10.0.0.1", "nodes: bad from 10.0.0.2",
                     "nodes: bad from 10.0.0.1 (and 99 more since the last such line)", "nodes: bad from 10.0.0.3",
                     "nodes: bad from 10.0.0.2"]
