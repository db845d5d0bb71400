"""A honeyport node needs no more than CAP_NET_BIND_SERVICE for low ports (and CAP_NET_RAW for SYN scans).

The node runs in a namespace of its own (its own port space) under ``setpriv`` with a bounding set that
keeps only the capabilities under test, which is what a systemd unit with ``CapabilityBoundingSet=`` and
``AmbientCapabilities=`` gives a non-root service.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.alertcheck import validate_alert
from tests.netns import Host, netns_lab, popen_in, run_in, stop, subnet_for

pytestmark = pytest.mark.netns


@pytest.fixture(scope="module")
def host() -> Iterator[Host]:
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is not installed")
    with netns_lab(1, subnet_for("capabilities"), tag="cap") as made:
        yield made.hosts[0]


def _node(host: Host, tmp_path: Path, bounding: str) -> tuple[subprocess.Popen[bytes], list[str], list[dict]]:
    config = tmp_path / "node.yaml"
    config.write_text(f"sensor: {{name: capnode, state_dir: {tmp_path / 'state'}}}\noutputs: [{{type: stdout}}]\n")
    process = popen_in(host.name, ["setpriv", f"--bounding-set={bounding}", "--", sys.executable, "-m", "sensor",
                                   "-v", "honeyports", "--config", str(config), "--listen", host.ipv4,
                                   "--tcp", "23,2323", "--udp", ""])
    log: list[str] = []
    alerts: list[dict] = []

    def read_log() -> None:
        assert process.stderr is not None
        log.extend(line.decode(errors="replace").rstrip() for line in process.stderr)

    def read_alerts() -> None:
        assert process.stdout is not None
        alerts.extend(validate_alert(json.loads(line)) for line in process.stdout)

    for target in (read_log, read_alerts):
        threading.Thread(target=target, daemon=True).start()
    deadline = time.monotonic() + 20
    while not any("listening on" in line for line in log) and process.poll() is None:
        assert time.monotonic() < deadline, log
        time.sleep(0.05)
    return process, log, alerts


def _touch(host: Host, port: int) -> bool:
    probe = run_in(host.name, [sys.executable, "-c", "import socket, sys; "
                               f"socket.create_connection(({host.ipv4!r}, {port}), timeout=5).close()"], timeout=20)
    return probe.returncode == 0


def test_net_bind_service_alone_opens_low_ports(host: Host, tmp_path: Path) -> None:
    process, log, alerts = _node(host, tmp_path, "-all,+net_bind_service")
    try:
        assert process.poll() is None, log
        assert any("listening on 2 ports" in line for line in log), log
        assert any("CAP_NET_RAW" in line or "half-open" in line for line in log), "the SYN watcher says it is off"
        assert _touch(host, 23)
        deadline = time.monotonic() + 20
        while not alerts:
            assert time.monotonic() < deadline, log
            time.sleep(0.05)
    finally:
        stop(process)
    assert alerts[0]["destination"]["port"] == 23 and alerts[0]["event"]["action"] == "honeyport_probe"


def test_without_it_the_low_port_is_reported_not_fatal(host: Host, tmp_path: Path) -> None:
    process, log, _ = _node(host, tmp_path, "-all")
    try:
        assert process.poll() is None, log
        assert any("23: permission denied" in line for line in log), log
        assert any("listening on 1 ports" in line for line in log), log
        assert _touch(host, 2323)
        assert not _touch(host, 23), "nothing listens on the port it could not bind"
    finally:
        stop(process)
