"""The report names who each scanner is at the top of its incident: the identity valid at its evidence's time,
each value with where it was read, and its history; hostile names stay text."""

from __future__ import annotations

import json
import re
from pathlib import Path

from sensor.config import default_config
from sensor.report.command import write_report

DATA = Path(__file__).resolve().parents[1] / "data" / "identity"


def _facts_list(html: str) -> str:
    """The incident's first definition list (the facts at its top), tags stripped."""
    found = re.search(r"<dl>(.*?)</dl>", html, re.S)
    assert found is not None
    return found.group(1)


def test_the_identity_of_the_address_at_the_scans_time_heads_the_incident(tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    write_report([DATA / "reassigned" / "zeek"], default_config(), out)
    facts = _facts_list(out.read_text())
    terms = re.findall(r"<dt>([^<]+)</dt>", facts)
    assert terms[:3] == ["who", "identity", "history"]
    assert "<b>lap-03.corp.test</b> (dhcp, dns_ptr)" in facts and "<b>02:77:00:00:00:18</b>" in facts
    assert "<b>bob@CORP.TEST</b> (kerberos)" in facts
    assert "wks-17" not in facts and "alice" not in facts
    assert "new to the sensor" in facts


def test_a_hostile_host_name_is_escaped(tmp_path: Path) -> None:
    directory = tmp_path / "logs"
    directory.mkdir()
    for name in ("conn.log", "dhcp.log"):
        text = (DATA / "wks_scan" / "zeek-json" / name).read_text()
        if name == "dhcp.log":
            record = json.loads(text.splitlines()[0])
            record["host_name"] = "<script>alert(1)</script>"
            text = json.dumps(record) + "\n"
        (directory / name).write_text(text)
    out = tmp_path / "report.html"
    write_report([directory], default_config(), out)
    facts = _facts_list(out.read_text())
    assert "<script>" not in facts and "&lt;script&gt;alert(1)&lt;/script&gt;" in facts
