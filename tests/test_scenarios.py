"""Every recorded scenario, TSV and JSON: each scanner alerted with the right action, nobody else."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path

import pytest

from sensor.config import default_config
from sensor.replay import replay
from tests.alertcheck import parse_alerts
from tests.conftest import CAPTURES, scenarios, truth


def _replay(path: Path) -> list[dict]:
    out = io.BytesIO()
    replay([path], default_config(), out)
    return parse_alerts(out.getvalue())


SCAN_CLASSES = {"port_scan", "address_scan", "network_scan"}
ACTION = {
    "s1_vertical_syn": "port_scan",  # 1000 ports of one target
    "s2_horizontal_syn": "address_scan",  # nmap swept 60 addresses for 6 ports; ARP found 4 live ones
    "s2_horizontal_syn_routed": "address_scan",  # 80 hosts x 6 ports
    "s4_version_scan": "port_scan",  # -sV of three ports of one target
    "s6_udp_scan": "port_scan",  # -sU of 40 ports of one target
    "s8_mdns_browse": "mdns_service_browse",  # PTR questions for _ssh._tcp and the service list
}
"""The one ``event.action`` each scanning capture's incident must end with (the truth files' regexes,
such as ``.*scan.*``, also accept the wrong scan class)."""
WRONG_CLASS = {
    "s2_horizontal_syn": "replay says network_scan: conn.log shows 6 ports on each of 4 hosts (nmap's ARP "
                         "discovery, which found them among the 60 addresses swept, is not in conn.log), and "
                         "docs/alerts.md makes 4 targets x 6 ports 'many targets and many ports'",
}
"""Captures whose scan replay classifies wrongly today (reported, not hidden: their test is a strict xfail)."""


@pytest.mark.parametrize("flavour", ["zeek", "zeek-json"])
@pytest.mark.parametrize("name", scenarios())
def test_scenario_matches_ground_truth(name: str, flavour: str) -> None:
    expected = truth(name)
    alerts = _replay(CAPTURES / name / flavour)
    alerted = {a["source"]["ip"] for a in alerts if a["event"]["kind"] == "alert"}
    scanners = {s["ip"] for s in expected["scanners"]}
    assert alerted == scanners, f"{name}: alerted {alerted}, truth says {scanners}"


def test_every_scanning_capture_has_one_exact_action_that_its_truth_accepts() -> None:
    scanning = {name for name in scenarios() if truth(name)["scanners"]}
    assert set(ACTION) == scanning
    for name, action in ACTION.items():
        assert all(re.fullmatch(scanner["actions"], action) for scanner in truth(name)["scanners"]), name


@pytest.mark.parametrize("flavour", ["zeek", "zeek-json"])
@pytest.mark.parametrize("name", [
    pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=WRONG_CLASS[name])) if name in WRONG_CLASS
    else name for name in sorted(ACTION)])
def test_each_scan_is_named_by_its_exact_class(name: str, flavour: str) -> None:
    """The incident ends with the capture's action, and no update of it names another scan class."""
    alerts = _replay(CAPTURES / name / flavour)
    for scanner in truth(name)["scanners"]:
        actions = [a["event"]["action"] for a in alerts if a["source"]["ip"] == scanner["ip"]]
        assert actions and actions[-1] == ACTION[name], (name, actions)
        wrong = {action for action in actions if action in SCAN_CLASSES} - {ACTION[name]}
        assert not wrong, (name, actions)


@pytest.mark.parametrize("name", scenarios())
def test_tsv_and_json_copies_give_the_same_incidents(name: str) -> None:
    """The two copies come from two Zeek runs (their uids and line order differ): compare final states."""

    def final_states(alerts: list[dict]) -> dict[str, tuple]:
        states = {}
        for a in alerts:
            counts = a["t1046"]["counts"]
            states[a["source"]["ip"]] = (a["event"]["action"], counts["probes"], counts["distinct_ports"],
                                         counts["distinct_hosts"], a["t1046"]["closed"])
        return states

    assert final_states(_replay(CAPTURES / name / "zeek")) == final_states(_replay(CAPTURES / name / "zeek-json"))


def test_one_incident_per_scanner_growing_not_one_alert_per_probe() -> None:
    alerts = _replay(CAPTURES / "s1_vertical_syn" / "zeek")
    assert len({a["t1046"]["incident_id"] for a in alerts}) == 1
    assert len(alerts) < 15, "updates are logarithmic in the scan's size, not one per probe"
    updates = [a["t1046"]["update"] for a in alerts]
    assert updates == list(range(1, len(alerts) + 1))
    last = alerts[-1]
    assert last["t1046"]["counts"]["distinct_ports"] == 1000
    assert last["t1046"]["counts"]["distinct_hosts"] == 1
    assert last["destination"]["ip"] == "10.200.0.20"
    assert last["event"]["action"] == "port_scan"
    assert last["t1046"]["closed"] is False, "the logs end; the incident is not known to be over"


