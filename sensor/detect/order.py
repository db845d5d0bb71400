"""Where a correlator is in the merged stream of observations, and the order of what it says.

One correlator reading the whole stream says things in one order: for each observation, first what time alone
made due at its watermark (every :data:`~sensor.detect.correlator.HOUSEKEEPING_EVERY` seconds of event time:
the live tracks that stopped counting, least recently active first; then the dormant ones, in the order they
fell asleep; then the updates due, by when they fell due and, at one instant, by source), then what the
observation itself caused; at the end, the pending updates, in the order their incidents were scheduled.

Several correlators that each judge part of the stream by source (:mod:`sensor.detect.partition`) say the same
things when each knows the *position* of what it judges in the whole stream: what they say is then keyed by
an :data:`OrderKey` that sorts as the one correlator would have said it, and the places where time alone stops
(the first live track that still counts, among every part's) are agreed between the parts
(:class:`Expiry`, :func:`bounds`). Pure: positions are given by the caller or counted here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

OrderKey = tuple[int | float | str, ...]
"""Sorts as one correlator reading the whole stream says things: ``(position, 0, phase, ...)`` for time's own
work before the observation at ``position`` (phase 0 live tracks by when they were last touched, 1 dormant ones
by when they fell asleep, 2 due updates by when and by source), ``(position, 1, n)`` for the n-th incident
scheduled while judging it, ``(position, 2, n)`` for the n-th alert it caused; :data:`END` first for the
updates flushed at the end, then the key of when their incident was scheduled."""
END = 1 << 62
"""A position after every observation's."""
NONE_AFTER = float("inf")
"""No bound: every part's state at that instant is past it."""


class Order:
    """The position of the observation a correlator judges now, and what it scheduled while judging it."""

    __slots__ = ("at", "emitted", "scheduled")

    def __init__(self) -> None:
        self.at = -1
        """Position of the observation being judged (or of time's own work before it)."""
        self.scheduled = 0
        """Incidents scheduled so far (what orders them within one observation)."""
        self.emitted: list[int] | None = None
        """When kept (a list): the position at which each alert said since the caller last emptied it was made
        (what places the alerts of a block of records, each after its own record's)."""

    def next(self, at: int | None) -> int:
        """Move to position ``at`` (the next one when ``None``)."""
        self.at = self.at + 1 if at is None else at
        return self.at


@dataclass(frozen=True, slots=True)
class Expiry:
    """Where one correlator's time-alone work at a moment would stop, were it alone: the positions of its first
    live track that still counts, of its first dormant one that still counts (its sleep, then its last touch), of
    its first live track that would fall asleep still counting for the dormant rule, and of its first identity
    holder whose facts still count (``None`` where there is none)."""

    live: int | None
    dormant: tuple[int, int] | None
    sleeper: int | None
    identity: tuple[int, int] | None = None
    alone: bool = False
    """True when nothing here would go whatever the others' bounds (the first live track, dormant track and holder
    each still count): this part need not wait for them."""


@dataclass(frozen=True, slots=True)
class Bounds:
    """Where time's own work stops for every part at one instant: live tracks last touched before ``live`` go,
    dormant tracks asleep before ``dormant``, identity holders learned before ``identity``."""

    live: float
    dormant: tuple[float, float]
    identity: tuple[float, float]


def bounds(expiries: Iterable[Expiry], at: int) -> Bounds:
    """The bounds of one instant (time's work before the observation at ``at``) from every part's
    :class:`Expiry`: the first track that still counts in any part stops the walk in every part, as it does in
    one correlator's walk over them all."""
    found = list(expiries)
    live = min((expiry.live for expiry in found if expiry.live is not None), default=NONE_AFTER)
    dormant: tuple[float, float] = min((expiry.dormant for expiry in found if expiry.dormant is not None),
                                       default=(NONE_AFTER, NONE_AFTER))
    if dormant[0] == NONE_AFTER:
        sleeper = min((expiry.sleeper for expiry in found if expiry.sleeper is not None and expiry.sleeper < live),
                      default=None)
        if sleeper is not None:
            dormant = (at, sleeper)
    identity = min((expiry.identity for expiry in found if expiry.identity is not None),
                   default=(NONE_AFTER, NONE_AFTER))
    return Bounds(live, dormant, identity)
