"""The columnar reading's own parts: addresses keyed from their text, blocks joined for decoding, reading
ahead in a thread, and the daemon's polls read ahead (the records they make are held to the line-by-line reader's in
``tests/zeek/test_logs.py``, and replay's output to its stored copy in ``tests/test_golden.py``)."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sensor.daemon.reading import FollowAhead, Followers
from sensor.observations import address_key
from sensor.zeek.blocks import DECODE_BYTES, joined, next_directive
from sensor.zeek.conncolumns import _quad_keys
from sensor.zeek.follow import LogFollower
from sensor.zeek.malformed import MalformedLog
from sensor.zeek.readahead import read_ahead
from sensor.zeek.records import address

SCAN_LOG = Path(__file__).resolve().parents[1] / "data" / "captures" / "s1_vertical_syn" / "zeek" / "conn.log"


def _inet_pton(text: str) -> int | None:
    try:
        return int.from_bytes(socket.inet_pton(socket.AF_INET, text), "big")
    except OSError:
        return None


octet = st.one_of(st.integers(0, 255).map(str), st.sampled_from(["256", "999", "00", "01", "007", "", "1a", " 1",
                                                                 "-1", "1.", "٣", "+1", "0x1"]))
quads = st.lists(octet, min_size=3, max_size=5).map(".".join)


@settings(max_examples=400, deadline=None)
@given(texts=st.lists(st.one_of(quads, st.sampled_from(["fd00::1", "10.0.0.1", "255.255.255.255", "0.0.0.0"])),
                      min_size=1, max_size=12))
def test_dotted_quads_are_keyed_as_inet_pton_reads_them(texts: list[str]) -> None:
    """Keys from the text itself where every text is an IPv4 address ``inet_pton`` takes, else None (the
    block is keyed address by address); never a key ``inet_pton`` would not give."""
    expected = [_inet_pton(text) for text in texts]
    found = _quad_keys(pa.array(texts))
    if None in expected:
        assert found is None
    else:
        assert found is not None and found.tolist() == expected
        assert found.tolist() == [address_key(address(text)) for text in texts]


def test_a_slice_of_a_column_is_keyed_from_its_own_rows() -> None:
    column = pa.array(["10.0.0.1", "10.0.0.2", "192.168.1.254", "8.8.8.8"]).slice(1, 2)
    keys = _quad_keys(column)
    assert keys is not None and keys.tolist() == [_inet_pton("10.0.0.2"), _inet_pton("192.168.1.254")]


def test_read_ahead_hands_on_everything_in_order_and_raises_where_the_reader_failed() -> None:
    def items() -> Iterator[int]:
        yield from range(50)
        raise OSError("the disk went away")

    seen = []
    with pytest.raises(OSError, match="the disk went away"):
        for item in read_ahead(items(), depth=3):
            seen.append(item)
    assert seen == list(range(50))


def test_read_ahead_stops_its_reader_when_the_consumer_stops() -> None:
    made = []

    def items() -> Iterator[int]:
        for item in range(10_000):
            made.append(item)
            yield item

    reading = read_ahead(items(), depth=2)
    assert [next(reading) for _ in range(5)] == list(range(5))
    reading.close()
    assert not [thread for thread in threading.enumerate() if thread.name == "t1046-read-ahead"]
    assert len(made) <= 5 + 2 + 2, "it read no further than its depth ahead"


def test_the_daemons_positions_are_those_of_the_polls_handed_on(tmp_path: Path) -> None:
    """A poll read ahead moves the follower, not the positions a checkpoint takes; at close it is dropped."""
    (tmp_path / "conn.log").write_bytes(SCAN_LOG.read_bytes())
    follower = LogFollower(tmp_path, MalformedLog(), read_budget=4096)

    async def two_polls() -> tuple[int, int, int]:
        ahead = FollowAhead(Followers([follower]))
        first = await ahead.poll()
        assert first.backlog, "the log is longer than one poll reads"
        handed_on = ahead.positions[0]["conn"].offset
        await asyncio.sleep(0)
        await ahead.close()
        return first.bytes_read, handed_on, follower.streams["conn"].offset

    read, handed_on, follower_at = asyncio.run(two_polls())
    assert handed_on == read < follower_at, "the second poll read on, but its records were never handed on"


@settings(max_examples=300, deadline=None)
@given(block=st.binary(max_size=40).map(lambda raw: bytes(b"ab#\n"[byte % 4] for byte in raw)),
       position=st.integers(0, 40))
def test_the_next_directive_is_found_where_the_two_byte_search_finds_it(block: bytes, position: int) -> None:
    assert next_directive(block, min(position, len(block))) == block.find(b"\n#", min(position, len(block)))


@settings(max_examples=200, deadline=None)
@given(sizes=st.lists(st.tuples(st.integers(1, 3 << 20), st.booleans()), max_size=8))
def test_joined_blocks_keep_every_line_its_number_and_each_directive_block_apart(
        sizes: list[tuple[int, bool]]) -> None:
    blocks, number = [], 0
    for size, directive in sizes:
        block = (b"#fields\tts\n" if directive else b"") + b"x" * (size - 1) + b"\n"
        blocks.append((number, block, block.count(b"\n")))
        number += block.count(b"\n")
    found = list(joined(blocks))
    assert b"".join(block for _, block, _ in found) == b"".join(block for _, block, _ in blocks)
    assert [lines for _, block, lines in found] == [block.count(b"\n") for _, block, _ in found]
    assert all(start == sum(lines for _, _, lines in found[:index]) for index, (start, _, _) in enumerate(found))
    for _, block, _ in found:
        assert block.startswith(b"#") or b"\n#" not in block, "a directive block is never joined to another"
        assert block.startswith(b"#") or len(block) <= DECODE_BYTES
