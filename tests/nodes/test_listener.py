"""The centre's listener and the node's transport, in one process on loopback: real TLS sockets, bounded."""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Awaitable, Callable
from ipaddress import ip_address
from pathlib import Path

import pytest

from sensor.config import NodesConfig
from sensor.errors import SensorError
from sensor.metrics import Metrics
from sensor.nodes.codec import Ack, Ready, Refused, decode_message, encode_hello, encode_submission
from sensor.nodes.forwarder import NodeLinkTransport
from sensor.nodes.listener import MAX_UNACKED, NodeListener
from sensor.nodes.tokens import NodeTokens
from sensor.observations import HoneyportHit, Observation, Transport
from sensor.outputs.spool import SpoolRecord
from sensor.outputs.transport import DeliveryError
from tests.fixtures import Certificates
from tests.waiting import wait_for_async

TOKEN = "node-token-for-tests"
EPOCH = "00112233aabbccdd"

HANG = 120.0
"""Seconds after which a silent centre counts as hung (a safety net, not a speed bound: a loaded machine
processes a 20 000-line flood slowly)."""


def _hit(index: int) -> HoneyportHit:
    return HoneyportHit(ts=time.time(), source=ip_address(f"10.9.0.{index % 250 + 1}"), source_port=40000 + index,
                        target=ip_address("10.9.1.1"), target_port=2222, transport=Transport.TCP, profile="ssh",
                        node="forged-name")


def _records(first: int, count: int) -> list[SpoolRecord]:
    return [SpoolRecord(seq, "obs", 0.0, 0, encode_submission(seq, _hit(seq))) for seq in range(first, first + count)]


def _client_tls(certificates: Certificates) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(certificates.ca))


def _count(metrics: Metrics, result: str) -> float:
    return metrics.registry.get_sample_value("t1046_node_submissions_total", {"result": result}) or 0.0


class Centre:
    """A listener on 127.0.0.1:0 and what it observed."""

    def __init__(self, certificates: Certificates, tokens: NodeTokens | None = None, *,
                 ack_after_commit: bool = False, **limits: float) -> None:
        config = NodesConfig(listen=("127.0.0.1", 0), cert_file=certificates.cert, key_file=certificates.key,
                             token_env="UNUSED", **limits)  # type: ignore[arg-type]
        self.observed: list[Observation] = []
        self.metrics = Metrics()
        self.listener = NodeListener(config, tokens or NodeTokens(TOKEN, None), self.observed.append, self.metrics,
                                     ack_after_commit=ack_after_commit, tokens_check_seconds=0.05)


def _run(certificates: Certificates, body: Callable[[Centre], Awaitable[None]], tokens: NodeTokens | None = None,
         **limits: float) -> Centre:
    centre = Centre(certificates, tokens, **limits)

    async def main() -> None:
        await centre.listener.start()
        try:
            await asyncio.wait_for(body(centre), 30)
        finally:
            await centre.listener.stop()

    asyncio.run(main())
    return centre


def _transport(centre: Centre, certificates: Certificates, token: str = TOKEN,
               node: str = "edge-a") -> NodeLinkTransport:
    return NodeLinkTransport(("127.0.0.1", centre.listener.port), _client_tls(certificates), "localhost", node,
                             EPOCH, token, timeout=10)


