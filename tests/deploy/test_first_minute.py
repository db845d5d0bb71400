"""The first minute of ``run`` and ``honeyports``: at INFO without ``-v``, what they watch (bound
``address:port/proto``, the Zeek log directory and its logs) and where alerts go (each sink's destination,
no secret), the state directory; a warning when nothing is watched; ``-v``/``-q`` after the command too."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from sensor.config import parse_config
from sensor.daemon.startup import output_lines
from tests.netns import Running, netns_lab, subnet_for
from tests.waiting import wait_for

SCAN_LOG = Path(__file__).resolve().parents[1] / "data" / "captures" / "s1_vertical_syn" / "zeek" / "conn.log"


def _free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _start(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[bytes], Path]:
    stderr = tmp_path / "stderr"
    with stderr.open("wb") as output:
        process = subprocess.Popen([sys.executable, "-m", "sensor", *args], cwd=tmp_path, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=output, env={**os.environ, **(env or {})})
    return process, stderr


def _until_running(process: subprocess.Popen[bytes], stderr: Path) -> list[str]:
    """The lines logged up to ``… running``; then the process is stopped (SIGTERM) and must exit 0."""
    try:
        wait_for(lambda: " running" in stderr.read_text() or process.poll() is not None, 30, "the start")
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        status = process.wait(60)
    lines = stderr.read_text().splitlines()
    assert status == 0, "\n".join(lines)
    return lines[:next(index for index, line in enumerate(lines) if line.endswith(" running")) + 1]


def test_run_says_what_it_watches_and_where_alerts_go(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "conn.log").write_text(SCAN_LOG.read_text())
    tcp, udp, hec = _free_port(socket.SOCK_STREAM), _free_port(socket.SOCK_DGRAM), _free_port(socket.SOCK_STREAM)
    config = tmp_path / "sensor.yaml"
    config.write_text(f"""
sensor: {{name: first-minute, state_dir: {tmp_path / 'state'}}}
zeek: {{log_dir: {logs}}}
honeyports: {{listen: [127.0.0.1], tcp: "{tcp}", udp: "{udp}"}}
outputs:
  - {{type: file, path: alerts.jsonl}}
  - {{type: http, kind: hec, url: "https://127.0.0.1:{hec}/?secret=hunter2",
     token_env: T1046_TEST_HEC}}
