"""Aggregation that keeps a picture of 10^5 probes readable and small: time bins and capped axes.

Pure numpy over :class:`~sensor.report.probes.Probes`; draws nothing. A capped axis keeps the targets
(or ports) that found something first, then the most probed, and folds the rest into one "others" row.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from sensor.report.probes import FOUND_SOMETHING, Probes, Shown

TIME_BINS = 120
"""Columns of the timeline."""
TARGET_ROWS = 30
"""Targets shown by name; the rest share the "others" row."""
PORT_COLUMNS = 40
"""Ports shown by number in the heat map; the rest share the "others" column."""
OUTCOMES = len(Shown)


@dataclass(frozen=True, slots=True)
class Axis:
    """A capped categorical axis: the labels shown, and each probe's position on it."""

    labels: tuple[str, ...]
    """One per row or column; the last is ``others (N)`` when some values were folded."""
    position: npt.NDArray[np.intp]
    """For each probe, its row or column."""


@dataclass(frozen=True, slots=True)
class Bins:
    """Equal time bins from ``start``; ``width`` seconds each."""

    start: float
    width: float
    count: int
    index: npt.NDArray[np.intp]
    """For each probe, its bin."""

    def edges(self) -> npt.NDArray[np.float64]:
        """The bin edges, as seconds since ``start``."""
        return np.arange(self.count + 1, dtype=np.float64) * self.width


def capped_axis(values: npt.NDArray[np.int32], outcome: npt.NDArray[np.uint8], cap: int,
                order: Callable[[int], tuple[int, int]], label: Callable[[int], str], noun: str) -> Axis:
    """Cap the distinct ``values`` to ``cap`` shown ones and an "others" entry.

    Kept first: values with a probe that found something, then the most probed; ties and the shown order
    go by ``order`` (the natural order: address, port number).
    """
    distinct, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    found = np.isin(outcome, np.asarray(FOUND_SOMETHING, dtype=np.uint8))
    found_per_value = np.bincount(inverse, weights=found, minlength=distinct.size) > 0
    ranked = sorted(range(distinct.size),
                    key=lambda i: (not found_per_value[i], -int(counts[i]), order(int(distinct[i]))))
    keep = sorted(ranked[:cap] if distinct.size > cap else ranked, key=lambda i: order(int(distinct[i])))
    slot = np.full(distinct.size, len(keep), dtype=np.intp)
    slot[np.asarray(keep, dtype=np.intp)] = np.arange(len(keep), dtype=np.intp)
    labels = [label(int(distinct[i])) for i in keep]
    if distinct.size > len(keep):
        folded = distinct.size - len(keep)
        labels.append(f"others ({folded} {noun}{'s' if folded != 1 else ''})")
    return Axis(tuple(labels), slot[inverse.reshape(-1)])


def target_axis(probes: Probes, cap: int = TARGET_ROWS) -> Axis:
    """The targets of the probes, capped."""
    targets = probes.targets
    return capped_axis(probes.target, probes.outcome, cap,
                       order=lambda i: (targets[i].version, int(targets[i])),
                       label=lambda i: str(targets[i]), noun="target")


def port_axis(probes: Probes, cap: int = PORT_COLUMNS) -> Axis:
    """The ports of the probes, capped."""
    return capped_axis(probes.port, probes.outcome, cap, order=lambda port: (0, port), label=str, noun="port")


def time_bins(ts: npt.NDArray[np.float64], start: float, end: float, count: int = TIME_BINS,
              unit: float = 1.0) -> Bins:
    """Split ``start``..``end`` into at most ``count`` bins whose width is round in ``unit`` seconds
    (1, 2 or 5 times a power of ten of them)."""
    extent = max(end - start, 1e-3)
    raw = extent / count / unit
    magnitude = 10.0 ** np.floor(np.log10(raw))
    width = unit * float(next(step * magnitude for step in (1, 2, 5, 10) if step * magnitude >= raw))
    bins = max(1, int(np.ceil(extent / width - 1e-9)))
    index = np.clip(((ts - start) / width).astype(np.intp), 0, bins - 1) if ts.size else np.zeros(0, np.intp)
    return Bins(start, width, bins, index)


def outcome_counts(bins: Bins, outcome: npt.NDArray[np.uint8]) -> npt.NDArray[np.int64]:
    """Probes per (outcome, time bin)."""
    flat = outcome.astype(np.intp) * bins.count + bins.index
    return np.bincount(flat, minlength=OUTCOMES * bins.count).reshape(OUTCOMES, bins.count)


def cell_outcomes(rows: Axis, columns: npt.NDArray[np.intp], width: int,
                  outcome: npt.NDArray[np.uint8]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.intp]]:
    """Probes per (row, column) cell, and each cell's outcome.

    A cell's outcome is the most telling one present: anything that found something beats a failure
    (in :class:`Shown` order among those), else the most frequent failure.
    """
    height = len(rows.labels)
    cell = rows.position * width + columns
    per_outcome = np.bincount(outcome.astype(np.intp) * height * width + cell,
                              minlength=OUTCOMES * height * width).reshape(OUTCOMES, height, width)
    totals = per_outcome.sum(axis=0)
    weight = per_outcome.astype(np.float64)
    for found in FOUND_SOMETHING:
        weight[found] += np.where(per_outcome[found] > 0, 1e12 * (OUTCOMES - found), 0.0)
    return totals, np.argmax(weight, axis=0)


def heat(rows: Axis, columns: Axis, outcome: npt.NDArray[np.uint8]
         ) -> tuple[npt.NDArray[np.int64], dict[Shown, npt.NDArray[np.bool_]]]:
    """Probes per (target, port) cell, and for each outcome that found something the cells that had one."""
    height, width = len(rows.labels), len(columns.labels)
    cell = rows.position * width + columns.position
    totals = np.bincount(cell, minlength=height * width).reshape(height, width)
    marks = {found: np.bincount(cell, weights=outcome == found, minlength=height * width).reshape(height, width) > 0
             for found in FOUND_SOMETHING}
    return totals, marks


def unit_of(extent: float) -> tuple[str, float]:
    """A readable unit for a span of seconds: its name and its length in seconds."""
    units = (("ms", 0.001, 1.0), ("s", 1.0, 180.0), ("min", 60.0, 3 * 3600.0), ("h", 3600.0, 3 * 86400.0))
    for name, seconds, up_to in units:
        if extent <= up_to:
            return name, seconds
    return "days", 86400.0


def span(values: Sequence[float]) -> tuple[float, float]:
    """The smallest and largest of some times (``0, 0`` for none)."""
    return (min(values), max(values)) if values else (0.0, 0.0)
