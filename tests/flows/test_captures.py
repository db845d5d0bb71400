"""Flow logs derived from the project's real captures (tests/flows/derive.py) in every provider's format: the
aggregation checked against Zeek's view of the same capture, and replay of each format finds the captures'
scanners and stays silent on the benign ones."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest

from sensor.config import SensorConfig
from sensor.replay import replay
from tests.alertcheck import validate_alert
from tests.flows.derive import flows, write_all

ROOT = Path(__file__).resolve().parents[2]
TRACES = ROOT / "zeek_scripts" / "testing" / "Traces"
CAPTURES = ROOT / "tests" / "data" / "captures"
FLOW_VISIBLE = ("b1_benign_clients", "b2_monitoring_poller", "s1_vertical_syn", "s2_horizontal_syn",
                "s2_horizontal_syn_routed", "s4_version_scan", "s6_udp_scan")
"""Every capture but s8 (mDNS browsing: multicast questions and one unicast 5353 query, which no flow log tells
from name resolution; docs/sources.md)."""
FORMATS = {"aws-v2": "aws_vpc_flow", "aws-v5": "aws_vpc_flow", "gcp": "gcp_vpc_flow", "azure": "azure_flow"}


@pytest.fixture(scope="module")
def derived(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Path]]:
    out = tmp_path_factory.mktemp("derived")
    return {name: write_all(TRACES / f"{name}.pcap", out / name) for name in (*FLOW_VISIBLE, "s8_mdns_browse")}


def _alerts(path: Path) -> list[dict[str, object]]:
    out = io.BytesIO()
    replay([path], SensorConfig(), out)
    return [validate_alert(json.loads(line)) for line in out.getvalue().splitlines()]


def _zeek_connections(capture: str, scanner: str) -> set[tuple[str, int, str, int]]:
    found = set()
    for line in (CAPTURES / capture / "zeek-json" / "conn.log").read_text().splitlines():
        record = json.loads(line)
        if record["id.orig_h"] == scanner and record["proto"] == "tcp":
            found.add((record["id.orig_h"], record["id.orig_p"], record["id.resp_h"], record["id.resp_p"]))
    return found


def test_the_aggregation_has_zeeks_connections_and_rejects_what_failed() -> None:
    connections = flows(TRACES / "s1_vertical_syn.pcap")
    scanner = {(c.source, c.source_port, c.target, c.target_port): c for c in connections if c.proto == 6
               and c.source == "10.200.0.10"}
    assert set(scanner) == _zeek_connections("s1_vertical_syn", "10.200.0.10")
    answered = {key for key, c in scanner.items() if not c.rejected}
    open_ports = {port for (_, _, _, port) in answered}
    assert open_ports == {22, 80, 8080}  # the target's three services: every other probe was refused
    assert all(c.refused for key, c in scanner.items() if key not in answered)
    assert all(len(c.out) == 1 for c in scanner.values())  # nmap's probes each fall in one window


@pytest.mark.parametrize("capture", FLOW_VISIBLE)
@pytest.mark.parametrize("fmt", FORMATS)
def test_replay_of_derived_flow_logs_finds_the_captures_scanners(derived: dict[str, dict[str, Path]], capture: str,
                                                                  fmt: str) -> None:
    truth = json.loads((CAPTURES / capture / "truth.json").read_text())
    alerts = _alerts(derived[capture][fmt])
    scanners = {alert["source"]["ip"] for alert in alerts}  # type: ignore[index]
    expected = {entry["ip"] for entry in truth["scanners"] if not entry.get("stretch")}
    assert expected <= scanners
    allowed = {entry["ip"] for entry in truth["scanners"]}
    assert scanners <= allowed, f"alerts about {scanners - allowed} in a capture whose truth is {allowed}"
    for alert in alerts:
        entry = next(entry for entry in truth["scanners"] if entry["ip"] == alert["source"]["ip"])  # type: ignore[index]
        assert re.fullmatch(entry["actions"], alert["event"]["action"])  # type: ignore[index]
        assert alert["t1046"]["evidence_sources"] == [FORMATS[fmt]]  # type: ignore[index]
    if fmt != "aws-v2" and alerts:  # the formats that say where a record was captured name the scanner's host
        assert all("cloud" in alert and "host" in alert for alert in alerts)


def test_mdns_browsing_is_not_a_flow_logs_to_see(derived: dict[str, dict[str, Path]]) -> None:
    for fmt in FORMATS:
        assert _alerts(derived["s8_mdns_browse"][fmt]) == []
