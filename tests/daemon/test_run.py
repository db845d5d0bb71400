"""`t1046-sensor run` end to end: the embedded default on a fresh HOME, SIGHUP, SIGTERM; checkpoints; metrics."""

from __future__ import annotations

import importlib.util
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import urllib.request
from dataclasses import replace
from ipaddress import ip_address
from pathlib import Path

import pytest
import yaml

from sensor.config import DetectionConfig, default_config, default_config_text
from sensor.daemon.checkpoint import Checkpoint, detection_digest, load_checkpoint, save_checkpoint
from sensor.detect.correlator import Correlator
from sensor.metrics import Metrics, MetricsServer
from sensor.observations import ConnAttempt, HoneyportHit, Outcome, Transport
from sensor.zeek.position import StreamPosition
from tests.alertcheck import validate_alert
from tests.fixtures import stop_process
from tests.waiting import reported_port, wait_for

needs_honeyports = pytest.mark.skipif(importlib.util.find_spec("honeyports.service") is None,
                                      reason="honeyports.service is not importable yet")


def _touch(port: int, source: str = "127.0.0.1") -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(source, 0)):
        pass


def _ids(path: Path) -> list[str]:
    if not path.exists():
        return []
    return [validate_alert(json.loads(line))["event"]["id"] for line in path.read_bytes().splitlines()]


def _stop(daemon: subprocess.Popen[bytes]) -> int:
    return stop_process(daemon)


@needs_honeyports
def test_readme_first_command_on_a_fresh_home(tmp_path: Path) -> None:
    env = {**os.environ, "HOME": str(tmp_path)}
    stdout, stderr = tmp_path / "stdout", tmp_path / "stderr"
    ports = [int(p) for p in yaml.safe_load(default_config_text())["honeyports"]["tcp"].split(",")]
    daemon = subprocess.Popen([sys.executable, "-m", "sensor", "-v", "run"], env=env, cwd=tmp_path,
                              stdout=stdout.open("wb"), stderr=stderr.open("wb"))
    try:
        wait_for(lambda: b"running" in stderr.read_bytes() or daemon.poll() is not None, 30, "the daemon to start")
        assert daemon.poll() is None, stderr.read_text()
        state = tmp_path / ".local" / "state" / "t1046-sensor"
        assert (state / "checkpoint").exists(), "a first start is checkpointed before anything is read"
        port = reported_port(stderr, 30)
        assert port in ports, "the default honeyports are the documented ones"
        _touch(port)
        alerts = tmp_path / ".local" / "state" / "t1046-sensor" / "alerts.jsonl"
        wait_for(lambda: bool(_ids(alerts)) and bool(stdout.read_bytes()), 20, "the alert on stdout and in the file")
    finally:
        assert _stop(daemon) == 0
    printed = [validate_alert(json.loads(line)) for line in stdout.read_bytes().splitlines()]
    assert printed[0]["event"]["action"] == "honeyport_probe"
    assert printed[0]["source"]["ip"] == "127.0.0.1"
    assert [doc["event"]["id"] for doc in printed] == _ids(alerts)
    assert (alerts.parent / "checkpoint").exists()
    health = json.loads((alerts.parent / "health.json").read_text())
    assert (health["alerts"], health["open_incidents"]) == (len(printed), 1), "one touch: one incident, still open"
    assert health["suppressed_as_authorized"] == 0 and health["evicted_sources"] == 0


@needs_honeyports
def test_sighup_reopens_the_file_after_logrotate_and_sigterm_keeps_the_rest(tmp_path: Path) -> None:
    state = tmp_path / "state"
    config = tmp_path / "sensor.yaml"
    config.write_text(f"sensor: {{name: hup, state_dir: {state}}}\n"
                      "honeyports: {listen: [127.0.0.1], tcp: '0'}\n"
                      "detection: {local_nets: [127.0.0.0/8]}\n"
                      "outputs:\n  - {type: file, path: alerts.jsonl}\n")
    stderr = tmp_path / "stderr"
    daemon = subprocess.Popen([sys.executable, "-m", "sensor", "-v", "run", "--config", str(config)],
                              stdout=subprocess.DEVNULL, stderr=stderr.open("wb"))
    alerts = state / "alerts.jsonl"
    try:
        port = reported_port(stderr, 30)
        _touch(port)
        wait_for(lambda: len(_ids(alerts)) == 1, 20, "the first alert")
        alerts.rename(state / "alerts.jsonl.1")
        daemon.send_signal(signal.SIGHUP)
        wait_for(lambda: b"file sinks reopened" in stderr.read_bytes(), 20, "the reopen")
        _touch(port, "127.0.0.2")
        wait_for(lambda: len(_ids(alerts)) == 1, 20, "the second alert in the new file")
    finally:
        assert _stop(daemon) == 0
    assert len(_ids(state / "alerts.jsonl.1")) == 1
    assert set(_ids(alerts)).isdisjoint(_ids(state / "alerts.jsonl.1"))


