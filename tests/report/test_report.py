"""``t1046-sensor report`` on real captures, on the JSONL of replay and of a running daemon's file sink, on hostile
input and on a 10^5-probe scan."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from sensor.cli import main
from sensor.config import default_config
from sensor.report.command import write_report
from tests.conftest import CAPTURES
from tests.fixtures import stop_process
from tests.report.hostile import MDNS_NAME, PAYLOAD, SCANNER, hostile_alerts
from tests.waiting import wait_for

S1 = CAPTURES / "s1_vertical_syn" / "zeek"
S2 = CAPTURES / "s2_horizontal_syn_routed" / "zeek"


def _conn_rows(directory: Path) -> list[dict[str, str]]:
    """conn.log rows read independently of the sensor's reader (TSV by its #fields line)."""
    lines = (directory / "conn.log").read_text().splitlines()
    fields = next(line for line in lines if line.startswith("#fields")).split("\t")[1:]
    return [dict(zip(fields, line.split("\t"), strict=True)) for line in lines if not line.startswith("#")]


def _incident_ids(html: str) -> list[str]:
    return re.findall(r'<section class="incident" id="incident-([0-9a-f]+)"', html)


def test_vertical_scan_report_draws_every_probe_of_the_scanner(tmp_path: Path) -> None:
    rows = [row for row in _conn_rows(S1) if row["id.orig_h"] == "10.200.0.10"]
    out = tmp_path / "report.html"
    summary = write_report([S1], default_config(), out)

    assert summary.incidents == 1
    assert summary.probes == len(rows) == 1000
    html = out.read_text()
    assert "1000 from conn.log" in html
    for rule in ("T1046-VERTICAL", "T1046-HALF-OPEN"):
        assert f"<td>{rule}</td>" in html
    half_open = {row["uid"] for row in rows if "h" in row["history"] and "A" not in row["history"]}
    pivots = set(re.findall(r'<tr><td><code>(C\w+)</code></td><td>[^<]*</td><td>[^<]*</td><td class="n">[^<]*</td>'
                            r"<td>half-open</td>", html))
    assert half_open and half_open <= pivots


def test_run_alerts_jsonl_gives_the_same_incidents_as_the_logs(tmp_path: Path, capsysbinary:
                                                                pytest.CaptureFixture[bytes]) -> None:
    assert main(["replay", str(S1), str(S2)]) == 0
    alerts = tmp_path / "alerts.jsonl"
    alerts.write_bytes(capsysbinary.readouterr().out)
    from_logs, from_alerts, alerts_only = tmp_path / "logs.html", tmp_path / "alerts.html", tmp_path / "only.html"

    logs_summary = write_report([S1, S2], default_config(), from_logs)
    alerts_summary = write_report([alerts, S1, S2], default_config(), from_alerts)
    only_summary = write_report([alerts], default_config(), alerts_only)

    expected = sorted({json.loads(line)["t1046"]["incident_id"] for line in alerts.read_text().splitlines()})
    assert len(expected) == 2
    for page in (from_logs, from_alerts, alerts_only):
        assert sorted(_incident_ids(page.read_text())) == expected
    assert logs_summary.probes == alerts_summary.probes == 1925
    assert only_summary.probes == 0
    assert "the input holds no conn.log records" in alerts_only.read_text()


