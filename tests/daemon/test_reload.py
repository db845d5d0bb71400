"""`t1046-sensor run` reloading on SIGHUP, one test per branch of ``sensor.daemon.reload``;
the state-dir lock; a checkpoint that cannot be saved. Each daemon is a real process on loopback; its
honeyports listen on port 0 and the test reads the port the daemon logged."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.alertcheck import validate_alert
from tests.conftest import fill_disk
from tests.fixtures import stop_process
from tests.waiting import reported_port, wait_for


class Daemon:
    """``python -m sensor -v run --config`` with its stderr in a file; stopped by PID."""

    def __init__(self, tmp_path: Path, config_text: str, name: str = "daemon") -> None:
        self.config = tmp_path / f"{name}.yaml"
        self.config.write_text(config_text)
        self.stderr = tmp_path / f"{name}.stderr"
        self.process = subprocess.Popen([sys.executable, "-m", "sensor", "-v", "run", "--config", str(self.config)],
                                        stdout=subprocess.DEVNULL, stderr=self.stderr.open("wb"))
        wait_for(lambda: " running\n" in self.log() or self.process.poll() is not None, 30, "the daemon to start")
        assert self.process.poll() is None, self.log()

    def log(self) -> str:
        return self.stderr.read_text(errors="replace")

    def reload(self, config_text: str, until: str) -> str:
        """Write the new configuration, SIGHUP, wait for ``until`` in the log; return what the reload logged."""
        before = len(self.log())
        self.config.write_text(config_text)
        self.process.send_signal(signal.SIGHUP)
        wait_for(lambda: until in self.log()[before:], 30, f"{until!r} after SIGHUP")
        return self.log()[before:]

    def stop(self) -> int:
        return stop_process(self.process)


def _config(state: Path, honeyports: str = "{listen: [127.0.0.1], tcp: '0'}", outputs: str = "alerts.jsonl",
            name: str = "hup", extra: str = "") -> str:
    return (f"sensor: {{name: {name}, state_dir: {state}}}\n"
            f"honeyports: {honeyports}\n"
            "detection: {local_nets: [127.0.0.0/8]}\n"
            f"{extra}"
            f"outputs:\n  - {{type: file, path: {outputs}}}\n")


def _touch(port: int, source: str) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(source, 0)):
        pass


def _alerts(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [validate_alert(json.loads(line)) for line in path.read_bytes().splitlines()]


def _sources(path: Path) -> list[str]:
    return [alert["source"]["ip"] for alert in _alerts(path)]


def _udp_ports_of(pid: int) -> set[int]:
    """UDP ports bound by sockets the process holds (its fds matched against /proc/net/udp{,6})."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[9] in inodes:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


@pytest.fixture
def running(tmp_path: Path) -> Any:
    started: list[Daemon] = []

    def start(config_text: str, name: str = "daemon") -> Daemon:
        daemon = Daemon(tmp_path, config_text, name)
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        daemon.stop()


def test_broken_yaml_on_sighup_keeps_the_running_configuration(tmp_path: Path, running: Any) -> None:
    state = tmp_path / "state"
    daemon = running(_config(state))
    port = reported_port(daemon.stderr, 30)
    _touch(port, "127.0.0.1")
    wait_for(lambda: _sources(state / "alerts.jsonl") == ["127.0.0.1"], 20, "the first alert")
    logged = daemon.reload(_config(state, outputs="other.jsonl") + "honeyports: [unclosed\n",
                           until="keeping the running configuration")
    assert "SIGHUP: invalid configuration" in logged and f"{daemon.config}: not valid YAML at line" in logged
    assert "reloaded" not in logged
    _touch(port, "127.0.0.2")
    wait_for(lambda: _sources(state / "alerts.jsonl") == ["127.0.0.1", "127.0.0.2"], 20,
             "the second alert through the running honeyport and sink")
    assert daemon.stop() == 0
    assert not (state / "other.jsonl").exists(), "nothing of the broken file was applied"


def test_settings_read_only_at_start_are_reported_and_keep_their_running_values(tmp_path: Path,
                                                                                running: Any) -> None:
    state = tmp_path / "state"
    daemon = running(_config(state))
    port = reported_port(daemon.stderr, 30)
    changed = _config(state, name="renamed").replace("local_nets: [127.0.0.0/8]",
                                                     "local_nets: [127.0.0.0/8, 10.0.0.0/8]")
    logged = daemon.reload(changed, until="reloaded")
    assert "SIGHUP: name changed; that takes effect at the next start" in logged
    assert "SIGHUP: detection changed; that takes effect at the next start" in logged
    assert "outputs" not in logged and "honeyport listening" not in logged, "nothing else was touched"
    _touch(port, "127.0.0.3")
    wait_for(lambda: bool(_alerts(state / "alerts.jsonl")), 20, "an alert after the reload")
    assert {alert["observer"]["name"] for alert in _alerts(state / "alerts.jsonl")} == {"hup"}


