"""`t1046-sensor run` with honeyports (Twisted) and the mDNS watcher (asyncio, zeroconf) on one event loop:
a scanner that browses for SSH over mDNS and then touches a honeyport is one incident with both."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.alertcheck import validate_alert
from tests.netns import netns_lab, popen_in, run_in, stop, subnet_for

pytestmark = pytest.mark.netns


def _wait(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_mdns_browse_and_honeyport_touch_meet_in_one_incident(tmp_path: Path) -> None:
    if shutil.which("dig") is None:
        pytest.skip("dig (dnsutils) is not installed")
    with netns_lab(2, subnet_for("oneloop"), tag="loop") as lab:
        sensor, scanner = lab.hosts
        for host in lab.hosts:
            run_in(host.name, ["ip", "route", "add", "224.0.0.0/4", "dev", host.interface], timeout=10, check=True)
        config = tmp_path / "sensor.yaml"
        config.write_text(
            f"sensor: {{name: one-loop, state_dir: {tmp_path / 'state'}}}\n"
            "detection: {local_nets: [10.0.0.0/8, 'fd00::/8']}\n"
            f"honeyports: {{listen: [{sensor.ipv4}], tcp: '2222'}}\n"
            f"mdns: {{interfaces: [{sensor.interface}]}}\n"
            "outputs: [{type: stdout}]\n")
        daemon = popen_in(sensor.name, [sys.executable, "-m", "sensor", "-v", "run", "--config", str(config)])
        log: list[str] = []
        alerts: list[dict[str, Any]] = []

        def read_log() -> None:
            assert daemon.stderr is not None
            log.extend(line.decode(errors="replace").rstrip() for line in daemon.stderr)

        def read_alerts() -> None:
            assert daemon.stdout is not None
            alerts.extend(validate_alert(json.loads(line)) for line in daemon.stdout)

        readers = [threading.Thread(target=read_log, daemon=True), threading.Thread(target=read_alerts, daemon=True)]
        for reader in readers:
            reader.start()
        try:
            _wait(lambda: any("mdns: watching" in line for line in log) or daemon.poll() is not None, 30,
                  "the daemon to watch mDNS")
            assert daemon.poll() is None, "\n".join(log)
            assert any("honeyports: listening on 1 ports" in line for line in log), "\n".join(log)
            run_in(scanner.name, ["dig", "-p", "5353", "@224.0.0.251", "_ssh._tcp.local", "PTR", "+time=1",
                                  "+tries=1"], timeout=20)
            _wait(lambda: any(a["source"]["ip"] == scanner.ipv4 for a in alerts), 20, "the mDNS browse alert")
            touch = run_in(scanner.name, [sys.executable, "-c", "import socket; socket.create_connection("
                                          f"({sensor.ipv4!r}, 2222), timeout=5).close()"], timeout=20)
            assert touch.returncode == 0, touch.stderr
            _wait(lambda: any("honeyport" in a["t1046"]["evidence_sources"] for a in alerts), 20,
                  "the honeyport touch in the incident")
        finally:
            stop(daemon)
            for reader in readers:
                reader.join(10)
        assert daemon.returncode == 0, "\n".join(log)
    mine = [a for a in alerts if a["source"]["ip"] == scanner.ipv4]
    assert {a["source"]["ip"] for a in alerts} == {scanner.ipv4}, "the sensor's own traffic never alerts"
    assert mine[0]["event"]["action"] == "mdns_service_browse"
    assert len({a["t1046"]["incident_id"] for a in mine}) == 1
    last = mine[-1]
    assert set(last["t1046"]["evidence_sources"]) == {"mdns", "honeyport"}
    assert {"T1046-MDNS-SENSITIVE", "T1046-HONEYPORT"} <= set(last["t1046"]["rules"])
    assert last["event"]["severity"] >= 3 and last["t1046"]["confidence"] == "high"
    assert subprocess.run(["ip", "netns", "list"], capture_output=True, check=False).stdout.count(
        lab.hub.encode()) == 0