""")
    process, stderr = _start(tmp_path, "run", "--config", str(config), env={"T1046_TEST_HEC": "token-not-shown"})
    lines = _until_running(process, stderr)
    assert lines == [
        f"t1046-sensor: INFO: honeyport listening on 127.0.0.1:{tcp}/tcp",
        f"t1046-sensor: INFO: honeyport listening on 127.0.0.1:{udp}/udp",
        "t1046-sensor: INFO: honeyports: listening on 2 ports",
        f"t1046-sensor: INFO: zeek: following {logs}: conn.log (and notice.log, dns.log, t1046.log, t1046_mdns.log, "
        "dhcp.log, ntlm.log, kerberos.log, software.log when they appear)",
        f"t1046-sensor: INFO: alerts to file {tmp_path / 'state' / 'alerts.jsonl'} (ecs)",
        f"t1046-sensor: INFO: alerts to http hec https://127.0.0.1:{hec}/?…, token_env T1046_TEST_HEC (ecs)",
        f"t1046-sensor: INFO: state: {tmp_path / 'state'} (checkpoint, spools)",
        "t1046-sensor: INFO: run: first-minute running",
    ]
    assert "token-not-shown" not in stderr.read_text()


def test_run_warns_when_it_watches_nothing_and_q_after_the_command_keeps_only_that(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        config = tmp_path / "sensor.yaml"
        config.write_text(f"sensor: {{state_dir: {tmp_path / 'state'}}}\n"
                          f"honeyports: {{listen: [127.0.0.1], tcp: '{port}'}}\noutputs: [{{type: stdout}}]\n")
        process, stderr = _start(tmp_path, "run", "--config", str(config))
        lines = _until_running(process, stderr)
        quiet, quiet_err = _start(tmp_path, "run", "-q", "--config", str(config))
        wait_for(lambda: "watching nothing" in quiet_err.read_text() or quiet.poll() is not None, 30, "the warning")
        quiet.send_signal(signal.SIGTERM)
        assert quiet.wait(60) == 0
    warning = ("t1046-sensor: WARNING: watching nothing: no honeyport is listening, no zeek.log_dir is set, no mDNS "
               "interface is watched and no honeyport node can connect; no alert can come")
    assert warning in lines
    assert any(f"127.0.0.1:{port}" in line and "WARNING: honeyports:" in line for line in lines), lines
    assert [line for line in quiet_err.read_text().splitlines() if "INFO" in line] == []
    assert warning in quiet_err.read_text().splitlines()


def test_honeyports_says_what_it_listens_on(tmp_path: Path) -> None:
    tcp = _free_port(socket.SOCK_STREAM)
    process, stderr = _start(tmp_path, "honeyports", "-v", "--listen", "127.0.0.1", "--tcp", str(tcp), "--udp", "",
                             env={"HOME": str(tmp_path)})  # the embedded default's state directory is under ~
    lines = [line for line in _until_running(process, stderr) if "DEBUG" not in line]
    state = tmp_path / ".local" / "state" / "t1046-sensor"
    assert lines == [
        f"t1046-sensor: INFO: honeyport listening on 127.0.0.1:{tcp}/tcp",
        "t1046-sensor: INFO: honeyports: t1046-sensor listening on 1 port",
        "t1046-sensor: INFO: alerts to stdout (ecs)",
        "t1046-sensor: INFO: alerts to file " + str(state / "alerts.jsonl") + " (ecs)",
        f"t1046-sensor: INFO: state: {state} (checkpoint, spools)",
        "t1046-sensor: INFO: honeyports: t1046-sensor running",
    ]


def test_version() -> None:
    result = subprocess.run([sys.executable, "-m", "sensor", "--version"], capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stdout) == (0, f"t1046-sensor {metadata.version('t1046-sensor')}\n")


def test_each_sink_is_described_without_secrets(tmp_path: Path) -> None:
    config = parse_config({
        "sensor": {"state_dir": str(tmp_path)},
        "outputs": [
            {"type": "syslog", "host": "collector.invalid", "protocol": "udp", "format": "ocsf"},
            {"type": "syslog", "host": "fd00::5", "protocol": "tls", "port": 6515},
            {"type": "http", "kind": "bulk", "url": "https://elastic:hunter2@[fd00::9]:9200/logs",
             "password_file": "/etc/t1046-sensor/es-password"},
            {"type": "file", "path": "/var/log/t1046/alerts.jsonl"},
        ]})
    assert output_lines(config) == [
        "alerts to syslog udp://collector.invalid:514 (ocsf)",
        "alerts to syslog tls://[fd00::5]:6515 (ecs)",
        "alerts to http bulk https://[fd00::9]:9200/logs, password_file /etc/t1046-sensor/es-password (ecs)",
        "alerts to file /var/log/t1046/alerts.jsonl (ecs)",
    ]


@pytest.mark.netns
def test_mdns_says_what_it_watches_and_advertises(tmp_path: Path) -> None:
    config = tmp_path / "sensor.yaml"
    config.write_text(f"sensor: {{name: first-minute, state_dir: {tmp_path / 'state'}}}\n"
                      "mdns: {decoys: [{instance: backup-nas, type: _smb._tcp, port: 4445}]}\n"
                      "outputs: [{type: stdout}]\n")
    with netns_lab(1, subnet_for("first-minute"), tag="fmin") as lab:
        watcher = Running(lab.hosts[0].name, [sys.executable, "-m", "sensor", "mdns", "--interface", "eth0",
                                              "--config", str(config)])
        try:
            wait_for(lambda: watcher.logged(" running") or watcher.process.poll() is not None, 30, "the start")
        finally:
            status = watcher.stop()
    assert status == 0, watcher.log
    started = watcher.log[:next(index for index, line in enumerate(watcher.log) if line.endswith(" running")) + 1]
    assert started[-5:] == [
        "t1046-sensor: INFO: mdns: watching eth0",
        "t1046-sensor: INFO: mdns: decoy backup-nas._smb._tcp.local. advertised on port 4445",
        "t1046-sensor: INFO: alerts to stdout (ecs)",
        f"t1046-sensor: INFO: state: {tmp_path / 'state'} (checkpoint, spools)",
        "t1046-sensor: INFO: mdns: first-minute running",
    ], watcher.log
