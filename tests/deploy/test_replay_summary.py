"""What ``replay`` tells on stderr: the logs it ignored by type named, scanners and incidents counted, and
each input read once however it was named."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

S1 = Path(__file__).resolve().parents[1] / "data" / "captures" / "s1_vertical_syn" / "zeek"
S2 = Path(__file__).resolve().parents[1] / "data" / "captures" / "s2_horizontal_syn_routed" / "zeek"
HTTP = "#separator \\x09\n#path\thttp\n#fields\tts\tuid\n#types\ttime\tstring\n1795898115.0\tCx\n"


def _replay(*paths: Path) -> tuple[str, str]:
    result = subprocess.run([sys.executable, "-m", "sensor", "replay", *map(str, paths)], capture_output=True,
                            text=True, timeout=120, check=True)
    return result.stdout, re.sub(r" in \d+\.\ds", " in Xs", result.stderr.strip().splitlines()[-1])


def test_the_summary_names_ignored_logs_and_counts_scanners_and_incidents(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    shutil.copytree(S1, logs)  # conn, notice, and Zeek's known_hosts and reporter logs
    (logs / "http.log").write_text(HTTP)
    (logs / "http.2026-11-28-20-00-00.log").write_text(HTTP)
    alone, _ = _replay(S1 / "conn.log", S1 / "notice.log")
    alerts, summary = _replay(logs, logs / "conn.log")
    assert alerts == alone, "conn.log named twice is read once"
    updates = [json.loads(line) for line in alerts.splitlines()]
    assert {alert["t1046"]["incident_id"] for alert in updates} == {updates[0]["t1046"]["incident_id"]}
    assert summary == (f"replay: 1001 records from 2 files, 0 malformed, 1000 observations, {len(updates)} alerts "
                       "about 1 scanner in 1 incident (0 suppressed as authorized) in Xs; ignored by type: "
                       "http.log (2 files), known_hosts.log, reporter.log")


def test_a_log_of_another_type_named_on_the_command_line_is_named_too(tmp_path: Path) -> None:
    http = tmp_path / "http.log"
    http.write_text(HTTP)
    alerts, summary = _replay(http, S2)
    assert summary.endswith("; ignored by type: known_hosts.log, http.log"), summary
    assert re.search(r" alerts about 1 scanner in 1 incident ", summary), summary
    assert alerts.count("\n") >= 1


def test_a_file_that_is_no_zeek_log_is_told_once(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    shutil.copy(S1 / "conn.log", logs / "conn.log")
    (logs / "dns.log").write_text("garbage, not a log\n")
    (logs / "notice.log").write_text("")
    alone, _ = _replay(S1 / "conn.log")
    result = subprocess.run([sys.executable, "-m", "sensor", "replay", str(logs)], capture_output=True, text=True,
                            timeout=120)
    assert (result.returncode, result.stdout) == (0, alone), "the good log is read in full"
    summary = re.sub(r" in \d+\.\ds", " in Xs", result.stderr)
    assert summary.startswith("replay: 1000 records from 1 file, 0 malformed, "), summary
    assert summary.endswith(f"; skipped: {logs / 'dns.log'} (not a Zeek log), {logs / 'notice.log'} (empty)\n"), \
        summary
    named = subprocess.run([sys.executable, "-m", "sensor", "replay", str(logs / "dns.log")], capture_output=True,
                           text=True, timeout=120)
    assert (named.returncode, named.stdout, named.stderr) == (
        1, "", f"t1046-sensor: error: {logs / 'dns.log'}: neither a Zeek log (no #fields header and no JSON records) "
               "nor a flow log (firewall, AWS, Google Cloud, Azure)\n")
