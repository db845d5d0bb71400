"""``replay --engine dask``: the same partitioned replay, its parts on a Dask cluster (the ``engine`` extra).

Each part is a Dask actor (:class:`PartActor`: a :class:`~sensor.detect.partition.Part` living on one worker
of the cluster), fed by this process, which reads and merges the logs and keeps what crosses sources
(:class:`~sensor.detect.partition.Whole`) as ``--workers`` does. Where the worker processes of one machine agree
at a tick through memory they share (:mod:`sensor.workers`), actors on several machines agree through this
process: each actor stops at every tick of a batch with its :class:`~sensor.detect.order.Expiry` there, and
goes on when it is sent everyone's, from which each does time's own work as the others do. The alerts come
back with their places and are merged by :class:`sensor.workers.Merger`, so the output is one process's, byte
for byte.

Without ``--scheduler`` the command starts a local cluster of ``--workers`` processes and stops it at the end;
with ``--scheduler tcp://HOST:8786`` the parts go to that cluster's workers, which need this package installed.
"""

from __future__ import annotations

import resource
from collections.abc import Callable, Iterator
from typing import Any

from sensor.alerts.alert import Alert
from sensor.config import DetectionConfig
from sensor.detect.order import END, Expiry
from sensor.detect.partition import Message, Tick, Unpartable, Whole
from sensor.detect.parts import Part, Steps
from sensor.detect.watermark import Watermark
from sensor.errors import UsageError
from sensor.observations import Intake
from sensor.workers import BATCH_RECORDS, End, Fallback, Merger, Said, size_of

INSTALL_HINT = "pip install 't1046-sensor[engine]'"


class PartActor:
    """One part of the stream on a Dask worker: takes a batch of messages, stopping at each tick with its expiry
    there until it is sent every part's; at the end of the batch, what it said."""

    def __init__(self, config: DetectionConfig, index: int, parts: int) -> None:
        self._part = Part(config, index, parts)
        self._steps: Steps | None = None
        self._end: End | None = None

    def start(self, messages: list[Message | End]) -> tuple[Expiry | None, Said | None]:
        """Begin a batch: the expiry at its first tick, or (no tick in it) what was said."""
        self._end = messages[-1] if messages and isinstance(messages[-1], End) else None
        self._steps = self._part.steps(message for message in messages if not isinstance(message, End))
        return self._advance(next(self._steps, None))

    def resume(self, agreed: list[Expiry]) -> tuple[Expiry | None, Said | None]:
        """Go on from the tick every part agreed at: the expiry at the next one, or what was said."""
        if self._steps is None:
            raise RuntimeError("resume before start")
        try:
            return self._advance(self._steps.send(agreed))
        except StopIteration:
            return self._advance(None)

    def _advance(self, state: tuple[Tick, Expiry] | None) -> tuple[Expiry | None, Said | None]:
        part = self._part
        if state is not None:
            return state[1], None
        if self._end is None:
            return None, Said(part.taken(), part.through, part.correlator.peaks)
        if self._end.flush:
            part.flush(self._end.now)
        stats = part.correlator.stats
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # the Dask worker's process, its own parts too
        return None, Said(part.taken(), END, part.correlator.peaks, (stats.alerts, stats.suppressed, peak))


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
    size = 0

    def send() -> None:
        nonlocal size
        answers = [future.result() for future in [actor.start(held[index]) for index, actor in enumerate(actors)]]
        while answers[0][1] is None:
            agreed = [expiry for expiry, _ in answers if expiry is not None]
            if len(agreed) != parts:
                raise RuntimeError("a part stopped at a tick the others did not")
            answers = [future.result() for future in [actor.resume(agreed) for actor in actors]]
        for index, (_, said) in enumerate(answers):
            if said is None:
                raise RuntimeError("a part stopped at a tick the others did not")
            merger.said(index, said)
            held[index] = []
        size = 0

    try:
        for item in items:
            for part, message in whole.read(item, watermark):
                for index in range(parts) if part < 0 else (part,):
                    held[index].append(message)
                size += size_of(message)
            if size >= BATCH_RECORDS * parts:
                send()
            if merger.cap is not None:
                return whole.observations
    except Unpartable as why:
        raise Fallback(str(why), merger.written) from None
    for index in range(parts):
        held[index].append(End(watermark.now, whole.observations > 0))
    send()
    return whole.observations
