"""One picture per incident, drawn with matplotlib's Agg backend into PNG bytes.

Three panels share the story: probes per time bin stacked by outcome (how fast, is it still going), the
timeline of targets (time x target, each cell coloured by its most telling outcome), and the target x port
heat map, marking the cells where a probe was answered, half-open or touched a honeyport. Rule firings
are vertical lines on the time axes. Everything is aggregated first (:mod:`sensor.report.aggregate`), so
the drawing is bounded whatever the number of probes. Uses ``matplotlib.figure.Figure`` directly: no
pyplot, no global state, no display. Text is drawn with mathtext off, so a ``$`` in attacker-chosen text
is only a dollar sign.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import matplotlib as mpl
import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import ListedColormap, LogNorm, to_rgb
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, NullFormatter
from matplotlib.transforms import blended_transform_factory
from matplotlib.typing import RcKeyType

from sensor.report import evidence
from sensor.report.aggregate import (
    Bins,
    cell_outcomes,
    heat,
    outcome_counts,
    port_axis,
    target_axis,
    time_bins,
    unit_of,
)
from sensor.report.incidents import Incident, RuleFiring, headline, utc
from sensor.report.probes import Probes, Shown

COLOURS = {
    Shown.ANSWERED: "#1b9e77",
    Shown.REFUSED: "#d95f02",
    Shown.UNANSWERED: "#9e9e9e",
    Shown.HALF_OPEN: "#7570b3",
    Shown.STEALTH: "#a6761d",
    Shown.HONEYPORT: "#e7298a",
    Shown.OTHER: "#e6ab02",
}
"""Outcome colours (ColorBrewer Dark2, grey for the silent majority of a scan)."""
DPI = 100
SIZE = (12.0, 9.5)
_STYLE: dict[RcKeyType, Any] = {
    "text.parse_math": False, "font.size": 8, "axes.titlesize": 9, "axes.titleweight": "bold",
    "axes.spines.top": False, "axes.spines.right": False,
}


def _firing_groups(firings: Sequence[RuleFiring], start: float, extent: float) -> list[tuple[float, str]]:
    """Firings closer than 2 % of the axis merged into one labelled line."""
    groups: list[tuple[float, list[str]]] = []
    for firing in firings:
        at = firing.ts - start
        if groups and at - groups[-1][0] <= 0.02 * extent:
            groups[-1][1].append(firing.rule)
        else:
            groups.append((at, [firing.rule]))
    return [(at, ", ".join(rules)) for at, rules in groups]


RULE_ROWS = 3
"""Rows of the lane above the probe rate in which the rules' names stand, staggered so neighbours do not
overlap."""


def _mark_firings(axes: Axes, groups: list[tuple[float, str]], unit: float) -> None:
    """Rule firings as dashed lines across ``axes``."""
    for at, _rules in groups:
        axes.axvline(at / unit, color="#333333", linestyle="--", linewidth=0.8)


def _name_firings(lane: Axes, groups: list[tuple[float, str]], unit: float, extent: float) -> None:
    """The rules' names in a lane of their own above the probe rate (never over its bars or the y-axis),
    each at its firing's time, staggered in :data:`RULE_ROWS` rows; a tick joins each to its line."""
    lane.set_axis_off()
    lane.set_ylim(0.0, 1.0)
    over = blended_transform_factory(lane.transData, lane.transAxes)
    for number, (at, rules) in enumerate(groups):
        right = at > 0.6 * extent
        height = 1.0 - (number % RULE_ROWS) / RULE_ROWS
        lane.plot([at / unit, at / unit], [0.0, height - 0.3 / RULE_ROWS], transform=over, color="#333333",
                  linestyle="--", linewidth=0.8)
        lane.text(at / unit, height, f" {rules} ", transform=over, va="top", ha="right" if right else "left",
                  fontsize=7, color="#333333")



def _rate(axes: Axes, probes: Probes, bins: Bins, unit_name: str, unit: float) -> None:
    counts = outcome_counts(bins, probes.outcome)
    lefts = bins.edges()[:-1] / unit
    bottom = np.zeros(bins.count)
    for outcome in Shown:
        if counts[outcome].any():
            axes.bar(lefts, counts[outcome], width=bins.width / unit, bottom=bottom, align="edge",
                     color=COLOURS[outcome], linewidth=0)
            bottom += counts[outcome]
    axes.set_ylabel(f"probes per {bins.width / unit:g} {unit_name}")


