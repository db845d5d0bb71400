"""kill -9 at several points while Zeek's conn.log grows and rotates: no alert lost, none repeated, and the
daemon ends with the incidents ``replay`` finds in the same logs — read live or days late alike.

Each kill comes at an observable point, not after a sleep: once the daemon's checkpoint holds everything
written so far, the next step of the log is written and the daemon is killed at once, with that step
unread or read but not committed.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from sensor.config import load_config
from sensor.daemon.checkpoint import load_checkpoint
from tests.alertcheck import validate_alert
from tests.waiting import wait_for

from .conftest import conn_log

KEYS = ("distinct_hosts", "distinct_ports", "probes", "failed")


def _start(config: Path, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "sensor", "-v", "run", "--config", str(config)],
                            stdout=subprocess.DEVNULL, stderr=log.open("ab"))


def _delivered(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [validate_alert(json.loads(line)) for line in path.read_text().splitlines()]


def _final(alerts: list[dict[str, Any]]) -> dict[str, tuple[object, ...]]:
    return {a["source"]["ip"]: (a["event"]["action"], tuple(sorted(a["t1046"]["rules"])),
                                tuple(a["t1046"]["counts"][k] for k in KEYS)) for a in alerts}


def _holds(config: Path, live: Path) -> bool:
    """True when the daemon's last checkpoint has read the live conn.log to its end (and so every file
    rotated before it)."""
    checkpoint = load_checkpoint(config.parent / "state" / "checkpoint", load_config(config).detection)
    if checkpoint is None or "conn" not in checkpoint.streams:
        return False
    position = checkpoint.streams["conn"]
    return position.inode == live.stat().st_ino and position.offset == live.stat().st_size


@pytest.mark.parametrize("age", [60.0, 3 * 86400.0], ids=["a minute late", "days late"])
def test_kill_9_and_restart_lose_and_repeat_nothing(tmp_path: Path, age: float) -> None:
    logs = tmp_path / "zeek"
    logs.mkdir()
    config = tmp_path / "sensor.yaml"
    config.write_text(f"sensor: {{name: crash-test, state_dir: {tmp_path / 'state'}}}\n"
                      f"zeek: {{log_dir: {logs}}}\n"
                      "honeyports: {listen: [], tcp: ''}\n"
                      "outputs:\n  - {type: file, path: alerts.jsonl}\n")
    data = conn_log(time.time() - age)
    steps = [data.lines[i:i + 120] for i in range(0, len(data.lines), 120)]
    live = logs / "conn.log"
    live.write_text(data.header_for(1))
    stderr = tmp_path / "daemon.stderr"
    daemon = _start(config, stderr)
    kills = 0
    try:
        for number, step in enumerate(steps, start=1):
            wait_for(lambda: _holds(config, live), 60, f"the checkpoint to hold the log before step {number}")
            with live.open("a") as stream:
                stream.write("".join(step))
            if number % 2 == 0 and kills < 6:
                os.kill(daemon.pid, signal.SIGKILL)
                assert daemon.wait(10) == -signal.SIGKILL
                kills += 1
                daemon = _start(config, stderr)
            if number % 3 == 0:
                rotated = logs / f"conn.2030-01-01-{number:02d}-00-00.log"
                wait_for(lambda: _holds(config, live), 60, f"the checkpoint to hold step {number}")
                with live.open("a") as stream:
                    stream.write("#close\t2030-01-01-00-00-00\n")
                live.rename(rotated)
                live.write_text(data.header_for(number + 1))
                if number % 2 == 0:
                    with rotated.open("rb") as plain, gzip.open(f"{rotated}.gz", "wb") as packed:
                        shutil.copyfileobj(plain, packed)
                    rotated.unlink()
        wait_for(lambda: _holds(config, live), 60, "the checkpoint to hold the whole log")
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(30) == 0
    finally:
        if daemon.poll() is None:
            os.kill(daemon.pid, signal.SIGKILL)
            daemon.wait(10)
    replay = subprocess.run([sys.executable, "-m", "sensor", "replay", "--config", str(config), str(logs)],
                            capture_output=True, timeout=60, check=True)
    expected = [validate_alert(json.loads(line)) for line in replay.stdout.splitlines()]
    delivered = _delivered(tmp_path / "state" / "alerts.jsonl")
    assert kills == min(6, len(steps) // 2) >= 5
    ids = [a["event"]["id"] for a in delivered]
    assert len(ids) == len(set(ids)), "an alert was delivered twice"
    updates: dict[str, list[int]] = {}
    for alert in delivered:
        updates.setdefault(alert["t1046"]["incident_id"], []).append(alert["t1046"]["update"])
    assert all(numbers == list(range(1, len(numbers) + 1)) for numbers in updates.values()), \
        f"an update was lost: {updates}"
    assert set(_final(expected)) == {"10.200.0.10", "10.201.0.10"}, "the scanners of the captures"
    assert _final(delivered) == _final(expected), "the daemon ends with replay's incidents"
