"""The daemon's log follower, polled in a thread of its own and read ahead while more is waiting.

pyarrow and numpy do most of a poll's work without holding Python's lock, so the next polls read on the
second core while the event loop judges the one before them. The positions a checkpoint saves are those of
the polls handed on, never of one read ahead: a poll read ahead and not handed on when the daemon stops is
read again at its next start.
"""

from __future__ import annotations

import asyncio
from collections import deque
from concurrent.futures import ThreadPoolExecutor

from sensor.zeek.follow import FollowBatch, LogFollower
from sensor.zeek.position import StreamPosition

Positions = tuple[dict[str, StreamPosition], frozenset[str]]
"""The follower's streams and finished files, as a checkpoint saves them."""
AHEAD = 2
"""Polls read ahead while more is waiting: the reader goes on with the next one while the loop judges the
one before, and its work outside Python's lock fills the time the loop would wait for it."""


class FollowAhead:
    """One follower's polls, off the event loop."""

    def __init__(self, follower: LogFollower) -> None:
        self.follower = follower
        self.positions: Positions = (dict(follower.streams), frozenset(follower.done))
        """Where the polls handed on left the follower."""
        self._reader = ThreadPoolExecutor(1, thread_name_prefix="t1046-follow")
        self._ahead: deque[asyncio.Future[tuple[FollowBatch, Positions]]] = deque()
        """Polls under way or done and not handed on yet, in the order they read (one thread reads them)."""

    async def poll(self) -> FollowBatch:
        """The next poll's records (read ahead if that poll is under way); when more is waiting, the polls
        after it (up to :data:`AHEAD`) start at once."""
        loop = asyncio.get_running_loop()
        if not self._ahead:
            self._ahead.append(loop.run_in_executor(self._reader, self._poll))
        batch, self.positions = await self._ahead.popleft()
        while batch.backlog and len(self._ahead) < AHEAD:
            self._ahead.append(loop.run_in_executor(self._reader, self._poll))
        return batch

    def lag(self) -> dict[str, int]:
        """Bytes of each live log not handed on yet."""
        return self.follower.lag(self.positions[0])

    async def close(self) -> None:
        """Let the polls under way finish (their records are not handed on) and stop the thread."""
        while self._ahead:
            await self._ahead.popleft()
        self._reader.shutdown()

    def _poll(self) -> tuple[FollowBatch, Positions]:
        follower = self.follower
        return follower.poll(), (dict(follower.streams), frozenset(follower.done))