def _timeline(axes: Axes, probes: Probes, bins: Bins, unit: float) -> None:
    rows = target_axis(probes)
    totals, outcome = cell_outcomes(rows, bins.index, bins.count, probes.outcome)
    palette = np.array([to_rgb(COLOURS[o]) for o in Shown])
    image = np.ones((len(rows.labels), bins.count, 4))
    image[..., :3] = palette[outcome]
    filled = totals > 0
    strength = np.log1p(totals) / np.log1p(max(int(totals.max()), 1))
    image[..., 3] = np.where(filled, 0.45 + 0.55 * strength, 0.0)
    axes.imshow(image, aspect="auto", interpolation="nearest",
                extent=(0.0, bins.count * bins.width / unit, len(rows.labels) - 0.5, -0.5))
    axes.set_yticks(range(len(rows.labels)), rows.labels, fontsize=7 if len(rows.labels) > 12 else 8)
    axes.set_title(f"Timeline: {len(probes.targets)} target{'s' if len(probes.targets) != 1 else ''}"
                   " (each cell: the most telling outcome of its probes; darker: more probes)", loc="left")


def _heat_map(figure: Figure, axes: Axes, colour_axes: Axes, probes: Probes) -> None:
    rows, columns = target_axis(probes), port_axis(probes)
    totals, marks = heat(rows, columns, probes.outcome)
    cmap = ListedColormap(mpl.colormaps["Blues"](np.linspace(0.25, 1.0, 256))).with_extremes(bad="white")
    shown = np.ma.masked_equal(totals, 0)
    image = axes.imshow(shown, aspect="auto", interpolation="nearest", cmap=cmap,
                        norm=LogNorm(vmin=1, vmax=max(int(totals.max()), 2)))
    for number, (outcome, marked) in enumerate(marks.items()):
        marked_rows, marked_columns = np.nonzero(marked)
        if marked_rows.size:
            offset = (number - 1) * 0.22
            axes.scatter(marked_columns + offset, marked_rows, s=20, marker="o", color=COLOURS[outcome],
                         edgecolors="white", linewidths=0.6, label=outcome.label)
    if any(marked.any() for marked in marks.values()):
        axes.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), frameon=False, fontsize=7, ncols=3,
                    title="cells where a probe found a", title_fontsize=7)
    axes.set_yticks(range(len(rows.labels)), rows.labels, fontsize=7 if len(rows.labels) > 12 else 8)
    axes.set_xticks(range(len(columns.labels)), columns.labels, rotation=90,
                    fontsize=7 if len(columns.labels) > 12 else 8)
    axes.set_xlabel("target port")
    distinct_ports = int(np.unique(probes.port).size)
    axes.set_title(f"Targets x ports: {distinct_ports} distinct port{'s' if distinct_ports != 1 else ''}"
                   " (colour: probes per cell)", loc="left")
    bar = figure.colorbar(image, cax=colour_axes, label="probes")
    most = max(int(totals.max()), 2)
    if most < 100:  # decades alone would leave one tick (1) below 10 and two below 100
        bar.set_ticks([tick for tick in (1, 2, 5, 10, 20, 50) if tick <= most])
    bar.ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _position: f"{value:g}"))
    bar.ax.yaxis.set_minor_formatter(NullFormatter())


def _time_range(incident: Incident, probes: Probes) -> tuple[float, float]:
    """The time axis: the incident's first to last seen, widened to its probes."""
    times = [incident.latest.first_seen, incident.latest.last_seen]
    if len(probes):
        times += [float(probes.ts.min()), float(probes.ts.max())]
    return min(times), max(times)


def _on_axis(firings: Sequence[RuleFiring], start: float, end: float) -> tuple[list[RuleFiring], str]:
    """The firings drawn on the time axis (within it, give or take 5 %), and a note naming the others:
    an alert's time is when the sensor emitted it, which a live sensor may do long after the probes."""
    margin = 0.05 * max(end - start, 1e-3)
    inside = [f for f in firings if start - margin <= f.ts <= end + margin]
    outside = [f"{f.rule} at {utc(f.ts)}" for f in firings if f not in inside]
    return inside, ("; alerted outside this axis: " + ", ".join(outside[:3])
                    + (f" and {len(outside) - 3} more" if len(outside) > 3 else "")) if outside else ""


