"""What an attacker wrote is escaped wherever it is shown: alert strings (C0 and C1 controls, bidirectional
overrides), the daemon's own log lines (a receiver's error body), syslog SD-PARAM values, the report's HTML
and its file names."""

from __future__ import annotations

import json
from ipaddress import ip_address
from pathlib import Path

import pytest

from sensor.alerts.render import render_document
from sensor.cli import main
from sensor.config import default_config
from sensor.detect.correlator import Correlator
from sensor.observations import MdnsQuery
from sensor.outputs.spool import SpoolRecord
from sensor.outputs.syslog import rfc5424
from sensor.report.command import write_report
from sensor.text import file_part, sd_param, visible
from tests.outputs.receivers import HttpReceiver, Script

HOSTILE = "_ssh\x1b[2J\x9b31m\u202egpjexe\u2028forged\n\x00._tcp.local"
"""An mDNS name with ESC and CSI sequences, a right-to-left override, a line separator, a newline and NUL."""
RAW = ("\x1b", "\x9b", "\u202e", "\u2028", "\n", "\x00")


def test_visible_escapes_controls_and_bidi_and_keeps_the_rest() -> None:
    assert visible("caf\u00e9 \u2192 ok\\") == "caf\u00e9 \u2192 ok\\"
    assert visible(HOSTILE) == "_ssh\\x1b[2J\\x9b31m\\u202egpjexe\\u2028forged\\x0a\\x00._tcp.local"
    assert visible("\x7f\u061c\u200f\u2066\u2069\u2029") == "\\x7f\\u061c\\u200f\\u2066\\u2069\\u2029"


def _browse_alert_document(name: str) -> dict[str, object]:
    """The first alert of a browse of ``name`` among two other unusual types (one question for one ordinary type
    alone is weak evidence, docs/mdns.md)."""
    correlator = Correlator(default_config().detection)
    alerts = []
    for offset, query in enumerate((name, "_t1046a._tcp.local", "_t1046b._tcp.local")):
        alerts += correlator.observe(MdnsQuery(1000.0 + offset, ip_address("10.66.0.5"), 40000, query, "PTR",
                                               legacy_unicast=True), 1000.0 + offset)
    assert alerts
    found: dict[str, object] = json.loads(render_document(alerts[0], "sensor-test"))
    return found


def test_alert_strings_carry_no_raw_control_or_bidi_character() -> None:
    document = _browse_alert_document(HOSTILE)
    text = json.dumps(document, ensure_ascii=False)
    assert not any(raw in text for raw in RAW[:4])
    names = document["t1046"]["sample"]["mdns_names"]  # type: ignore[index]
    assert names[0] == visible(HOSTILE.lower().rstrip("."))
    assert "\\u202egpjexe" in document["message"]  # type: ignore[operator]


def test_syslog_sd_param_values_are_escaped_per_rfc_5424() -> None:
    assert sd_param('a"b\\c]d') == 'a\\"b\\\\c\\]d'
    message = rfc5424(SpoolRecord(1, 'x"] [forged@1 a="b', 0.0, 2, b"{}"), 16, "host", "app")
    assert b'[t1046@32473 event_id="x\\"\\] [forged@1 a=\\"b"] {}' in message


def test_report_file_names_never_leave_their_directory(tmp_path: Path) -> None:
    assert file_part("/../../escaped-outside") == "_.._.._escaped-outside"
    assert file_part("..") == "_" and file_part("a/b\\c") == "a_b_c"
    document = _browse_alert_document("_ssh._tcp.local")
    document["t1046"]["incident_id"] = "/../../escaped-outside"  # type: ignore[index]
    alerts = tmp_path / "alerts.jsonl"
    alerts.write_text(json.dumps(document) + "\n")
    pictures = tmp_path / "a" / "b" / "pngs"
    pictures.parent.mkdir(parents=True)
    summary = write_report([alerts], default_config(), tmp_path / "report.html", pictures)
    assert summary.incidents == 1 and len(summary.pngs) == 1
    assert summary.pngs[0].parent == pictures, summary.pngs
    assert not any(tmp_path.glob("**/escaped-outside*.png"))
    assert not (tmp_path / "a" / "escaped-outside.png").exists()


def test_report_html_shows_controls_and_overrides_escaped(tmp_path: Path, recwarn: pytest.WarningsRecorder) -> None:
    alerts = tmp_path / "alerts.jsonl"
    document = _browse_alert_document("_ssh._tcp.local")
    document["t1046"]["sample"]["mdns_names"] = [HOSTILE]  # type: ignore[index]
    alerts.write_text(json.dumps(document) + "\n")
    write_report([alerts], default_config(), tmp_path / "report.html")
    assert not [str(warning.message) for warning in recwarn], "the picture drew a control character raw"
    html = (tmp_path / "report.html").read_text()
    assert not any(raw in html for raw in ("\x1b", "\x9b", "\u202e", "\u2028"))
    assert "\\u202egpjexe" in html


@pytest.fixture
def forging_receiver() -> HttpReceiver:
    return HttpReceiver(Script(lambda request: (500, b"\x1b[2J\x1b]0;pwned\x07\nt1046-sensor: ERROR: forged line")))


def test_a_receivers_error_body_cannot_forge_or_colour_the_daemons_log(
        tmp_path: Path, forging_receiver: HttpReceiver, capfd: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "sensor.yaml"
    config.write_text(f"sensor: {{state_dir: {tmp_path / 'state'}}}\noutputs:\n"
                      f"  - {{type: http, url: '{forging_receiver.url}/hook', name: siem}}\n")
    try:
        assert main(["-v", "test-alert", "--config", str(config), "--timeout", "3"]) == 1
    finally:
        forging_receiver.close()
    captured = capfd.readouterr()
    both = captured.err + captured.out
    assert "HTTP 500" in both
    assert "\x1b" not in both and "\x07" not in both
    assert not any(line.startswith("t1046-sensor: ERROR: forged") for line in both.splitlines())
    assert "\\x1b[2J" in both
