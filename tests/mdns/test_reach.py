"""The mDNS lab captures of tests/data/reach: a router's habit stays quiet and a 19-type browse in one packet
alerts, through the watcher's path and through replay of the Zeek package's logs (plain Zeek's dns.log keeps
one question of the browse, so replay of plain logs cannot see it)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from sensor.config import default_config
from sensor.replay import replay
from tests.alertcheck import parse_alerts
from tests.mdns.test_replay_agreement import watcher_alerts

DATA = Path(__file__).resolve().parents[1] / "data"
REACH = DATA / "reach"
PACKAGE_LOGS = DATA / "package-logs"
SCENARIOS = ("mdns_habit", "mdns_many_types")


def truth(name: str) -> dict:
    found: dict = json.loads((REACH / name / "truth.json").read_text())
    return found


def replayed(directory: Path) -> list[dict]:
    out = io.BytesIO()
    summary = replay([directory], default_config(), out)
    assert summary.malformed == 0
    return parse_alerts(out.getvalue())


def copies(name: str) -> list[Path]:
    """The Zeek logs of a capture: plain Zeek's and the package's, TSV and JSON."""
    package = PACKAGE_LOGS / f"reach__{name}"
    return [REACH / name / "zeek", REACH / name / "zeek-json", package, package / "zeek-json"]


@pytest.mark.parametrize("name", SCENARIOS)
def test_the_watcher_alerts_on_the_scanners_of_the_truth_and_no_one_else(name: str) -> None:
    alerts = watcher_alerts(REACH / name / "capture.pcap")
    assert {str(alert.scanner) for alert in alerts} == {s["ip"] for s in truth(name)["scanners"]}
    for scanner in truth(name)["scanners"]:
        mine = [alert for alert in alerts if str(alert.scanner) == scanner["ip"]]
        assert len({alert.incident_id for alert in mine}) == 1 and len(mine) <= 3
        assert mine[-1].action.value == scanner["actions"]
        assert "T1046-MDNS-MANY-TYPES" in mine[-1].rules
        assert len(mine[0].mdns_names) == 6, "the six unusual types that add up to an alert"


@pytest.mark.parametrize("directory", copies("mdns_habit"), ids=lambda path: str(path.relative_to(DATA)))
def test_a_routers_habit_never_alerts(directory: Path) -> None:
    assert replayed(directory) == []


@pytest.mark.parametrize("directory", copies("mdns_many_types")[2:], ids=lambda path: str(path.relative_to(DATA)))
def test_the_packages_logs_give_every_question_of_the_browse(directory: Path) -> None:
    questions = [line for line in (directory / "t1046_mdns.log").read_text().splitlines()
                 if "10.221.0.10" in line and "_octoprint._tcp.local" in line]
    assert len(questions) == 2, "the question is in both of the browser's queries"
    alerts = replayed(directory)
    assert {a["source"]["ip"] for a in alerts} == {"10.221.0.10"}
    assert len({a["t1046"]["incident_id"] for a in alerts}) == 1 and len(alerts) <= 3
    assert alerts[0]["event"]["action"] == "mdns_service_browse"
    assert alerts[0]["rule"]["id"] == "T1046-MDNS-MANY-TYPES"
    # The package's own notice of the browse (it weighs types as the correlator does) can come first, at the
    # same instant: the first update that names types names at least the six unusual ones that add up to it.
    named = next(a["t1046"]["sample"]["mdns_names"] for a in alerts if a["t1046"]["sample"]["mdns_names"])
    assert len(named) >= 6, "the six unusual types that add up to an alert"


@pytest.mark.parametrize("directory", copies("mdns_many_types")[:2], ids=lambda path: str(path.relative_to(DATA)))
def test_plain_zeek_keeps_one_question_of_the_browse_and_nothing_alerts(directory: Path) -> None:
    """Zeek's dns.log holds one row per query with its last question: a documented limit of plain logs."""
    rows = [line for line in (directory / "dns.log").read_text().splitlines() if "10.221.0.10" in line]
    assert len(rows) == 2
    assert replayed(directory) == []
