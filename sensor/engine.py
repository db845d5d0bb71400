"""``replay --engine dask``: the same partitioned replay, its parts on a Dask cluster (the ``engine`` extra).

Each part is a Dask actor (:class:`PartActor`: a :class:`~sensor.detect.partition.Part` living on one worker
of the cluster), fed by this process, which reads and merges the logs and keeps what crosses sources
(:class:`~sensor.detect.partition.Whole`) as ``--workers`` does. Where the worker processes of one machine agree
at a tick through memory they share (:mod:`sensor.workers`), actors on several machines agree through this
process: a batch ends at a tick, every actor answers with its :class:`~sensor.detect.order.Expiry` there, and
the next batch opens with everyone's, from which each does time's own work as the others do. The alerts come
back with their places and are merged by :class:`sensor.workers.Merger`, so the output is one process's, byte
for byte.

Without ``--scheduler`` the command starts a local cluster of ``--workers`` processes and stops it at the end;
with ``--scheduler tcp://HOST:8786`` the parts go to that cluster's workers, which need this package installed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from sensor.alerts.alert import Alert
from sensor.config import DetectionConfig
from sensor.detect.order import END, Expiry
from sensor.detect.partition import Message, Part, Partner, Tick, Unpartable, Whole
from sensor.detect.watermark import Watermark
from sensor.errors import UsageError
from sensor.observations import Intake
from sensor.workers import BATCH_RECORDS, End, Fallback, Merger, Said, size_of

INSTALL_HINT = "pip install 't1046-sensor[engine]'"


class PartActor:
    """One part of the stream on a Dask worker: takes a batch of messages (the last may be a tick), answers with
    its expiry at that tick and what it said."""

    def __init__(self, config: DetectionConfig, index: int, parts: int) -> None:
        self._part = Part(config, index, parts)
        self._tick: Tick | None = None

    def run(self, agreed: Sequence[Expiry] | None, messages: list[Message | End]) -> tuple[Expiry | None, Said]:
        """Do the time's own work the last batch ended at (``agreed``: every part's expiry there), then judge
        ``messages``; this part's expiry at the tick they end at (if they do), and what was said."""
        part = self._part
        if self._tick is not None:
            assert agreed is not None
            part.housekeep(self._tick, agreed)
            self._tick = None
        through = -1
        for message in messages:
            if isinstance(message, Tick):
                self._tick = message
                return part.expiry(message), self._said(message.position - 1)
            if isinstance(message, End):
                if message.flush:
                    part.flush(message.now)
                stats = part.correlator.stats
                said = self._said(END)
                said.counts = (stats.alerts, stats.suppressed, 0)
                return None, said
            part.take(message)
            through = message.position if isinstance(message, Partner) else message.positions[-1]
        return None, self._said(through)

    def _said(self, through: int) -> Said:
        said = Said(self._part.said, through, self._part.correlator.peaks)
        self._part.said = []
        return said


def judge_on_dask(items: Iterator[Intake], config: DetectionConfig, lateness: float, workers: int,
                  scheduler: str | None, write: Callable[[Alert], None]) -> tuple[int, int, int]:
    """Judge the merged stream ``items`` in ``workers`` parts on a Dask cluster (a local one of that many
    processes, or the one at ``scheduler``), calling ``write`` with each alert in one process's order;
    (observations, alerts made, alerts suppressed). Raises :class:`~sensor.workers.Fallback`."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise UsageError(f"--engine dask needs Dask's distributed scheduler, which is not installed: "
                         f"{INSTALL_HINT}") from None
    cluster: Any = None
    if scheduler is None:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,  # type: ignore[no-untyped-call]
                               dashboard_address=None)
    client = Client(cluster if cluster is not None else scheduler)  # type: ignore[no-untyped-call]
    try:
        actors = [client.submit(PartActor, config, index, workers, actor=True, pure=False).result()
                  for index in range(workers)]
        merger = Merger(workers, config, write)
        observations = _feed(items, Whole(config, workers), Watermark(lateness), actors, merger)
    finally:
        client.close()  # type: ignore[no-untyped-call]
        if cluster is not None:
            cluster.close()
    if merger.cap is not None:
        raise Fallback(f"the parts together may have reached {merger.cap}", merger.written)
    return observations, sum(made for made, _, _ in merger.counts), sum(gone for _, gone, _ in merger.counts)


def _feed(items: Iterator[Intake], whole: Whole, watermark: Watermark, actors: list[Any], merger: Merger) -> int:
    """Send each actor its messages, a batch ending at each tick (or every :data:`BATCH_RECORDS` records)."""
    parts = len(actors)
    held: list[list[Message | End]] = [[] for _ in range(parts)]
    agreed: list[Expiry] | None = None
    size = 0

    def send() -> None:
        nonlocal agreed, size
        answers = [future.result() for future in [actor.run(agreed, held[index]) for index, actor in
                                                   enumerate(actors)]]
        expiries = [expiry for expiry, _ in answers]
        agreed = None if None in expiries else [expiry for expiry in expiries if expiry is not None]
        for index, (_, said) in enumerate(answers):
            merger.said(index, said)
            held[index] = []
        size = 0

    try:
        for item in items:
            for part, message in whole.read(item, watermark):
                for index in range(parts) if part < 0 else (part,):
                    held[index].append(message)
                size += size_of(message)
                if isinstance(message, Tick) or size >= BATCH_RECORDS * parts:
                    send()
                if merger.cap is not None:
                    return whole.observations
    except Unpartable as why:
        raise Fallback(str(why), merger.written) from None
    for index in range(parts):
        held[index].append(End(watermark.now, whole.observations > 0))
    send()
    return whole.observations