async def _raw(centre: Centre, certificates: Certificates, lines: bytes, expect: int = 0) -> list[bytes]:
    """Send ``lines`` on a fresh TLS connection; the lines the centre answers until it closes (or ``expect``)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", centre.listener.port,
                                                   ssl=_client_tls(certificates), server_hostname="localhost")
    writer.write(lines)
    await writer.drain()
    answers = []
    try:
        while (not expect or len(answers) < expect) and (line := await asyncio.wait_for(reader.readline(), HANG)):
            answers.append(line)
    except (ConnectionError, ssl.SSLError):
        pass
    writer.close()
    return answers


def test_a_node_delivers_with_its_identity_and_a_resent_batch_counts_once(certificates: Certificates,
                                                                           tmp_path: Path) -> None:
    async def body(centre: Centre) -> None:
        node = _transport(centre, certificates)
        await node.send(_records(1, 5))
        await node.close()
        again = _transport(centre, certificates)
        await again.send(_records(1, 8))
        await again.close()
        replayed = await _raw(centre, certificates,
                              encode_hello("edge-a", EPOCH, TOKEN) + b"".join(r.document + b"\n"
                                                                               for r in _records(7, 3)), expect=4)
        assert decode_message(replayed[0]) == Ready(8)
        assert [decode_message(line) for line in replayed[1:]] == [Ack(7), Ack(8), Ack(9)]

    centre = _run(certificates, body)
    assert len(centre.observed) == 9
    assert {o.node for o in centre.observed if isinstance(o, HoneyportHit)} == {"edge-a@127.0.0.1"}
    assert (_count(centre.metrics, "accepted"), _count(centre.metrics, "duplicate")) == (9, 2)
    restarted = Centre(certificates)
    restarted.listener.restore(centre.listener.state())
    assert restarted.listener.dedupe.last(("edge-a", EPOCH)) == 9, "the runs' last sequences survive a restart"


def test_wrong_token_garbage_and_long_lines_are_refused_and_counted(certificates: Certificates,
                                                                    tmp_path: Path) -> None:
    async def body(centre: Centre) -> None:
        with pytest.raises(DeliveryError, match="unauthenticated"):
            await _transport(centre, certificates, token="guessed").send(_records(1, 1))
        garbage = await _raw(centre, certificates, b"\x00\xffGET / HTTP/1.1\r\n\r\n")
        assert decode_message(garbage[0]) == Refused("expected hello")
        long_line = await _raw(centre, certificates, b"{" + b" " * 5000)
        assert decode_message(long_line[0]) == Refused("line too long")
        after_hello = await _raw(centre, certificates, encode_hello("edge-b", EPOCH, TOKEN) + b"not json\n")
        assert decode_message(after_hello[-1]) == Refused("expected obs")
        bad_field = encode_submission(1, _hit(1)).replace(b'"10.9.0.2"', b'"10.9.0.999"')
        skipped = await _raw(centre, certificates, encode_hello("edge-c", EPOCH, TOKEN) + bad_field + b"\n", expect=2)
        assert [decode_message(line) for line in skipped] == [Ready(0), Ack(1)]
        good = _transport(centre, certificates)
        await good.send(_records(1, 3))
        await good.close()

    centre = _run(certificates, body, max_message_bytes=4096)
    assert _count(centre.metrics, "unauthenticated") == 1
    assert _count(centre.metrics, "malformed") == 4
    assert _count(centre.metrics, "accepted") == 3 and len(centre.observed) == 3


def test_connections_over_the_cap_are_refused(certificates: Certificates, tmp_path: Path) -> None:
    async def body(centre: Centre) -> None:
        first = _transport(centre, certificates)
        await first.send(_records(1, 1))
        refused = await _raw(centre, certificates, encode_hello("edge-b", EPOCH, TOKEN))
        assert decode_message(refused[0]) == Refused("too many node connections")
        await first.close()
        deadline = time.monotonic() + 10
        while centre.metrics.registry.get_sample_value("t1046_node_connections") != 0:
            assert time.monotonic() < deadline, "the first connection was never released"
            await asyncio.sleep(0.02)
        second = _transport(centre, certificates)
        await second.send(_records(2, 1))
        await second.close()

    centre = _run(certificates, body, max_nodes=1)
    assert _count(centre.metrics, "refused") == 1 and len(centre.observed) == 2


def test_a_fast_node_is_slowed_to_its_rate_not_dropped(certificates: Certificates, tmp_path: Path) -> None:
    took: list[float] = []

    async def body(centre: Centre) -> None:
        node = _transport(centre, certificates)
        started = time.monotonic()
        await node.send(_records(1, 300))
        took.append(time.monotonic() - started)
        await node.close()

    centre = _run(certificates, body, rate=200.0)
    assert len(centre.observed) == 300
    assert took[0] >= 0.4, "300 submissions at 200/s with a burst of 200 need about half a second"


TOKEN_A = "edge-a-own-token-0123456789"
TOKEN_B = "edge-b-own-token-9876543210"


def _tokens_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "node-tokens"
    path.write_text(text)
    path.chmod(0o600)
    return path


@pytest.mark.parametrize("shared", [None, TOKEN])
def test_a_node_named_in_the_tokens_file_proves_its_name_with_its_own_token(certificates: Certificates,
                                                                          tmp_path: Path, shared: str | None) -> None:
    tokens = NodeTokens(shared, _tokens_file(tmp_path, f"# node tokens\nedge-a {TOKEN_A}\n\nedge-b {TOKEN_B}  # lab\n"))

    async def body(centre: Centre) -> None:
        await _transport(centre, certificates, TOKEN_A).send(_records(1, 2))
        for node, token in (("edge-a", TOKEN_B), ("edge-b", TOKEN_A), ("edge-a", TOKEN), ("edge-c", TOKEN_A)):
            with pytest.raises(DeliveryError, match="unauthenticated"):
                await _transport(centre, certificates, token, node).send(_records(1, 1))
        unlisted = _transport(centre, certificates, TOKEN, "edge-c")
        if shared is None:
            with pytest.raises(DeliveryError, match="unauthenticated"):
                await unlisted.send(_records(1, 1))
        else:
            await unlisted.send(_records(1, 1))

    centre = _run(certificates, body, tokens)
    nodes = [o.node for o in centre.observed if isinstance(o, HoneyportHit)]
    assert nodes == ["edge-a@127.0.0.1"] * 2 + (["edge-c@127.0.0.1"] if shared else [])
    assert _count(centre.metrics, "unauthenticated") == (5 if shared is None else 4)


def test_a_revoked_node_is_cut_off_at_once_and_cannot_come_back(certificates: Certificates, tmp_path: Path) -> None:
    path = _tokens_file(tmp_path, f"edge-a {TOKEN_A}\nedge-b {TOKEN_B}\n")

    async def body(centre: Centre) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", centre.listener.port,
                                                       ssl=_client_tls(certificates), server_hostname="localhost")
        writer.write(encode_hello("edge-a", EPOCH, TOKEN_A))
        assert decode_message(await asyncio.wait_for(reader.readline(), 10)) == Ready(0)
        kept = _transport(centre, certificates, TOKEN_B, "edge-b")
        await kept.send(_records(1, 1))
        path.write_text(f"edge-b {TOKEN_B}\n")
        assert await asyncio.wait_for(reader.read(), 10) == b"", "the revoked node's connection is closed"
        writer.close()
        with pytest.raises(DeliveryError, match="unauthenticated"):
            await _transport(centre, certificates, TOKEN_A).send(_records(1, 1))
        await kept.send(_records(2, 1))
        await kept.close()

    centre = _run(certificates, body, NodeTokens(None, path))
    assert [o.node for o in centre.observed if isinstance(o, HoneyportHit)] == ["edge-b@127.0.0.1"] * 2


@pytest.mark.parametrize(("text", "problem"), [
    ("edge-a\n", ":1: expected NAME TOKEN"),
    (f"edge-a {TOKEN_A} extra\n", ":1: expected NAME TOKEN"),
    (f"# ok\nbad/name {TOKEN_A}\n", ":2: expected NAME TOKEN"),
    (f"edge-a {TOKEN_A}\nedge-a {TOKEN_B}\n", ":2: node edge-a is named twice"),
    ("edge-a short\n", ":1: the token of edge-a is shorter than 16 characters"),
])
def test_a_bad_tokens_file_is_refused_at_start_with_its_line(tmp_path: Path, text: str, problem: str) -> None:
    with pytest.raises(SensorError, match=problem):
        NodeTokens(None, _tokens_file(tmp_path, text))


def test_a_tokens_file_broken_later_leaves_the_last_good_one_in_force(tmp_path: Path,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    path = _tokens_file(tmp_path, f"edge-a {TOKEN_A}\n")
    tokens = NodeTokens(None, path)
    path.write_text("edge-a\n")
    with caplog.at_level(logging.WARNING):
        assert not tokens.check()
    assert tokens.admits("edge-a", TOKEN_A)
    assert ":1: expected NAME TOKEN" in caplog.text and "the last tokens read stay in force" in caplog.text
    path.write_text(f"edge-a {TOKEN_B}\n")
    assert tokens.check() and tokens.admits("edge-a", TOKEN_B) and not tokens.admits("edge-a", TOKEN_A)


def test_a_tokens_file_others_can_read_is_warned_about(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = _tokens_file(tmp_path, f"edge-a {TOKEN_A}\n")
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING):
        NodeTokens(None, path)
    assert "can be read by other users (mode 644): chmod 600 it" in caplog.text
    assert TOKEN_A not in caplog.text


def test_acknowledged_after_the_commit_so_a_crash_before_it_loses_and_repeats_nothing(certificates: Certificates,
                                                                                       tmp_path: Path) -> None:
    first, second = Centre(certificates, ack_after_commit=True), Centre(certificates, ack_after_commit=True)

    async def main() -> None:
        await first.listener.start()
        node = _transport(first, certificates)
        committed_state = first.listener.state()
        sending = asyncio.ensure_future(node.send(_records(1, 3)))
        await wait_for_async(lambda: len(first.observed) == 3, HANG, "the centre observing the batch")
        assert first.listener.acks_pending and not sending.done(), "no ack before the commit"
        await first.listener.stop()  # the centre dies before its next commit
        with pytest.raises(DeliveryError):
            await sending
        second.listener.restore(committed_state)  # ... and restarts from its last checkpoint
        await second.listener.start()
        try:
            again = _transport(second, certificates)
            resent = asyncio.ensure_future(again.send(_records(1, 3)))
            await wait_for_async(lambda: len(second.observed) == 3, HANG, "the re-sent batch observed")
            second.listener.committed()
            await asyncio.wait_for(resent, 10)
            assert not second.listener.acks_pending
            more = asyncio.ensure_future(again.send(_records(1, 4)))  # 1-3 are committed: only 4 goes
            await wait_for_async(lambda: len(second.observed) == 4, HANG, "the new observation")
            second.listener.committed()
            await asyncio.wait_for(more, 10)
            await again.close()
            reconnected = await _raw(second, certificates, encode_hello("edge-a", EPOCH, TOKEN), expect=1)
            assert decode_message(reconnected[0]) == Ready(4)
        finally:
            await second.listener.stop()

    asyncio.run(asyncio.wait_for(main(), 30))
    assert [o.source_port for o in second.observed] == [40001, 40002, 40003, 40004], "each once, in order"


def test_a_node_that_never_waits_for_acks_is_refused_when_too_much_waits_for_a_commit(certificates: Certificates,
                                                                                       tmp_path: Path) -> None:
    centre = Centre(certificates, ack_after_commit=True, rate=1e9)
    flood = encode_hello("edge-a", EPOCH, TOKEN) + b"".join(
        encode_submission(seq, _hit(seq)) + b"\n" for seq in range(1, MAX_UNACKED + 2))

    async def main() -> None:
        await centre.listener.start()
        try:
            answers = await _raw(centre, certificates, flood)
            assert [decode_message(line) for line in answers] == [
                Ready(0), Refused("too many unacknowledged observations")]
        finally:
            await centre.listener.stop()

    asyncio.run(asyncio.wait_for(main(), 3 * HANG))
    assert _count(centre.metrics, "refused") == 1
