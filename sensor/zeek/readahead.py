"""Reading a log ahead of its consumer, in a thread of its own.

pyarrow and numpy do most of the work of reading a TSV block (:mod:`sensor.zeek.columns`,
:mod:`sensor.zeek.conncolumns`) without holding Python's lock, so a reader thread keeps the second core busy
with the next blocks while the correlator judges the current one. The items come out in the order they were
made, and an error raised while reading is raised to the consumer at the point it happened.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import TypeVar

T = TypeVar("T")
DEPTH = 2
"""Items made ahead of the consumer at the most (conn blocks of up to 4 MiB each)."""


class _End:
    """What the reader puts last: the error that stopped it, if any."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException | None) -> None:
        self.error = error


def read_ahead(items: Iterator[T], depth: int = DEPTH) -> Iterator[T]:
    """The items of ``items``, made in a thread up to ``depth`` ahead of the caller's loop."""
    made: queue.Queue[T | _End] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def read() -> None:
        try:
            for item in items:
                made.put(item)
                if stop.is_set():
                    return
        except BaseException as error:  # noqa: BLE001 - handed to the consumer, which raises it
            made.put(_End(error))
        else:
            made.put(_End(None))

    reader = threading.Thread(target=read, name="t1046-read-ahead", daemon=True)
    reader.start()
    try:
        while True:
            item = made.get()
            if isinstance(item, _End):
                if item.error is not None:
                    raise item.error
                return
            yield item
    finally:
        stop.set()
        while reader.is_alive():
            try:
                made.get(timeout=0.1)
            except queue.Empty:
                continue
        reader.join()