def test_a_valid_new_output_replaces_the_running_one(tmp_path: Path, running: Any) -> None:
    state = tmp_path / "state"
    daemon = running(_config(state))
    port = reported_port(daemon.stderr, 30)
    _touch(port, "127.0.0.1")
    wait_for(lambda: _sources(state / "alerts.jsonl") == ["127.0.0.1"], 20, "the first alert")
    daemon.reload(_config(state, outputs="other.jsonl"), until="reloaded")
    _touch(port, "127.0.0.2")
    wait_for(lambda: _sources(state / "other.jsonl") == ["127.0.0.2"], 20, "the second alert in the new output")
    assert daemon.stop() == 0
    assert _sources(state / "alerts.jsonl") == ["127.0.0.1"], "the old output got nothing more"
    sinks = json.loads((state / "health.json").read_text())["sinks"]
    assert [sink["delivered"] for sink in sinks.values()] == [1], "only the new sink runs"


def test_an_invalid_new_output_keeps_the_running_sinks_untouched(tmp_path: Path, running: Any) -> None:
    state = tmp_path / "state"
    daemon = running(_config(state))
    port = reported_port(daemon.stderr, 30)
    _touch(port, "127.0.0.1")
    wait_for(lambda: _sources(state / "alerts.jsonl") == ["127.0.0.1"], 20, "the first alert")
    invalid = _config(state) + "  - {type: http, url: 'https://siem.example/', token_env: T1046_TEST_UNSET}\n"
    logged = daemon.reload(invalid, until="keeping the running outputs")
    assert "T1046_TEST_UNSET is not set" in logged
    _touch(port, "127.0.0.2")
    wait_for(lambda: _sources(state / "alerts.jsonl") == ["127.0.0.1", "127.0.0.2"], 20,
             "an alert through the sink that kept running")
    assert daemon.stop() == 0
    sinks = json.loads((state / "health.json").read_text())["sinks"]
    assert [sink["delivered"] for sink in sinks.values()] == [2], "the same sink delivered both: none was rebuilt"


def test_changed_honeyports_and_mdns_are_restarted(tmp_path: Path, running: Any) -> None:
    state = tmp_path / "state"
    daemon = running(_config(state))
    old_port = reported_port(daemon.stderr, 30)
    assert 5353 not in _udp_ports_of(daemon.process.pid)
    logged = daemon.reload(_config(state, honeyports="{listen: [127.0.0.1], tcp: '0', udp: '0'}",
                                   extra="mdns: {interfaces: [lo]}\n"), until="reloaded")
    assert "mdns: watching lo" in logged
    new_port = reported_port(daemon.stderr, 10, skip=1)
    udp_port = reported_port(daemon.stderr, 10, transport="udp")
    assert {udp_port, 5353} <= _udp_ports_of(daemon.process.pid)
    with pytest.raises(ConnectionRefusedError):
        _touch(old_port, "127.0.0.1")
    _touch(new_port, "127.0.0.2")
    wait_for(lambda: "127.0.0.2" in _sources(state / "alerts.jsonl"), 20, "an alert from the new listener")
    daemon.reload(_config(state), until="reloaded")
    wait_for(lambda: 5353 not in _udp_ports_of(daemon.process.pid), 10, "the mDNS watcher to stop")
    assert udp_port not in _udp_ports_of(daemon.process.pid)
    assert daemon.stop() == 0


def test_a_second_daemon_on_the_same_state_dir_exits_1_and_the_first_runs_on(tmp_path: Path,
                                                                            running: Any) -> None:
    state = tmp_path / "state"
    first = running(_config(state))
    port = reported_port(first.stderr, 30)
    config = tmp_path / "second.yaml"
    config.write_text(_config(state, outputs="second.jsonl"))
    second = subprocess.run([sys.executable, "-m", "sensor", "run", "--config", str(config)], capture_output=True,
                            text=True, timeout=60)
    assert second.returncode == 1
    assert f"another t1046-sensor daemon is using {state}" in second.stderr
    _touch(port, "127.0.0.1")
    wait_for(lambda: _sources(state / "alerts.jsonl") == ["127.0.0.1"], 20, "an alert from the first daemon")
    assert not (state / "second.jsonl").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
def test_a_checkpoint_that_cannot_be_saved_holds_the_alerts_back_until_it_can(tmp_path: Path, disk: Path,
                                                                             running: Any) -> None:
    state = disk / "state"
    alerts = tmp_path / "alerts.jsonl"
    daemon = running(_config(state, outputs=str(alerts)))
    port = reported_port(daemon.stderr, 30)
    filler = fill_disk(disk)
    _touch(port, "127.0.0.1")
    wait_for(lambda: daemon.log().count("1 alerts wait for the next try") >= 2, 20,
             "a failed checkpoint, and its retry still holding the alert")
    (failed,) = {line for line in daemon.log().splitlines() if "cannot save checkpoint" in line}
    assert f"{state / 'checkpoint'}" in failed and "No space left on device" in failed
    assert _alerts(alerts) == [], "an alert leaves only with the checkpoint that commits it"
    filler.unlink()
    wait_for(lambda: _sources(alerts) == ["127.0.0.1"], 20, "the held alert once the checkpoint is saved")
    assert daemon.stop() == 0
    assert _sources(alerts) == ["127.0.0.1"]
