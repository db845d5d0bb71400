"""The panels of an incident the input holds no conn.log probes for: drawn from what its alerts carry.

A honeyport-only incident (what ``run``'s embedded default makes), an ARP sweep, mDNS browsing, a scan Zeek
reported in a notice: their alerts say how the incident grew (each update's counts), which honeyports were
touched, when, how and with what first bytes (``t1046.sample.honeyport_touches``), which mDNS names were
asked for. Three panels tell that story in the places the probe panels take otherwise: the extent update
by update, the touches by honeyport (or the names by first update, or the sampled targets), and what each
honeyport was sent first. Every axis is titled; no panel is left empty. Text is drawn with mathtext off by
the caller's style, so attacker bytes (already escaped as ``\\xNN`` by the alert) show as they are.
"""

from __future__ import annotations

from matplotlib.axes import Axes

from sensor.report.incidents import Incident, TouchSeen

TOUCH_STYLES = {
    "connect": ("o", "#1b9e77", "TCP connection (source proven)"),
    "half_open": ("^", "#7570b3", "half-open SYN"),
    "syn": ("v", "#9e9e9e", "SYN left unanswered"),
    "datagram": ("s", "#d95f02", "UDP datagram"),
    "unknown": ("x", "#666666", "touch of unknown kind"),
}
"""Marker, colour and legend word of each kind of honeyport touch."""
EXTENT_COUNTS = (("distinct_hosts", "hosts"), ("distinct_ports", "ports"), ("honeyports", "honeyports"),
                 ("arp_addresses", "addresses asked by ARP"), ("services_found", "services found"))
ROWS = 24
"""Rows of the touches and names panels, at the most (the alerts sample fewer)."""
PAYLOAD_SHOWN = 40


def extent(axes: Axes, incident: Incident, start: float, unit: float, unit_name: str) -> None:
    """How the incident grew, update by update: each count its alerts carry, as steps over time."""
    drawn = 0
    for name, label in EXTENT_COUNTS:
        points = [((update.ts - start) / unit, update.count(name)) for update in incident.history]
        if any(value for _, value in points):
            times, values = zip(*points, strict=True)
            axes.step(times, values, where="post", marker="o", markersize=3, linewidth=1.2, label=label)
            drawn += 1
    names = incident.names
    if names:
        axes.step([(ts - start) / unit for ts, _ in names], range(1, len(names) + 1), where="post", marker="o",
                  markersize=3, linewidth=1.2, label="mDNS names asked")
        drawn += 1
    if not drawn:
        points = [((update.ts - start) / unit, update.count("probes")) for update in incident.history]
        times, values = zip(*points, strict=True)
        axes.step(times, values, where="post", marker="o", markersize=3, label="probes")
    axes.set_ylabel("count, as the alerts said")
    axes.set_xlabel(f"{unit_name} since the first evidence")
    axes.legend(loc="upper left", frameon=False, fontsize=7)
    axes.set_title(f"Extent, update by update ({incident.updates} update{'s' if incident.updates != 1 else ''};"
                   " no conn.log probes in the input: drawn from the alerts)", loc="left")


def _row(touch: TouchSeen, several: bool) -> str:
    where = f"{touch.target} " if several else ""
    return f"{where}{touch.port}/{touch.transport} {touch.profile}"


def touches(axes: Axes, incident: Incident, start: float, unit: float, unit_name: str) -> None:
    """Each honeyport touched, at its first touch: a row per honeyport (port and profile), a marker per kind."""
    shown = incident.touches[:ROWS]
    several = len({touch.target for touch in shown}) > 1
    rows = {_row(touch, several): number for number, touch in enumerate(shown)}
    for kind, (marker, colour, label) in TOUCH_STYLES.items():
        mine = [touch for touch in shown if touch.touch == kind]
        if mine:
            axes.scatter([(touch.ts - start) / unit for touch in mine], [rows[_row(touch, several)] for touch in mine],
                         marker=marker, color=colour, s=36, label=label, zorder=3)
    axes.set_yticks(range(len(rows)), list(rows), fontsize=7 if len(rows) > 12 else 8)
    axes.set_ylim(len(rows) - 0.5, -0.5)
    axes.set_ylabel("honeyport (port/transport, profile)")
    axes.set_xlabel(f"{unit_name} since the first evidence")
    axes.grid(axis="y", color="#eeeeee")
    axes.legend(loc="lower right", frameon=False, fontsize=7, title="how it was touched", title_fontsize=7)
    total = incident.latest.count("honeyports") or len(incident.touches)
    axes.set_title(f"Honeyport touches by port and profile: {total} honeyport{'s' if total != 1 else ''}"
                   + (f" (the first {len(shown)} the alerts sampled)" if total > len(shown) else ""), loc="left")


def payloads(axes: Axes, incident: Incident) -> None:
    """What each honeyport was sent first, as a table tied to its port."""
    axes.set_axis_off()
    rows = [[touch.target, f"{touch.port}/{touch.transport}", touch.profile, touch.touch.replace("_", "-"),
             (touch.payload[:PAYLOAD_SHOWN] + ("…" if len(touch.payload) > PAYLOAD_SHOWN else "")) or "(nothing)"]
            for touch in incident.touches[:ROWS]]
    table = axes.table(cellText=rows, colLabels=["target", "honeyport", "profile", "touch", "first bytes sent"],
                       loc="upper left", cellLoc="left", colLoc="left", colWidths=[0.14, 0.1, 0.1, 0.1, 0.56])
    table.auto_set_font_size(False)
    table.set_fontsize(7)
    axes.set_title("What each honeyport was sent first (escaped: \\xNN for every byte that is not printable)",
                   loc="left")


def names(axes: Axes, incident: Incident, start: float, unit: float, unit_name: str) -> None:
    """The mDNS names the scanner asked for, at the first update that named each."""
    shown = incident.names[:ROWS]
    axes.scatter([(ts - start) / unit for ts, _ in shown], range(len(shown)), color="#e7298a", s=30, zorder=3)
    axes.set_yticks(range(len(shown)), [name for _, name in shown], fontsize=7 if len(shown) > 12 else 8)
    axes.set_ylim(len(shown) - 0.5, -0.5)
    axes.set_ylabel("mDNS name asked for")
    axes.set_xlabel(f"{unit_name} since the first evidence")
    axes.set_title(f"mDNS names asked for, at the update that first named each ({len(incident.names)})", loc="left")


def sample(axes: Axes, incident: Incident) -> None:
    """The targets and ports the alerts sampled, when nothing else is drawn: what the scanner reached."""
    axes.set_axis_off()
    latest = incident.latest
    lines = [f"targets ({latest.count('distinct_hosts')}, a sample): {', '.join(latest.targets) or 'none named'}",
             f"ports ({latest.count('distinct_ports')}, a sample): {', '.join(map(str, latest.ports)) or 'none named'}"]
    if latest.count("arp_addresses"):
        lines.insert(0, f"addresses Zeek saw it ask for by ARP: {latest.count('arp_addresses')}")
    if latest.notes:
        lines.append(f"Zeek said: {', '.join(latest.notes)}")
    axes.text(0.0, 1.0, "\n".join(lines), transform=axes.transAxes, va="top", ha="left", fontsize=8, wrap=True)
    axes.set_title("What the alerts name", loc="left")
