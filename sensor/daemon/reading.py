"""The daemon's log follower, polled in a thread of its own and read ahead while more is waiting.

pyarrow and numpy do most of a poll's work without holding Python's lock, so the next polls read on the
second core while the event loop judges the one before them. The positions a checkpoint saves are those of
the polls handed on, never of one read ahead: a poll read ahead and not handed on when the daemon stops is
read again at its next start.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor

from sensor.config import SensorConfig
from sensor.flows.follow import FlowFollower
from sensor.flows.s3 import S3Follower
from sensor.zeek.follow import FollowBatch, LogFollower
from sensor.zeek.malformed import MalformedLog
from sensor.zeek.position import StreamPosition

Positions = tuple[dict[str, StreamPosition], frozenset[str]]
"""The follower's streams and finished files, as a checkpoint saves them."""
AHEAD = 2
"""Polls read ahead while more is waiting: the reader goes on with the next one while the loop judges the
one before, and its work outside Python's lock fills the time the loop would wait for it."""


Follower = LogFollower | S3Follower
"""A follower of files (Zeek's logs, a flow source's files) or of an S3 prefix."""


class Followers:
    """The Zeek log follower and the flow sources' followers, polled as one: one batch, one set of positions
    (each stream's key is its own: Zeek's logs by kind, a flow source by its name; an S3 source's ledger is one
    line among the finished files)."""

    def __init__(self, followers: list[Follower]) -> None:
        self.followers = followers

    @property
    def streams(self) -> dict[str, StreamPosition]:
        return {kind: position for follower in self.followers for kind, position in follower.streams.items()}

    @property
    def done(self) -> set[str]:
        return {fingerprint for follower in self.followers for fingerprint in follower.done}

    def poll(self) -> FollowBatch:
        """Every follower's poll, in turn."""
        merged = FollowBatch([], {}, 0)
        for follower in self.followers:
            self._merge(merged, follower.poll())
        return merged

    def close(self) -> FollowBatch:
        """What the flow sources' joins still hold, judged (the daemon is stopping)."""
        merged = FollowBatch([], {}, 0)
        for follower in self.followers:
            if isinstance(follower, FlowFollower | S3Follower):
                self._merge(merged, follower.close())
        return merged

    @staticmethod
    def _merge(merged: FollowBatch, batch: FollowBatch) -> None:
        merged.observations += batch.observations
        for kind, count in batch.records.items():
            merged.records[kind] = merged.records.get(kind, 0) + count
        merged.bytes_read += batch.bytes_read
        merged.backlog = merged.backlog or batch.backlog
        merged.moved = merged.moved or batch.moved

    def lag(self, streams: dict[str, StreamPosition] | None = None) -> dict[str, int]:
        """Bytes of each live log not read yet (past ``streams``, or each follower's own positions)."""
        lags: dict[str, int] = {}
        for follower in self.followers:
            lags.update(follower.lag(None if streams is None else {
                kind: position for kind, position in streams.items() if kind in follower.kinds}))
        return lags


def followers(config: SensorConfig, malformed: MalformedLog, streams: Mapping[str, StreamPosition] | None,
              done: frozenset[str] | None) -> Followers | None:
    """The followers of Zeek's log directory and of every flow source (a path, or an S3 prefix, whose fetcher
    starts now), restored at ``streams`` and ``done`` (None at a first start), or None when there is nothing to
    follow. Each says once what it cannot read, and when it can."""
    found: list[Follower] = []
    if config.zeek.log_dir is not None:
        found.append(LogFollower(config.zeek.log_dir, malformed, streams, done, kinds=config.zeek.logs))
    found += [FlowFollower(flow, malformed, streams, done) for flow in config.flows if flow.path is not None]
    found += [S3Follower(flow, malformed, streams, done) for flow in config.flows if flow.s3 is not None]
    return Followers(found) if found else None


class FollowAhead:
    """One follower's polls, off the event loop."""

    def __init__(self, follower: Followers) -> None:
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

    async def close(self) -> FollowBatch:
        """Let the polls under way finish (their records are not handed on) and stop the thread; what the flow
        sources' joins hold, judged, to be handed on."""
        while self._ahead:
            await self._ahead.popleft()
        self._reader.shutdown()
        return self.follower.close()

    def _poll(self) -> tuple[FollowBatch, Positions]:
        follower = self.follower
        return follower.poll(), (dict(follower.streams), frozenset(follower.done))
