"""Unauthenticated clients cannot lock nodes out of the centre: an attacker holding 200 idle TLS connections
from several addresses does not keep a node from delivering; a connection without hello is closed within
seconds; every rejected token is logged with its source, each source once a minute at least."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time

import pytest

from sensor.nodes.codec import HELLO_SECONDS, Refused, decode_message, encode_hello
from sensor.nodes.listener import MAX_UNAUTHENTICATED_PER_ADDRESS
from tests.fixtures import Certificates
from tests.nodes.test_listener import EPOCH, TOKEN, Centre, _client_tls, _records, _run, _transport

ATTACKERS = [f"127.0.0.{host}" for host in range(2, 7)]


async def _idle(centre: Centre, certificates: Certificates, source: str) -> asyncio.StreamWriter | None:
    """A TLS connection from ``source`` that never says hello (None when the centre refused it at once)."""
    with contextlib.suppress(ConnectionError, ssl.SSLError, OSError):
        _, writer = await asyncio.open_connection("127.0.0.1", centre.listener.port, ssl=_client_tls(certificates),
                                                  server_hostname="localhost", local_addr=(source, 0))
        return writer
    return None


def test_200_idle_tls_connections_from_several_addresses_do_not_lock_a_node_out(
        certificates: Certificates) -> None:
    took: list[float] = []

    async def body(centre: Centre) -> None:
        held = [await _idle(centre, certificates, ATTACKERS[index % len(ATTACKERS)]) for index in range(200)]
        started = time.monotonic()
        node = _transport(centre, certificates)
        await node.send(_records(1, 3))
        took.append(time.monotonic() - started)
        await node.close()
        for writer in held:
            if writer is not None:
                writer.close()

    centre = _run(certificates, body)
    assert len(centre.observed) == 3, "the node delivered"
    assert took[0] < 2.0, f"the node needed {took[0]:.2f} s to deliver"


def test_connections_without_hello_from_one_address_are_capped(certificates: Certificates) -> None:
    async def body(centre: Centre) -> None:
        held = [await _idle(centre, certificates, "127.0.0.9") for _ in range(MAX_UNAUTHENTICATED_PER_ADDRESS)]
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", centre.listener.port, ssl=_client_tls(certificates), server_hostname="localhost",
            local_addr=("127.0.0.9", 0))
        line = await asyncio.wait_for(reader.readline(), 30)
        assert decode_message(line) == Refused("too many connections without hello")
        writer.close()
        other = _transport(centre, certificates)
        await other.send(_records(1, 1))
        await other.close()
        for idle in held:
            if idle is not None:
                idle.close()

    assert len(_run(certificates, body).observed) == 1, "another address is not capped by this one's connections"


def test_a_connection_that_never_says_hello_is_closed_within_seconds(certificates: Certificates) -> None:
    waited: list[float] = []

    async def body(centre: Centre) -> None:
        writer = await _idle(centre, certificates, "127.0.0.1")
        assert writer is not None
        started = time.monotonic()
        reader = writer.transport.get_protocol()._stream_reader  # type: ignore[attr-defined]
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await asyncio.wait_for(reader.read(), 20)
        waited.append(time.monotonic() - started)
        writer.close()

    _run(certificates, body)
    assert HELLO_SECONDS <= 5
    assert waited[0] < 9.0, f"closed after {waited[0]:.1f} s"


def test_every_source_of_rejected_tokens_is_logged(certificates: Certificates,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    async def body(centre: Centre) -> None:
        for source in ("127.0.0.11", "127.0.0.12", "127.0.0.11", "127.0.0.13"):
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", centre.listener.port, ssl=_client_tls(certificates), server_hostname="localhost",
                local_addr=(source, 0))
            writer.write(encode_hello("edge-x", EPOCH, "wrong-token-" + TOKEN))
            await writer.drain()
            assert decode_message(await asyncio.wait_for(reader.readline(), 30)) == Refused("unauthenticated")
            writer.close()

    with caplog.at_level(logging.WARNING, logger="sensor.nodes"):
        _run(certificates, body)
    lines = [record.getMessage() for record in caplog.records if "unauthenticated from" in record.getMessage()]
    assert [line.split()[3] for line in lines] == ["127.0.0.11:", "127.0.0.12:", "127.0.0.13:"]
