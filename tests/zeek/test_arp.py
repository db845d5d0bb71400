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
