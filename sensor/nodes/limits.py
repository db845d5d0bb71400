"""Bounds the centre puts on nodes: a token bucket per connection, a bounded window of the last sequence
number per node run (so a re-sent batch is not counted twice) and a warning log rate-limited per source."""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import orjson

from sensor.nodes.codec import PROTOCOL_VERSION

log = logging.getLogger(__name__)

LOG_INTERVAL = 60.0
"""Rejections are logged once, then at most once per this many seconds with a count."""


@dataclass(slots=True)
class TokenBucket:
    """``rate`` submissions a second with bursts of ``burst``; :meth:`delay` says how long to wait."""

    rate: float
    burst: float
    tokens: float
    stamp: float

    @classmethod
    def full(cls, rate: float, now: float) -> TokenBucket:
        return cls(rate, max(1.0, rate), max(1.0, rate), now)

    def delay(self, now: float) -> float:
        """Take one token at ``now``; the seconds to wait before the submission may be handled."""
        self.tokens = min(self.burst, self.tokens + max(0.0, now - self.stamp) * self.rate)
        self.stamp = now
        self.tokens -= 1.0
        return max(0.0, -self.tokens / self.rate)


class DedupeWindow:
    """The last sequence number handled for each node run (name, epoch), for at most ``capacity`` runs;
    the run heard from least recently is forgotten first."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._last: OrderedDict[tuple[str, str], int] = OrderedDict()

    def __len__(self) -> int:
        return len(self._last)

    def last(self, run: tuple[str, str]) -> int:
        return self._last.get(run, 0)

    def admit(self, run: tuple[str, str], seq: int) -> bool:
        """True when ``seq`` is new for ``run`` (and remember it); False for a re-sent one."""
        last = self._last.get(run, 0)
        self._last[run] = max(last, seq)
        self._last.move_to_end(run)
        while len(self._last) > self.capacity:
            self._last.popitem(last=False)
        return seq > last

    def snapshot(self) -> dict[tuple[str, str], int]:
        """The last sequence of every run, as of now."""
        return dict(self._last)

    def dump(self) -> str:
        return orjson.dumps({"v": PROTOCOL_VERSION, "runs": [[n, e, s] for (n, e), s in self._last.items()]}).decode()

    def load(self, data: str) -> None:
        document = orjson.loads(data)
        for node, epoch, seq in document["runs"][-self.capacity:]:
            if isinstance(node, str) and isinstance(epoch, str) and isinstance(seq, int):
                self._last[(node, epoch)] = seq


class RateLimitedLog:
    """A warning logged the first time for each key (a node's address), then at most once per ``interval``
    for that key with what was held back; at most ``keys`` keys are remembered, the least recently warned
    about forgotten first (so each source is still named at least once per ``interval``)."""

    def __init__(self, interval: float = LOG_INTERVAL, clock: Callable[[], float] = time.monotonic,
                 keys: int = 4096) -> None:
        self._interval = interval
        self._clock = clock
        self._keys = keys
        self._next: OrderedDict[str, tuple[float, int]] = OrderedDict()
        """Key to (when it may be logged again, lines held back since it was)."""

    def warning(self, key: str, text: str, *args: object) -> None:
        now = self._clock()
        due, held = self._next.get(key, (float("-inf"), 0))
        if now < due:
            self._next[key] = (due, held + 1)
            return
        self._next[key] = (now + self._interval, 0)
        self._next.move_to_end(key)
        while len(self._next) > self._keys:
            self._next.popitem(last=False)
        log.warning(text + (f" (and {held} more since the last such line)" if held else ""), *args)


# -- the centre ------------------------------------------------------------------------------------------