@needs_honeyports
def test_the_daemon_lifts_its_open_file_limit_for_the_honeyports(tmp_path: Path) -> None:
    config = tmp_path / "sensor.yaml"
    config.write_text(f"sensor: {{name: nofile, state_dir: {tmp_path / 'state'}}}\n"
                      "honeyports: {listen: [127.0.0.1], tcp: '0', max_connections: 2000}\n"
                      "outputs:\n  - {type: file, path: alerts.jsonl}\n")
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < 2100 or shutil.which("prlimit") is None:
        pytest.skip(f"needs prlimit and a hard open file limit above what is needed ({hard})")
    stderr = tmp_path / "stderr"
    daemon = subprocess.Popen(["prlimit", f"--nofile=256:{hard}", sys.executable, "-m", "sensor", "-v", "run",
                               "--config", str(config)], stdout=subprocess.DEVNULL, stderr=stderr.open("wb"))
    try:
        wait_for(lambda: b"running" in stderr.read_bytes() or daemon.poll() is not None, 30, "the daemon to start")
        limits = Path(f"/proc/{daemon.pid}/limits").read_text()
    finally:
        assert _stop(daemon) == 0
    soft = next(line.split()[3] for line in limits.splitlines() if line.startswith("Max open files"))
    assert int(soft) == hard
    assert "open file limit" not in stderr.read_text()


def test_a_bad_output_never_starts_a_half_working_daemon(tmp_path: Path) -> None:
    config = tmp_path / "sensor.yaml"
    config.write_text(f"sensor: {{state_dir: {tmp_path / 'state'}}}\nhoneyports: {{listen: []}}\n"
                      "outputs:\n  - {type: http, url: 'http://127.0.0.1:9/', kind: splunk}\n")
    done = subprocess.run([sys.executable, "-m", "sensor", "run", "--config", str(config)], capture_output=True,
                          timeout=60)
    assert done.returncode != 0
    assert b"outputs[0].kind" in done.stderr


def test_checkpoint_round_trip_and_unusable_files(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    detection = default_config().detection
    path = tmp_path / "checkpoint"
    correlator = Correlator(detection)
    for port in range(1, 31):
        correlator.observe(ConnAttempt(ts=1000.0 + port, source=ip_address("10.3.3.3"), source_port=40000,
                                       target=ip_address("10.3.3.4"), target_port=port, transport=Transport.TCP,
                                       outcome=Outcome.REJECTED), 1000.0 + port)
    assert (correlator.open_incidents, correlator.tracked_sources) == (1, 1)
    streams = {"conn": StreamPosition("/logs/conn.log", 42, 4096, "ab" * 32, 512, 1000.0)}
    checkpoint = Checkpoint(seq=7, detection=detection_digest(detection), streams=streams, done=frozenset({"ab"}),
                            correlator=correlator, clock=12.5)
    save_checkpoint(path, checkpoint)
    loaded = load_checkpoint(path, detection)
    assert loaded is not None and (loaded.seq, loaded.done, loaded.clock) == (7, frozenset({"ab"}), 12.5)
    assert loaded.streams == streams
    assert (loaded.correlator.open_incidents, loaded.correlator.tracked_sources) == (1, 1), "state kept"
    changed_settings = replace(detection, port_scan_ports=99)
    with caplog.at_level("WARNING"):
        changed = load_checkpoint(path, changed_settings)
    assert changed is not None and (changed.seq, changed.streams, changed.done) == (7, streams, frozenset({"ab"}))
    assert (changed.correlator.open_incidents, changed.correlator.tracked_sources) == (0, 0), "state dropped"
    assert changed.detection == detection_digest(changed_settings)
    assert "detection settings changed since the last checkpoint" in caplog.text
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF
    path.write_bytes(bytes(data))
    assert load_checkpoint(path, detection) is None
    assert "checksum mismatch" in caplog.text
    assert not path.exists() and (tmp_path / "checkpoint.unusable").exists()
    path.write_bytes(b"something else entirely")
    assert load_checkpoint(path, DetectionConfig()) is None


def test_metrics_endpoint_has_no_address_labels() -> None:
    metrics = Metrics()
    metrics.alerts.labels(action="port_scan").inc()
    metrics.sink_failures.labels(sink="siem").inc()
    server = MetricsServer(metrics, "127.0.0.1", 0)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=10) as response:
            text = response.read().decode()
    finally:
        server.close()
    assert 't1046_alerts_total{action="port_scan"} 1.0' in text
    assert 't1046_sink_failures_total{sink="siem"} 1.0' in text
    labels = {label.split("=")[0] for line in text.splitlines() if "{" in line and not line.startswith("#")
              for label in line[line.index("{") + 1:line.index("}")].split(",")}
    assert labels <= {"action", "sink", "log", "transport", "result"}


def test_an_observation_from_a_skewed_clock_does_not_drag_the_pipeline_clock(caplog: pytest.LogCaptureFixture) -> None:
    from sensor.daemon.pipeline import Pipeline

    wall = [1_800_000_000.0]
    config = default_config()
    pipeline = Pipeline(config, [], clock=lambda: wall[0])
    lateness = config.detection.lateness

    def touch(ts: float, port: int) -> HoneyportHit:
        return HoneyportHit(ts=ts, source=ip_address("10.3.3.3"), source_port=1, target=ip_address("10.3.3.4"),
                            target_port=port, transport=Transport.TCP, profile="ssh")

    (alert,) = pipeline.observe(touch(wall[0] + 60, 2222))
    assert alert.last_seen == wall[0] + 60, "a little ahead: judged at its own time"
    assert alert.created == wall[0], "stamped with the wall time it was emitted"
    assert pipeline.now == wall[0] - lateness, "the clock is the wall clock's watermark, not the touch's time"
    with caplog.at_level("WARNING"):
        pipeline.observe(touch(wall[0] + 86400, 2223))
        pipeline.observe(touch(wall[0] + 86401, 2224))
    assert pipeline.now == wall[0] - lateness
    assert len([r for r in caplog.records if "ahead of this host's clock" in r.getMessage()]) == 1