def test_the_file_sink_of_a_running_daemon_and_its_log_directory_give_replays_incidents(
        tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    assert main(["replay", str(S1)]) == 0
    replayed = {json.loads(line)["t1046"]["incident_id"] for line in capsysbinary.readouterr().out.splitlines()}
    logs, alerts = tmp_path / "zeek", tmp_path / "alerts.jsonl"
    logs.mkdir()
    config = tmp_path / "sensor.yaml"
    config.write_text(f"sensor: {{state_dir: {tmp_path / 'state'}}}\nzeek: {{log_dir: {logs}}}\n"
                      f"honeyports: {{listen: [], tcp: ''}}\noutputs: [{{type: file, path: {alerts}}}]\n")
    stderr = tmp_path / "stderr"
    daemon = subprocess.Popen([sys.executable, "-m", "sensor", "-v", "run", "--config", str(config)],
                              stdout=subprocess.DEVNULL, stderr=stderr.open("wb"))
    try:
        wait_for(lambda: b"running" in stderr.read_bytes() or daemon.poll() is not None, 30, "the daemon to start")
        shutil.copyfile(S1 / "conn.log", logs / "conn.log")
        wait_for(lambda: alerts.exists() and {json.loads(line)["t1046"]["incident_id"]
                                              for line in alerts.read_bytes().splitlines()} == replayed,
                 60, "run's file sink to hold replay's incidents")
    finally:
        assert stop_process(daemon) == 0, stderr.read_text()

    out = tmp_path / "report.html"
    summary = write_report([alerts, logs], default_config(), out)
    assert sorted(_incident_ids(out.read_text())) == sorted(replayed)
    assert summary.probes == write_report([S1], default_config(), tmp_path / "replay.html").probes == 1000


def test_scanner_option_keeps_that_scanners_incidents(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report.html"
    assert main(["report", str(S1), str(S2), "--scanner", "10.201.0.10", "--out", str(out)]) == 0
    html = out.read_text()
    assert len(_incident_ids(html)) == 1
    assert 'data-scanner="10.201.0.10"' in html and 'data-scanner="10.200.0.10"' not in html
    replayed = subprocess.run([sys.executable, "-m", "sensor", "replay", str(S2)], capture_output=True, check=True)
    alerts = sum(json.loads(line)["source"]["ip"] == "10.201.0.10" for line in replayed.stdout.splitlines())
    assert f"report: 1 incident from {alerts} alerts, 925 probes drawn" in capsys.readouterr().err

    assert main(["report", str(S1), "--scanner", "not-an-ip", "--out", str(out)]) == 2
    assert "--scanner: not an IP address" in capsys.readouterr().err


def test_png_option_writes_one_picture_per_incident(tmp_path: Path) -> None:
    pictures = tmp_path / "pngs"
    assert main(["report", str(S1), str(S2), "--out", str(tmp_path / "r.html"), "--png", str(pictures)]) == 0
    files = sorted(pictures.iterdir())
    assert [path.name.split("-")[1] for path in files] == ["10.200.0.10", "10.201.0.10"]
    for path in files:
        with Image.open(path) as image:
            assert image.format == "PNG" and image.size == (1200, 950)


def test_attacker_strings_are_escaped_and_not_read_as_mathtext(tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    summary = write_report([hostile_alerts(tmp_path / "alerts.jsonl")], default_config(), out)

    assert summary.incidents == 1
    html = out.read_text()
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "_&lt;img src=x onerror=alert(2)&gt;$\\bad{._tcp.local" in html
    assert html.count("<script>") == 1
    assert SCANNER in html and PAYLOAD and MDNS_NAME


def test_inputs_that_cannot_be_read_get_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(tmp_path / "missing"), "--out", str(tmp_path / "r.html")]) == 1
    assert "no such file or directory" in capsys.readouterr().err
    ocsf = tmp_path / "ocsf.jsonl"
    ocsf.write_text(json.dumps({"class_uid": 2004, "finding_info": {"uid": "x"}}) + "\n")
    assert main(["report", str(ocsf), "--out", str(tmp_path / "r.html")]) == 1
    assert "OCSF alerts carry too little" in capsys.readouterr().err
    assert not (tmp_path / "r.html").exists()


def test_lines_that_are_not_alerts_are_skipped_and_counted(tmp_path: Path) -> None:
    alerts = hostile_alerts(tmp_path / "alerts.jsonl")
    alerts.write_bytes(alerts.read_bytes() + b'{"event": {}, "t1046": {}}\nnot json\n')
    summary = write_report([alerts], default_config(), tmp_path / "r.html")
    assert summary.skipped == 2 and summary.incidents == 1


def test_report_without_matplotlib_says_how_to_install_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert main(["report", str(S1), "--out", str(tmp_path / "r.html")]) == 2, "an installation without the extra"
    assert "pip install 't1046-sensor[report]'" in capsys.readouterr().err
    assert not (tmp_path / "r.html").exists()


def _large_conn_log(directory: Path, targets: int = 400, ports: int = 250) -> int:
    """A conn.log of one scanner probing ``targets`` x ``ports`` (10^5 probes by default), 1 ms apart:
    mostly unanswered, some refused, a few answered and a honeyport port tagged by the Zeek package."""
    directory.mkdir()
    out = io.StringIO()
    out.write("#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tconn\n"
              "#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tconn_state\thistory"
              "\tresp_pkts\tt1046_tags\n"
              "#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring\tstring\tstring\tcount\tset[string]\n")
    writer = csv.writer(out, delimiter="\t", lineterminator="\n")
    count = 0
    for port_index, port in enumerate([*range(1, 7 * (ports - 1), 7), 2222]):
        for target in range(targets):
            if port == 2222:
                state, history, answered, tags = "S0", "S", 0, "honeyport"
            elif target % 40 == 0 and port_index % 50 == 0:
                state, history, answered, tags = "SF", "ShADadFf", 4, "-"
            elif target % 3 == 0:
                state, history, answered, tags = "REJ", "Sr", 1, "-"
            else:
                state, history, answered, tags = "S0", "S", 0, "-"
            writer.writerow([f"{1800000000 + count / 1000:.6f}", f"C{count:017d}", "10.77.0.1", 40000 + count % 20000,
                             f"10.77.{1 + target // 250}.{target % 250 + 1}", port, "tcp", "-", state, history,
                             answered, tags])
            count += 1
    (directory / "conn.log").write_text(out.getvalue())
    return count


def test_a_scan_of_100000_probes_gives_a_small_file(tmp_path: Path) -> None:
    probes = _large_conn_log(tmp_path / "logs")
    out, pictures = tmp_path / "report.html", tmp_path / "pngs"
    summary = write_report([tmp_path / "logs"], default_config(), out, pictures)

    assert probes == 100_000
    assert summary.incidents == 1
    assert summary.probes == probes
    assert out.stat().st_size < 400_000
    assert [path.stat().st_size < 250_000 for path in summary.pngs] == [True]
    html = out.read_text()
    assert "100000 from conn.log" in html
    assert re.search(r"<td>[0-9:\- ]+UTC</td><td>10\.77\.\d+\.\d+</td><td class=\"n\">2222/tcp</td>"
                     r"<td>honeyport</td>", html)


def test_alerts_emitted_long_after_the_probes_do_not_stretch_the_time_axis(
        tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    """A live sensor may emit an update long after the probes it counts: the axis stays on the probes."""
    from sensor.report.figures import incident_figure
    from sensor.report.incidents import fold, read_alerts
    from sensor.report.probes import collect

    assert main(["replay", str(S2)]) == 0
    late = []
    for line in capsysbinary.readouterr().out.splitlines():
        document = json.loads(line)
        document["@timestamp"] = document["@timestamp"].replace("2026-11-28", "2026-12-01")
        late.append(json.dumps(document))
    alerts = tmp_path / "alerts.jsonl"
    alerts.write_text("\n".join(late) + "\n")
    updates, _skipped = read_alerts(alerts)
    [incident] = fold(updates)
    probes = collect([S2], [incident])[incident.incident_id]

    figure = incident_figure(incident, probes)
    rate = figure.axes[0]
    low, high = rate.get_xlim()
    span = float(probes.ts.max() - probes.ts.min())
    assert high - low < 1.2 * span
    assert "alerted outside this axis: T1046-TRW at 2026-12-01" in rate.get_title(loc="left")
