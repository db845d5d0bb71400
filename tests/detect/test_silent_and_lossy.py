"""Stealth probes of a target that never answers, and a capture that loses packets (tests/data/reach, issue 22):
replay of plain Zeek's logs and of the package's, TSV and JSON. The NULL, ACK and flag-only probes are a port
scan by their scanner; the web client behind a lossy capture is nobody's scan."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from sensor.config import default_config
from sensor.replay import replay
from tests.alertcheck import parse_alerts

DATA = Path(__file__).resolve().parents[1] / "data"
REACH = DATA / "reach"
SILENT = ("silent_null_scan", "silent_ack_scan", "silent_flag_probes")
LOSSY = "capture_loss_web"
FLAVOURS = {
    "zeek": lambda name: REACH / name / "zeek",
    "zeek-json": lambda name: REACH / name / "zeek-json",
    "package": lambda name: DATA / "package-logs" / f"reach__{name}",
    "package-json": lambda name: DATA / "package-logs" / f"reach__{name}" / "zeek-json",
}
"""Where each flavour of a scenario's logs is: plain Zeek (TSV, JSON) and with the package loaded."""


def _replay(path: Path) -> list[dict]:
    out = io.BytesIO()
    replay([path], default_config(), out)
    return parse_alerts(out.getvalue())


def _conn_lines(path: Path) -> list[dict]:
    """The JSON conn.log of ``path`` (a zeek-json folder)."""
    return [json.loads(line) for line in (path / "conn.log").read_text().splitlines()]


@pytest.mark.parametrize("flavour", sorted(FLAVOURS))
@pytest.mark.parametrize("name", SILENT)
def test_probes_of_a_silent_target_are_a_stealth_port_scan(name: str, flavour: str) -> None:
    truth = json.loads((REACH / name / "truth.json").read_text())
    (scanner,) = truth["scanners"]
    alerts = _replay(FLAVOURS[flavour](name))
    assert alerts and {a["source"]["ip"] for a in alerts} == {scanner["ip"]}
    last = alerts[-1]
    assert last["event"]["action"] == scanner["actions"]
    assert "T1046-STEALTH" in last["t1046"]["rules"]
    assert last["t1046"]["counts"]["services_found"] == 0, "the target answered nothing"
    assert last["t1046"]["certainty"]["source"] == "unproven", "a probe nobody answered proves no source"


def test_zeek_writes_the_silent_probes_without_a_history_letter_or_an_answer() -> None:
    """What the probes look like in conn.log (the verdicts rest on it): NULL, CWR, ECE and flagless probes
    leave an empty history and no reply; ACK probes ``A``."""
    null = [c for c in _conn_lines(REACH / "silent_null_scan" / "zeek-json") if c["proto"] == "tcp"]
    assert len({c["id.resp_p"] for c in null}) == 100
    assert all(c.get("history", "") == "" and c["resp_pkts"] == 0 and c["conn_state"] == "OTH" for c in null)
    flags = [c for c in _conn_lines(REACH / "silent_flag_probes" / "zeek-json") if c["proto"] == "tcp"]
    assert len({c["id.resp_p"] for c in flags}) == 30
    assert all(c.get("history", "") == "" and c["resp_pkts"] == 0 for c in flags)
    ack = [c for c in _conn_lines(REACH / "silent_ack_scan" / "zeek-json") if c["proto"] == "tcp"]
    assert {c["history"] for c in ack} == {"A"} and not any(c["resp_pkts"] for c in ack)


def test_the_package_tags_the_silent_probes_stealth() -> None:
    for name in SILENT:
        lines = [c for c in _conn_lines(DATA / "package-logs" / f"reach__{name}" / "zeek-json") if c["proto"] == "tcp"]
        assert lines and all("stealth" in c["t1046_tags"] for c in lines), name


@pytest.mark.parametrize("flavour", sorted(FLAVOURS))
def test_a_lossy_capture_of_a_web_client_is_no_scan(flavour: str) -> None:
    assert _replay(FLAVOURS[flavour](LOSSY)) == []


def test_the_lossy_capture_shows_what_a_lossy_span_port_shows() -> None:
    """The capture holds what the verdicts are about: SYN-ACKs the client's ACK never followed in the capture
    (``Sh``), servers going on without the client's packets, and connections picked up mid-stream; and the
    package tags none of them half-open."""
    lines = [c for c in _conn_lines(DATA / "package-logs" / f"reach__{LOSSY}" / "zeek-json") if c["proto"] == "tcp"]
    histories = {c.get("history", "") for c in lines}
    assert "Sh" in histories
    assert any("h" in h and "A" not in h and "d" in h for h in histories), histories
    assert any("S" not in h and "D" in h and "d" in h for h in histories), "the long-lived streams, mid-stream"
    assert not any(c.get("t1046_tags") for c in lines)
