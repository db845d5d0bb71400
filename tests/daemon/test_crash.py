"""kill -9 at several points while Zeek's conn.log grows and rotates: no alert lost, none repeated."""

from __future__ import annotations

import gzip
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.alertcheck import validate_alert
from tests.waiting import wait_for

from .conftest import conn_log


def _start(config: Path, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "sensor", "-v", "run", "--config", str(config)],
                            stdout=subprocess.DEVNULL, stderr=log.open("ab"))


def _delivered(path: Path) -> list[str]:
    if not path.exists():
        return []
    return [validate_alert(json.loads(line))["event"]["id"] for line in path.read_text().splitlines()]


def test_kill_9_and_restart_lose_and_repeat_nothing(tmp_path: Path) -> None:
    logs = tmp_path / "zeek"
    logs.mkdir()
    state = tmp_path / "state"
    config = tmp_path / "sensor.yaml"
    config.write_text(f"sensor: {{name: crash-test, state_dir: {state}}}\n"
                      f"zeek: {{log_dir: {logs}}}\n"
                      "honeyports: {listen: [], tcp: ''}\n"
                      "outputs:\n  - {type: file, path: alerts.jsonl}\n")
    data = conn_log(time.time() + 86400)
    steps = [data.lines[i:i + 120] for i in range(0, len(data.lines), 120)]
    live = logs / "conn.log"
    live.write_text(data.header_for(1))
    chance = random.Random(1046)
    stderr = tmp_path / "daemon.stderr"
    daemon = _start(config, stderr)
    kills = 0
    try:
        for number, step in enumerate(steps, start=1):
            with live.open("a") as stream:
                stream.write("".join(step))
            if number % 3 == 0:
                rotated = logs / f"conn.2030-01-01-{number:02d}-00-00.log"
                with live.open("a") as stream:
                    stream.write("#close\t2030-01-01-00-00-00\n")
                live.rename(rotated)
                live.write_text(data.header_for(number + 1))
                if number % 2 == 0:
                    with rotated.open("rb") as plain, gzip.open(f"{rotated}.gz", "wb") as packed:
                        shutil.copyfileobj(plain, packed)
                    rotated.unlink()
            time.sleep(chance.uniform(0.05, 0.8))
            if number % 2 == 1 and kills < 6:
                os.kill(daemon.pid, signal.SIGKILL)
                daemon.wait(10)
                kills += 1
                daemon = _start(config, stderr)
        replay = subprocess.run([sys.executable, "-m", "sensor", "replay", "--config", str(config), str(logs)],
                                capture_output=True, timeout=60, check=True)
        expected = [validate_alert(json.loads(line)) for line in replay.stdout.splitlines()]
        wanted = {doc["event"]["id"] for doc in expected if not doc["t1046"]["closed"]}
        alerts = state / "alerts.jsonl"
        wait_for(lambda: wanted <= set(_delivered(alerts)), 60, "the daemon to deliver every replayed alert")
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(30) == 0
    finally:
        if daemon.poll() is None:
            os.kill(daemon.pid, signal.SIGKILL)
            daemon.wait(10)
    delivered = _delivered(alerts)
    assert kills >= 5
    assert len(wanted) >= 8
    assert len(delivered) == len(set(delivered)), "an alert was delivered twice"
    assert set(delivered) == wanted, "closing updates aside, the daemon delivered exactly the replay's alerts"
