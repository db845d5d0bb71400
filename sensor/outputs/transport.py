"""What a transport is: the :class:`Transport` protocol every receiver-specific module implements, the
:class:`Outcome` of one delivery and the :class:`DeliveryError` that asks for a retry.

It owns these contracts only; the spool, the retry loop and the dead-letter file belong to
:mod:`sensor.outputs.sink`, and each receiver's wire protocol to its own module.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from sensor.errors import SensorError
from sensor.outputs.spool import SpoolRecord


@dataclass(frozen=True, slots=True)
class Rejection:
    """A record the receiver refused for good (a 400 for that alert): retrying it cannot help."""

    record: SpoolRecord
    reason: str


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a delivered batch came to, beyond "it arrived"."""

    rejected: tuple[Rejection, ...] = ()
    """Records the receiver refused for good; the sink writes them to its dead-letter file."""
    duplicates: int = 0
    """Records the receiver said it already had (a ``_bulk`` 409): delivered before, not again."""
    truncated: tuple[Rejection, ...] = ()
    """Records delivered cut short (a UDP datagram has a size limit); the sink keeps each whole in its
    dead-letter file."""


class DeliveryError(SensorError):
    """Records could not be delivered now; the sink keeps them and retries after a backoff.

    ``pending`` names the records of the batch still to deliver (``None``: all of them) -- a receiver that
    confirmed some, item by item, is not sent those again. ``uncertain`` says the pending records may have
    reached the receiver already (the connection broke after they were written, a request timed out): their
    next sending is counted in ``t1046_sink_resent_total`` as possible duplicates. ``settled`` says what
    became of the records that are not pending (refused for good, already there).
    """

    def __init__(self, message: str, *, pending: Sequence[SpoolRecord] | None = None,
                 uncertain: bool = False, settled: Outcome | None = None) -> None:
        super().__init__(message)
        self.pending = list(pending) if pending is not None else None
        self.uncertain = uncertain
        self.settled = settled


class Transport(Protocol):
    """Delivers one batch of spooled records; raises :class:`DeliveryError` to be retried later.

    Returns ``None`` (or an :class:`Outcome` with nothing in it) when every record arrived.
    """

    async def send(self, records: list[SpoolRecord]) -> Outcome | None: ...

    def reopen(self) -> None: ...

    async def close(self) -> None: ...