def _legend(figure: Figure, probes: Probes) -> None:
    present = sorted({Shown(int(o)) for o in np.unique(probes.outcome)})
    handles = [Patch(color=COLOURS[o], label=o.label) for o in present]
    if handles:
        figure.legend(handles=handles, loc="outside upper right", ncols=len(handles), frameon=False,
                      title="outcome", title_fontsize=8)


def incident_figure(incident: Incident, probes: Probes) -> Figure:
    """The picture of one incident (not yet rendered)."""
    with mpl.rc_context(_STYLE):
        figure = Figure(figsize=SIZE, dpi=DPI, layout="constrained")
        FigureCanvasAgg(figure)
        latest = incident.latest
        figure.suptitle(f"{headline(incident)}\n{latest.message[:160]}", x=0.01, ha="left", fontsize=10)
        rows = len(target_axis(probes).labels) if len(probes) else 1
        band = min(2.6, 0.7 + 0.08 * rows)
        grid = figure.add_gridspec(4, 2, height_ratios=(0.3, 1.4, band, band), width_ratios=(60, 1))
        lane = figure.add_subplot(grid[0, 0])
        rate_axes = figure.add_subplot(grid[1, 0], sharex=lane)
        timeline_axes = figure.add_subplot(grid[2, 0], sharex=rate_axes)
        heat_axes = figure.add_subplot(grid[3, 0])
        colour_axes = figure.add_subplot(grid[3, 1])
        start, end = _time_range(incident, probes)
        unit_name, unit = unit_of(end - start)
        drawn, note = _on_axis(incident.firings, start, end)
        groups = _firing_groups(drawn, start, max(end - start, 1e-3))
        lane.set_title(("Probe rate, by outcome, and the rules as they fired" if len(probes) else
                        "The rules as they fired") + note, loc="left")
        timed = True
        if len(probes):
            bins = time_bins(probes.ts, start, end, unit=unit)
            _rate(rate_axes, probes, bins, unit_name, unit)
            _timeline(timeline_axes, probes, bins, unit)
            _heat_map(figure, heat_axes, colour_axes, probes)
            _legend(figure, probes)
            rate_axes.tick_params(labelbottom=False)
        else:
            timed = _from_alerts(incident, (rate_axes, timeline_axes, heat_axes), start, unit, unit_name)
            colour_axes.set_axis_off()
        _name_firings(lane, groups, unit, end - start)
        _mark_firings(rate_axes, groups, unit)
        if timed:
            _mark_firings(timeline_axes, groups, unit)
            timeline_axes.set_xlabel(f"{unit_name} since {utc(start)}")
        return figure


def _from_alerts(incident: Incident, panels: tuple[Axes, Axes, Axes], start: float, unit: float,
                 unit_name: str) -> bool:
    """The three panels of an incident without conn.log probes, from what its alerts carry
    (:mod:`sensor.report.evidence`): its extent update by update, then its honeyport touches and their
    first bytes, or the mDNS names it asked for, or the targets and ports the alerts sampled. True when
    the middle panel has a time axis."""
    grown, middle, bottom = panels
    evidence.extent(grown, incident, start, unit, unit_name)
    if incident.touches:
        evidence.touches(middle, incident, start, unit, unit_name)
        evidence.payloads(bottom, incident)
        return True
    if incident.names:
        evidence.names(middle, incident, start, unit, unit_name)
        evidence.sample(bottom, incident)
        return True
    evidence.sample(middle, incident)
    bottom.set_axis_off()
    return False


def png(figure: Figure) -> bytes:
    """The figure as PNG bytes (no timestamp in the metadata, so the same input gives the same file)."""
    buffer = io.BytesIO()
    with mpl.rc_context(_STYLE):
        figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def incident_png(incident: Incident, probes: Probes) -> bytes:
    """The picture of one incident as PNG bytes."""
    return png(incident_figure(incident, probes))
