"""ARP sweeps as the Zeek package reports them: replaying the logs real Zeek wrote with the package loaded
for the recorded ARP captures (tests/data/arp/PROVENANCE.md) alerts the nmap -sn scanner with
``address_scan`` and stays silent on ordinary ARP."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest

from sensor.config import default_config
from sensor.replay import replay
from tests.alertcheck import parse_alerts

ARP_DATA = Path(__file__).resolve().parents[1] / "data" / "arp"
SCENARIOS = sorted(p.name for p in ARP_DATA.iterdir() if p.is_dir())


def _replay(path: Path) -> list[dict]:
    out = io.BytesIO()
    summary = replay([path], default_config(), out)
    assert summary.malformed == 0
    return parse_alerts(out.getvalue())


def test_both_scenarios_are_recorded() -> None:
    assert SCENARIOS == ["benign_arp", "nmap_sn_sweep"]


@pytest.mark.parametrize("flavour", ["zeek", "zeek-json"])
@pytest.mark.parametrize("name", SCENARIOS)
def test_arp_capture_matches_ground_truth(name: str, flavour: str) -> None:
    expected = json.loads((ARP_DATA / name / "truth.json").read_text(encoding="utf-8"))
    alerts = _replay(ARP_DATA / name / flavour)
    assert {a["source"]["ip"] for a in alerts} == {s["ip"] for s in expected["scanners"]}
    for scanner in expected["scanners"]:
        mine = [a for a in alerts if a["source"]["ip"] == scanner["ip"]]
        assert {a["event"]["kind"] for a in mine} == {"alert"}
        assert all(re.fullmatch(scanner["actions"], a["event"]["action"]) for a in mine), mine


@pytest.mark.parametrize("flavour", ["zeek", "zeek-json"])
def test_the_sweep_is_the_package_s_own_detection(flavour: str) -> None:
    """Nothing of the sweep reaches conn.log: the alert rests on t1046.log and the Address_Scan notice."""
    alerts = _replay(ARP_DATA / "nmap_sn_sweep" / flavour)
    last = alerts[-1]
    assert last["event"]["action"] == "address_scan"
    assert {"T1046-ZEEK-DETECTION", "T1046-ZEEK-NOTICE"} <= set(last["t1046"]["rules"])
    assert "T1046::Address_Scan" in last["t1046"]["zeek"]["notes"]
    assert last["t1046"]["counts"]["distinct_hosts"] >= 160


PACKAGE_LOGS = ARP_DATA.parent / "package-logs"
REACH = ARP_DATA.parent / "reach"
REACH_ARP = ("arp_answered_ssh", "arp_only_sweep", "arp_routed_scan")
"""The ARP captures of tests/data/reach (see their PROVENANCE.md); package-logs/reach__<name> holds the logs
Zeek wrote for each with the package loaded."""


@pytest.mark.parametrize("flavour", [".", "zeek-json"])
@pytest.mark.parametrize("name", REACH_ARP)
def test_arp_evidence_is_what_went_unanswered_or_unused(name: str, flavour: str) -> None:
    """SSH to 40 hosts that exist is no sweep; nmap -sT of 41 addresses, 38 absent, is the scanner's own sweep;
    a routed scan of mostly absent targets is the routed scanner's, never the router's."""
    expected = json.loads((REACH / name / "truth.json").read_text(encoding="utf-8"))
    alerts = _replay(PACKAGE_LOGS / f"reach__{name}" / flavour)
    assert {a["source"]["ip"] for a in alerts} == {s["ip"] for s in expected["scanners"]}
    for scanner in expected["scanners"]:
        mine = [a for a in alerts if a["source"]["ip"] == scanner["ip"]]
        assert all(re.fullmatch(scanner["actions"], a["event"]["action"]) for a in mine), mine
        assert "T1046::Address_Scan" in mine[-1]["t1046"]["zeek"]["notes"]


def test_the_scanner_s_own_arp_sweep_proves_its_address() -> None:
    last = _replay(PACKAGE_LOGS / "reach__arp_only_sweep")[-1]
    assert last["t1046"]["counts"]["arp_addresses"] >= 20
    assert "local_link" in last["t1046"]["certainty"]["proven_by"]


def test_a_routed_sweep_is_the_routed_scanner_s_on_zeek_s_word() -> None:
    """The router (10.79.2.1) asked in vain for 37 addresses on the scanner's behalf: the scanner asked nothing by
    ARP and is not on the link, so the sweep counts as its targets, unproven."""
    alerts = _replay(PACKAGE_LOGS / "reach__arp_routed_scan")
    assert "10.79.2.1" not in {a["source"]["ip"] for a in alerts}
    last = alerts[-1]
    assert last["t1046"]["counts"]["arp_addresses"] == 0
    assert last["t1046"]["counts"]["distinct_hosts"] >= 20
    assert "local_link" not in last["t1046"]["certainty"]["proven_by"]
    assert "zeek_report" in last["t1046"]["certainty"]["unproven"]


@pytest.mark.parametrize("flavour", ["zeek", "zeek-json"])
def test_ssh_to_forty_existing_hosts_is_silent_on_plain_zeek_logs_too(flavour: str) -> None:
    assert _replay(REACH / "arp_answered_ssh" / flavour) == []
