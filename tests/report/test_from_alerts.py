"""Incidents the input holds no conn.log probes for -- honeyport touches (what ``run``'s embedded default
makes), an ARP sweep, mDNS browsing, the aggregate of forged sources -- are drawn from what their alerts
carry: no panel stays empty, every drawn axis is titled."""

from __future__ import annotations

import io
from ipaddress import ip_address
from pathlib import Path

import orjson
from matplotlib.figure import Figure
from matplotlib.table import Table
from matplotlib.text import Text

from sensor.alerts.render import render_line
from sensor.config import DetectionConfig, default_config
from sensor.detect.correlator import Correlator
from sensor.observations import HoneyportHit, MdnsQuery, Touch, Transport
from sensor.replay import replay
from sensor.report.command import write_report
from sensor.report.figures import incident_figure
from sensor.report.incidents import Incident, fold, read_alerts, update_of
from sensor.report.probes import no_probes

DATA = Path(__file__).resolve().parents[1] / "data"
HONEYPORTS = DATA / "honeyports" / "alerts.jsonl"
"""A real run: nmap -sS of six honeyports, then -sV of three (tests/data/honeyports/PROVENANCE.md)."""


def _figure(incident: Incident) -> Figure:
    return incident_figure(incident, no_probes())


def _texts(figure: Figure) -> list[str]:
    return [text.get_text() for text in figure.findobj(Text) if text.get_text()]


def _checked(figure: Figure) -> Figure:
    """Every axis that draws something has a title; no panel says it has nothing to draw."""
    for axes in figure.axes:
        if axes.axison and (axes.lines or axes.collections or axes.images or axes.patches):
            assert axes.get_title(loc="left"), axes
    assert not [text for text in _texts(figure) if "no conn.log probes of this incident" in text]
    return figure


def test_a_honeyport_only_incident_is_its_touches_by_port_and_profile_and_what_each_was_sent() -> None:
    updates, skipped = read_alerts(HONEYPORTS)
    (incident,) = fold(updates)
    assert skipped == 0 and incident.scanner is not None
    figure = _checked(_figure(incident))
    touches = next(axes for axes in figure.axes if axes.get_title(loc="left").startswith("Honeyport touches"))
    labels = [label.get_text() for label in touches.get_yticklabels()]
    assert labels == [f"{port}/tcp {profile}" for port, profile in
                      ((2222, "ssh"), (2323, "telnet"), (8081, "http"), (13306, "mysql"), (33389, "rdp"),
                       (35900, "vnc"))]
    assert sum(len(points.get_offsets()) for points in touches.collections) == 6
    assert {text.get_text() for text in touches.get_legend().get_texts()} == {
        "TCP connection (source proven)", "half-open SYN"}, "the SYN scan's touches, then -sV's connections"
    (table,) = [child for axes in figure.axes for child in axes.get_children() if isinstance(child, Table)]
    rows = {}
    for (row, column), cell in table.get_celld().items():
        rows.setdefault(row, {})[column] = cell.get_text().get_text()
    http = next(cells for cells in rows.values() if cells.get(1) == "8081/tcp")
    assert (http[3], http[4]) == ("connect", "GET / HTTP/1.0\\x0d\\x0a\\x0d\\x0a"), "the payload tied to its port"


def test_an_arp_sweep_is_drawn_by_the_addresses_it_asked_for(tmp_path: Path) -> None:
    out = io.BytesIO()
    replay([DATA / "arp" / "nmap_sn_sweep" / "zeek"], default_config(), out)
    (incident,) = fold(update_of(orjson.loads(line)) for line in out.getvalue().splitlines())
    figure = _checked(_figure(incident))
    extent = next(axes for axes in figure.axes if axes.get_title(loc="left").startswith("Extent, update by update"))
    asked = next(line for line in extent.lines if line.get_label() == "addresses asked by ARP")
    assert list(asked.get_ydata()) == [20, 160]
    assert extent.get_ylabel() and extent.get_xlabel()
    assert any(text.startswith("addresses Zeek saw it ask for by ARP: 160") for text in _texts(figure))


def _written(tmp_path: Path, alerts: list) -> Path:
    path = tmp_path / "alerts.jsonl"
    path.write_bytes(b"".join(render_line(alert, "test") for alert in alerts))
    return path


def test_mdns_browsing_is_drawn_by_the_names_asked_for(tmp_path: Path) -> None:
    correlator = Correlator(DetectionConfig())
    alerts = []
    for n, name in enumerate(("_services._dns-sd._udp.local", "_ssh._tcp.local", "_rfb._tcp.local")):
        query = MdnsQuery(ts=1000.0 + n, source=ip_address("10.40.0.9"), source_port=5353, name=name, qtype="PTR")
        alerts += correlator.observe(query, query.ts)
    alerts += correlator.flush(1100.0)
    (incident,) = fold(read_alerts(_written(tmp_path, alerts))[0])
    figure = _checked(_figure(incident))
    names = next(axes for axes in figure.axes if axes.get_title(loc="left").startswith("mDNS names asked for"))
    assert [label.get_text() for label in names.get_yticklabels()] == [
        "_services._dns-sd._udp.local", "_ssh._tcp.local", "_rfb._tcp.local"]


def test_the_aggregate_of_forged_sources_is_reported_and_drawn(tmp_path: Path) -> None:
    correlator = Correlator(DetectionConfig())
    alerts = []
    for n in range(50):
        hit = HoneyportHit(ts=1000.0 + n * 0.01, source=ip_address(f"172.30.0.{n + 1}"), source_port=40000,
                           target=ip_address("10.40.0.5"), target_port=161, transport=Transport.UDP,
                           profile="snmp", payload=b"\x30\x26", touch=Touch.DATAGRAM)
        alerts += correlator.observe(hit, hit.ts)
    alerts += correlator.flush(1100.0)
    path = _written(tmp_path, alerts)
    summary = write_report([path], default_config(), tmp_path / "report.html", png_dir=tmp_path / "png")
    assert summary.incidents == 4, "three sources of their own, and the aggregate"
    html = (tmp_path / "report.html").read_text()
    assert "50 unproven sources" in html
    assert any(name.name.startswith("04-many-sources-") for name in (tmp_path / "png").iterdir())
    aggregate = next(incident for incident in fold(read_alerts(path)[0]) if incident.scanner is None)
    _checked(_figure(aggregate))
