"""`t1046-sensor run` with honeyports (Twisted) and the mDNS watcher (asyncio, zeroconf) on one event loop:
a scanner that browses for SSH over mDNS and then touches a honeyport is one incident with both."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.netns import Running, netns_lab, run_in, subnet_for
from tests.waiting import wait_for

pytestmark = pytest.mark.netns


def test_mdns_browse_and_honeyport_touch_meet_in_one_incident(tmp_path: Path) -> None:
    if shutil.which("dig") is None:
        pytest.skip("dig (dnsutils) is not installed")
    with netns_lab(2, subnet_for("oneloop"), tag="loop") as lab:
        sensor, scanner = lab.hosts
        config = tmp_path / "sensor.yaml"
        config.write_text(
            f"sensor: {{name: one-loop, state_dir: {tmp_path / 'state'}}}\n"
            "detection: {local_nets: [10.0.0.0/8, 'fd00::/8']}\n"
            f"honeyports: {{listen: [{sensor.ipv4}], tcp: '2222'}}\n"
            f"mdns: {{interfaces: [{sensor.interface}]}}\n"
            "outputs: [{type: stdout}]\n")
        daemon = Running(sensor.name, [sys.executable, "-m", "sensor", "-v", "run", "--config", str(config)])
        try:
            wait_for(lambda: daemon.logged("mdns: watching") or daemon.process.poll() is not None, 30,
                     "the daemon to watch mDNS")
            assert daemon.process.poll() is None, "\n".join(daemon.log)
            assert daemon.logged("honeyports: listening on 1 port"), "\n".join(daemon.log)
            run_in(scanner.name, ["dig", "-p", "5353", "@224.0.0.251", "_ssh._tcp.local", "PTR", "+time=1",
                                  "+tries=1"], timeout=20)
            wait_for(lambda: any(a["source"]["ip"] == scanner.ipv4 for a in daemon.alerts), 20,
                     "the mDNS browse alert")
            touch = run_in(scanner.name, [sys.executable, "-c", "import socket; socket.create_connection("
                                          f"({sensor.ipv4!r}, 2222), timeout=5).close()"], timeout=20)
            assert touch.returncode == 0, touch.stderr
            wait_for(lambda: any("honeyport" in a["t1046"]["evidence_sources"] for a in daemon.alerts), 20,
                     "the honeyport touch in the incident")
        finally:
            status = daemon.stop()
        assert status == 0, "\n".join(daemon.log)
    alerts = daemon.alerts
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
