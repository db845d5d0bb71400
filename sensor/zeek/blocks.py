"""A log's bytes as blocks of complete lines: what every reader of a log (``replay``, the follower) decodes.

A line longer than :data:`MAX_LINE` is reported and left out without ever being held whole; a last line
without a newline is reported as truncated. Consecutive blocks of data lines are then joined up to
:data:`DECODE_BYTES` for the columnar decoder (:mod:`sensor.zeek.columns`).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Iterator

from sensor.zeek.malformed import MalformedLog

MAX_LINE = 1 << 20
"""Longest line read, in bytes; a longer one is skipped as malformed without being held in memory."""
DECODE_BYTES = 4 << 20
"""Data lines decoded at once, at the most (whole blocks of complete lines)."""


def complete_lines(read: Callable[[], bytes], source: str, malformed: MalformedLog,
                   number: int = 0) -> Iterator[tuple[int, bytes, int]]:
    """Blocks of complete lines (each ending in a newline) from what ``read`` returns (at most ``MAX_LINE``
    bytes a call, ``b""`` at the end), each with the number of lines before it and its own. A line longer than
    :data:`MAX_LINE` is reported and left out, never held whole; a last line without a newline is reported
    as truncated (a ``#`` directive is kept); a read error is reported as a truncated or corrupt file, the
    part line before it with it."""
    pending = b""
    skipping = broken = False
    while True:
        try:
            chunk = read()
        except (OSError, EOFError, zlib.error) as error:
            malformed.report(source, number + 1, f"truncated or corrupt file: {error}")
            chunk, broken = b"", True
        if not chunk:
            break
        data = pending + chunk if pending else chunk
        cut = data.rfind(b"\n") + 1
        block, pending = data[:cut], data[cut:]
        first_end = block.find(b"\n")
        if cut and (skipping or first_end > MAX_LINE):
            number += 1
            malformed.report(source, number, f"line longer than {MAX_LINE} bytes")
            block, skipping = block[first_end + 1:], False
        if block:
            lines = block.count(b"\n")
            yield number, block, lines
            number += lines
        if len(pending) > MAX_LINE:
            pending, skipping = b"", True
    if (pending or skipping) and not broken:  # a broken file's last part is the one line reported
        if skipping:
            malformed.report(source, number + 1, f"line longer than {MAX_LINE} bytes")
        elif pending.startswith(b"#"):
            yield number, pending + b"\n", 1
        else:
            malformed.report(source, number + 1, "truncated last line (no newline)")


def joined(blocks: Iterable[tuple[int, bytes, int]]) -> Iterator[tuple[int, bytes, int]]:
    """Consecutive blocks of data lines alone joined up to :data:`DECODE_BYTES`: a TSV block is decoded at
    once (:mod:`sensor.zeek.columns`), and every decode costs a few dozen calls into pyarrow and numpy
    whatever its size. A block with a directive line is handed on as it is."""
    held: list[bytes] = []
    first = size = lines_held = 0
    for number, block, lines in blocks:
        plain = block[:1] != b"#" and next_directive(block, 0) < 0
        if held and (not plain or size + len(block) > DECODE_BYTES):
            yield first, held[0] if len(held) == 1 else b"".join(held), lines_held
            held, size, lines_held = [], 0, 0
        if not plain:
            yield number, block, lines
            continue
        if not held:
            first = number
        held.append(block)
        size += len(block)
        lines_held += lines
    if held:
        yield first, held[0] if len(held) == 1 else b"".join(held), lines_held


def next_directive(block: bytes, position: int) -> int:
    """``block.find(b"\\n#", position)`` at ``memchr``'s speed (a search for two bytes reads every byte)."""
    found = block.find(b"#", position + 1)
    while found > 0 and block[found - 1] != 0x0A:
        found = block.find(b"#", found + 1)
    return found - 1 if found > 0 else -1


