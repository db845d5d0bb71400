"""Captures made for the slow-scan and outage rules (tests/data/slow, tests/data/outage; real Zeek logs, TSV
and JSON): each slow scanner alerted with its exact action and ``T1046-SLOW``, the outage silent — and
silent only because failures to ports seen serving are counted apart."""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path

import pytest

from sensor.config import DetectionConfig, default_config
from sensor.replay import replay
from tests.alertcheck import parse_alerts

DATA = Path(__file__).resolve().parent / "data"
CAPTURES = sorted(path.parent for path in [*DATA.glob("slow/*/truth.json"), *DATA.glob("outage/*/truth.json")])


def _replay(path: Path, detection: DetectionConfig | None = None) -> list[dict]:
    config = default_config()
    if detection is not None:
        config = dataclasses.replace(config, detection=detection)
    out = io.BytesIO()
    replay([path], config, out)
    return parse_alerts(out.getvalue())


@pytest.mark.parametrize("flavour", ["zeek", "zeek-json"])
@pytest.mark.parametrize("capture", CAPTURES, ids=lambda p: p.name)
def test_capture_matches_its_truth(capture: Path, flavour: str) -> None:
    truth = json.loads((capture / "truth.json").read_text())
    alerts = _replay(capture / flavour)
    assert {a["source"]["ip"] for a in alerts} == {s["ip"] for s in truth["scanners"]}
    for scanner in truth["scanners"]:
        last = [a for a in alerts if a["source"]["ip"] == scanner["ip"]][-1]
        assert last["event"]["action"] == scanner["actions"]
        assert "T1046-SLOW" in last["t1046"]["rules"] and last["rule"]["id"] == "T1046-SLOW"
        assert not {"T1046-VERTICAL", "T1046-HORIZONTAL"} & set(last["t1046"]["rules"]), "nothing fast about it"


def test_the_captures_are_there() -> None:
    assert {p.name for p in CAPTURES} == {"s9_slow_vertical", "s9_slow_horizontal", "b3_server_outage"}


def test_the_outage_is_silent_because_its_ports_were_serving() -> None:
    outage = DATA / "outage" / "b3_server_outage" / "zeek"
    forgetful = dataclasses.replace(DetectionConfig(), served_memory=1e-9)
    alerted = {(a["source"]["ip"], a["event"]["action"]) for a in _replay(outage, forgetful)}
    assert ("10.210.0.40", "port_scan") in alerted, "without the served-ports memory the poller looks like a scan"
    assert _replay(outage) == []
