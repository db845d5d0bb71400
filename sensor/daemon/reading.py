"""The daemon's log follower, polled in a thread of its own and read one poll ahead while more is waiting.

pyarrow and numpy do most of a poll's work without holding Python's lock, so the next poll reads on the
second core while the event loop judges the one before it. The positions a checkpoint saves are those of
the polls handed on, never of one read ahead: a poll read ahead and not handed on when the daemon stops is
read again at its next start.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from sensor.zeek.follow import FollowBatch, LogFollower
from sensor.zeek.position import StreamPosition

Positions = tuple[dict[str, StreamPosition], frozenset[str]]
"""The follower's streams and finished files, as a checkpoint saves them."""


class FollowAhead:
    """One follower's polls, off the event loop."""

    def __init__(self, follower: LogFollower) -> None:
        self.follower = follower
        self.positions: Positions = (dict(follower.streams), frozenset(follower.done))
        """Where the polls handed on left the follower."""
        self._reader = ThreadPoolExecutor(1, thread_name_prefix="t1046-follow")
        self._ahead: asyncio.Future[tuple[FollowBatch, Positions]] | None = None

    async def poll(self) -> FollowBatch:
        """The next poll's records (read ahead if that poll is under way); when more is waiting, the poll
        after it starts at once."""
        polling = self._ahead or asyncio.get_running_loop().run_in_executor(self._reader, self._poll)
        self._ahead = None
        batch, self.positions = await polling
        if batch.backlog:
            self._ahead = asyncio.get_running_loop().run_in_executor(self._reader, self._poll)
        return batch

    def lag(self) -> dict[str, int]:
        """Bytes of each live log not handed on yet."""
        return self.follower.lag(self.positions[0])

    async def close(self) -> None:
        """Let a poll under way finish (its records are not handed on) and stop the thread."""
        if self._ahead is not None:
            await self._ahead
            self._ahead = None
        self._reader.shutdown()

    def _poll(self) -> tuple[FollowBatch, Positions]:
        follower = self.follower
        return follower.poll(), (dict(follower.streams), frozenset(follower.done))
