"""The outbound lab captures of tests/data/reach/ (issue 22: an internal host scanning the internet, and an
internal client using it), as plain Zeek and Zeek with the package wrote them: each scanner is one
``outbound_scan`` incident of its shape and severity, the client none; with ``outbound_scans: false``,
nothing (see each capture's PROVENANCE.md)."""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path

import pytest

from sensor.config import default_config
from sensor.replay import replay
from tests.alertcheck import parse_alerts

DATA = Path(__file__).resolve().parent / "data"
SHAPES = {"outbound_telnet_sweep": "address_scan", "outbound_vertical": "port_scan", "outbound_benign_clients": None}
"""Each capture's scan shape (None: nobody scanned)."""
LOGS = [(name, DATA / "reach" / name / flavour) for name in sorted(SHAPES) for flavour in ("zeek", "zeek-json")]
LOGS += [(name, DATA / "package-logs" / f"reach__{name}" / flavour) for name in sorted(SHAPES)
         for flavour in ("", "zeek-json")]


def _replay(path: Path, outbound: bool = True) -> list[dict]:
    config = default_config()
    config = dataclasses.replace(config, detection=dataclasses.replace(config.detection, outbound_scans=outbound))
    out = io.BytesIO()
    replay([path], config, out)
    return parse_alerts(out.getvalue())


def _ids(item: tuple[str, Path]) -> str:
    return str(item[1].relative_to(DATA))


@pytest.mark.parametrize("case", LOGS, ids=_ids)
def test_each_outbound_scanner_is_one_outbound_incident_and_the_client_none(case: tuple[str, Path]) -> None:
    name, logs = case
    truth = json.loads((DATA / "reach" / name / "truth.json").read_text())
    alerts = _replay(logs)
    assert {a["source"]["ip"] for a in alerts} == {s["ip"] for s in truth["scanners"]}
    if SHAPES[name] is None:
        return
    assert len({a["t1046"]["incident_id"] for a in alerts}) == 1 and 1 <= len(alerts) <= 3
    assert {a["event"]["action"] for a in alerts} == {"outbound_scan"}
    assert {a["t1046"]["scan_shape"] for a in alerts} == {SHAPES[name]}
    assert {a["event"]["severity"] for a in alerts} == {3}, "detection.outbound_severity: high"
    assert "outside the local networks" in alerts[-1]["message"]
    assert "T1046-TRW" not in alerts[-1]["t1046"]["rules"] and "T1046-SLOW" not in alerts[-1]["t1046"]["rules"]


@pytest.mark.parametrize("case", LOGS, ids=_ids)
def test_outbound_scans_off_alert_on_none_of_them(case: tuple[str, Path]) -> None:
    assert _replay(case[1], outbound=False) == []


def test_the_sweep_and_the_vertical_scan_in_numbers() -> None:
    sweep = _replay(DATA / "reach" / "outbound_telnet_sweep" / "zeek")[-1]
    assert (sweep["t1046"]["counts"]["distinct_hosts"], sweep["t1046"]["counts"]["distinct_ports"]) == (128, 1)
    assert sweep["rule"]["id"] == "T1046-HORIZONTAL" and sweep["t1046"]["counts"]["services_found"] == 2
    vertical = _replay(DATA / "reach" / "outbound_vertical" / "zeek")[-1]
    assert vertical["destination"]["ip"] == "203.0.113.10" and vertical["t1046"]["counts"]["distinct_ports"] == 1000
    assert vertical["rule"]["id"] == "T1046-VERTICAL" and vertical["t1046"]["counts"]["services_found"] == 3
