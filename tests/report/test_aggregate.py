"""The aggregation behind the pictures: capped axes keep what found something, time bins are round."""

from __future__ import annotations

from ipaddress import ip_address

import numpy as np

from sensor.report.aggregate import cell_outcomes, heat, port_axis, target_axis, time_bins
from sensor.report.probes import Probes, Shown


def _probes(rows: list[tuple[float, int, int, Shown]], targets: int) -> Probes:
    return Probes(
        ts=np.array([row[0] for row in rows], dtype=np.float64),
        target=np.array([row[1] for row in rows], dtype=np.int32),
        port=np.array([row[2] for row in rows], dtype=np.int32),
        outcome=np.array([row[3] for row in rows], dtype=np.uint8),
        targets=tuple(ip_address(f"10.0.0.{i + 1}") for i in range(targets)),
        pivots=(),
    )


def test_a_capped_axis_keeps_what_answered_then_the_most_probed_and_folds_the_rest() -> None:
    rows = [(float(i), i % 50, 1000 + i % 50, Shown.UNANSWERED) for i in range(500)]
    rows += [(600.0, 7, 1007, Shown.UNANSWERED)] * 3 + [(700.0, 42, 1042, Shown.ANSWERED)]
    probes = _probes(rows, 50)

    targets = target_axis(probes, cap=5)
    ports = port_axis(probes, cap=5)

    assert targets.labels[:-1] == ("10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.8", "10.0.0.43")
    assert targets.labels[-1] == "others (45 targets)"
    assert ports.labels == ("1000", "1001", "1002", "1007", "1042", "others (45 ports)")
    assert np.bincount(targets.position).tolist() == [10, 10, 10, 13, 11, 450]


def test_time_bins_have_a_round_width_and_cover_the_span() -> None:
    ts = np.array([100.0, 100.2, 163.9, 224.0])
    bins = time_bins(ts, 100.0, 224.0, count=120)
    assert bins.width == 2.0
    assert bins.count == 62
    assert bins.index.tolist() == [0, 0, 31, 61]


def test_a_cell_shows_the_most_telling_outcome_and_the_heat_map_marks_it() -> None:
    rows = [(0.0, 0, 22, Shown.UNANSWERED)] * 9 + [(0.5, 0, 22, Shown.HALF_OPEN), (0.7, 1, 23, Shown.REFUSED)]
    probes = _probes(rows, 2)
    targets, ports = target_axis(probes), port_axis(probes)
    bins = time_bins(probes.ts, 0.0, 1.0, count=1)

    totals, outcome = cell_outcomes(targets, bins.index, bins.count, probes.outcome)
    assert totals.tolist() == [[10], [1]]
    assert [Shown(int(value)) for value in outcome[:, 0]] == [Shown.HALF_OPEN, Shown.REFUSED]
    counts, marks = heat(targets, ports, probes.outcome)
    assert counts.tolist() == [[10, 0], [0, 1]]
    assert marks[Shown.HALF_OPEN].tolist() == [[True, False], [False, False]]
    assert not marks[Shown.ANSWERED].any()
