"""The stdout sink's transport: each alert's JSON document as one line on standard output (or another
binary stream given to it). It owns nothing but writing to that stream."""

from __future__ import annotations

import contextlib
import sys
from typing import BinaryIO

from sensor.outputs.spool import SpoolRecord
from sensor.outputs.transport import DeliveryError


class StdoutTransport:
    """JSON lines to standard output (or another binary stream)."""

    def __init__(self, stream: BinaryIO | None = None) -> None:
        self._stream = stream if stream is not None else sys.stdout.buffer

    async def send(self, records: list[SpoolRecord]) -> None:
        try:
            self._stream.write(b"".join(record.document + b"\n" for record in records))
            self._stream.flush()
        except (OSError, ValueError) as error:
            raise DeliveryError(f"stdout: {error}") from None

    def reopen(self) -> None:
        """Standard output is never reopened."""

    async def close(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self._stream.flush()
