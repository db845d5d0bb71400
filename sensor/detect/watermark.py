"""The correlator's clock: a watermark over the inputs' event times, as stream engines keep one.

The watermark is the newest event time seen in the logs, held ``lateness`` seconds back so that records
out of order by that much (Zeek writes a conn.log line when its connection ends) arrive before time
alone acts on the state they belong to. It never runs backwards. How it moves:

* **logs being read** (a backlog, a burst, a restart catching up): with the newest record's time only —
  reading faster or slower, or days late, moves it exactly as ``replay`` does;
* **logs caught up and idle**: forward at the wall clock's pace from where the logs left it, so a quiet
  network still ends its incidents while a backlog read late is not judged against the wall clock;
* **logs idle for** :data:`IDLE_LOGS_AFTER` **or no logs at all** (honeyports and mDNS only): the wall
  clock, less ``lateness``;
* an event stamped more than :data:`FUTURE_TOLERANCE` ahead of the wall clock (a sensor whose clock is
  wrong) moves it no further than that.

Live sources (honeyports, the mDNS watcher, remote nodes) stamp their observations at capture; they are
judged at that time without moving the watermark past the logs a backlog is still being read from.
Pure: the wall time is an argument (``None`` in ``replay``, which has only its logs' time).
"""

from __future__ import annotations

FUTURE_TOLERANCE = 300.0
"""Seconds an event may be stamped ahead of the wall clock and still move the watermark."""
IDLE_LOGS_AFTER = 300.0
"""Seconds of wall time after which caught-up logs with nothing new no longer hold the watermark back."""


class Watermark:
    """The watermark of one correlator; ``now`` is its value."""

    __slots__ = ("_caught_up", "_high", "_lateness", "_logs", "_read_at", "now")

    def __init__(self, lateness: float, *, logs: bool = True, start: float = float("-inf"),
                 wall: float | None = None) -> None:
        self._lateness = lateness
        self._logs = logs
        self.now = start
        """The watermark: the correlator's ``now``."""
        self._high = start + lateness
        """The newest event time the logs delivered (a restored watermark's, to start with)."""
        self._read_at = wall
        """Wall time the logs last delivered something new, or the watermark was made (``None``: in replay)."""
        self._caught_up = True

    def logged(self, ts: float, wall: float | None = None) -> float:
        """A log record stamped ``ts`` was read (at ``wall``); the watermark to judge it with."""
        if wall is not None and ts > wall + FUTURE_TOLERANCE:
            ts = wall + FUTURE_TOLERANCE
        if ts > self._high:
            self._high = ts
            self.now = max(self.now, ts - self._lateness)
        return self.now

    def logged_many(self, times: list[float], wall: float | None = None) -> list[float]:
        """Many log records stamped ``times`` were read (at ``wall``): the watermark to judge each with, as
        :meth:`logged` gives it record after record (numpy's running maximum: a record's watermark moves
        only where its time is past every time before it)."""
        import numpy as np  # only with a block of conn records, which came with numpy

        if not times:
            return []
        stamps = np.asarray(times, dtype=np.float64)
        if wall is not None:
            cap = wall + FUTURE_TOLERANCE
            stamps = np.where(stamps > cap, cap, stamps)
        high, now = self._high, self.now
        highs = np.fmax(np.fmax.accumulate(stamps), high)  # a NaN time moves nothing, as in logged()
        nows = np.where(highs > high, np.maximum(highs - self._lateness, now), now)
        self._high, self.now = float(highs[-1]), float(nows[-1])
        found: list[float] = nows.tolist()
        return found

    def read(self, wall: float, *, caught_up: bool, new: bool) -> None:
        """The log follower finished a poll at ``wall``: ``new`` when it delivered records, ``caught_up`` when
        nothing more is there to read."""
        if new:
            self._read_at = wall
        self._caught_up = caught_up

    def advance(self, wall: float) -> float:
        """The watermark at ``wall``, for live observations and time's own work (ticks)."""
        if not self._logs:
            base = wall
        elif not self._caught_up:
            return self.now
        else:
            if self._read_at is None:
                self._read_at = wall
            idle = wall - self._read_at
            base = wall if idle >= IDLE_LOGS_AFTER else self._high + max(0.0, idle)
        base = min(base, wall + FUTURE_TOLERANCE) - self._lateness
        self.now = max(self.now, base)
        return self.now