def test_replay_is_deterministic_and_the_cli_prints_a_summary(tmp_path: Path) -> None:
    path = CAPTURES / "s2_horizontal_syn_routed" / "zeek"
    runs = [subprocess.run([sys.executable, "-m", "sensor", "replay", str(path)], capture_output=True,
                           text=True, timeout=60, check=True) for _ in range(2)]
    assert runs[0].stdout == runs[1].stdout
    alerts = parse_alerts(runs[0].stdout)
    assert alerts and all(a["source"]["ip"] == "10.201.0.10" for a in alerts)
    summary = runs[0].stderr.strip().splitlines()[-1]
    assert re.match(r"replay: \d+ records from 2 files, 0 malformed, \d+ observations, "
                    rf"{len(alerts)} alerts", summary), summary


def test_ocsf_format_carries_the_attack_technique() -> None:
    result = subprocess.run([sys.executable, "-m", "sensor", "replay", "--format", "ocsf",
                             str(CAPTURES / "s6_udp_scan" / "zeek")], capture_output=True, text=True,
                            timeout=60, check=True)
    findings = parse_alerts(result.stdout)
    assert findings
    for finding in findings:
        assert finding["class_uid"] == 2004
        attack = finding["finding_info"]["attacks"][0]
        assert attack["technique"]["uid"] == "T1046" and attack["tactic"]["uid"] == "TA0007"
        assert finding["evidences"][0]["src_endpoint"]["ip"] == "10.200.0.10"
        assert finding["observables"][0] == {"name": "evidences[0].src_endpoint.ip", "type_id": 2,
                                             "type": "IP Address", "value": "10.200.0.10"}


def test_progress_line_for_large_input_on_a_terminal() -> None:
    progress = io.StringIO()
    replay([CAPTURES / "s1_vertical_syn" / "zeek"], default_config(), io.BytesIO(), progress=progress,
           progress_bytes=0)
    text = progress.getvalue()
    assert text.startswith("\rreplay: ") and "records read" in text and text.endswith("\r\x1b[K")
    quiet = io.StringIO()
    replay([CAPTURES / "s1_vertical_syn" / "zeek"], default_config(), io.BytesIO(), progress=quiet)
    assert quiet.getvalue() == ""


def test_replay_config_labels_or_suppresses_an_authorized_scanner(tmp_path: Path) -> None:
    path = CAPTURES / "s2_horizontal_syn_routed" / "zeek"
    label = tmp_path / "label.yaml"
    label.write_text("detection:\n  allowlist:\n    - {cidr: 10.201.0.0/24, reason: quarterly pentest}\n")
    labelled = subprocess.run([sys.executable, "-m", "sensor", "replay", "--config", str(label), str(path)],
                              capture_output=True, text=True, timeout=60, check=True)
    alerts = parse_alerts(labelled.stdout)
    assert alerts and {a["event"]["kind"] for a in alerts} == {"event"}
    assert {a["t1046"]["authorized"]["reason"] for a in alerts} == {"quarterly pentest"}
    suppress = tmp_path / "suppress.yaml"
    suppress.write_text(label.read_text() + "  allowlist_mode: suppress\n")
    suppressed = subprocess.run([sys.executable, "-m", "sensor", "replay", "--config", str(suppress), str(path)],
                                capture_output=True, text=True, timeout=60, check=True)
    assert suppressed.stdout == ""
    assert f"({len(alerts)} suppressed as authorized)" in suppressed.stderr


STEALTH = Path(__file__).resolve().parent / "data" / "stealth"


@pytest.mark.parametrize("name", sorted(p.name for p in STEALTH.iterdir() if p.is_dir()))
def test_stealth_scans_without_a_handshake(name: str) -> None:
    """nmap -sF/-sN/-sX/-sA/-sM as real Zeek logged them (see tests/data/stealth/PROVENANCE.md)."""
    import json

    expected = json.loads((STEALTH / name / "truth.json").read_text())
    alerts = _replay(STEALTH / name / "zeek")
    assert {a["source"]["ip"] for a in alerts} == {s["ip"] for s in expected["scanners"]}
    last = alerts[-1]
    assert re.fullmatch(expected["scanners"][0]["actions"], last["event"]["action"])
    assert "T1046-STEALTH" in last["t1046"]["rules"] and "T1046-TRW" not in last["t1046"]["rules"]
    assert last["t1046"]["counts"]["distinct_ports"] >= 98
