"""A honeyport node needs no more than CAP_NET_BIND_SERVICE for low ports (and CAP_NET_RAW for SYN scans).

The node runs in a namespace of its own (its own port space) under ``setpriv`` with a bounding set that
keeps only the capabilities under test, which is what a systemd unit with ``CapabilityBoundingSet=`` and
``AmbientCapabilities=`` gives a non-root service.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.netns import Host, Running, netns_lab, run_in, subnet_for
from tests.waiting import wait_for

pytestmark = pytest.mark.netns


@pytest.fixture(scope="module")
def host() -> Iterator[Host]:
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is not installed")
    with netns_lab(1, subnet_for("capabilities"), tag="cap") as made:
        yield made.hosts[0]


def _node(host: Host, tmp_path: Path, bounding: str) -> Running:
    config = tmp_path / "node.yaml"
    config.write_text(f"sensor: {{name: capnode, state_dir: {tmp_path / 'state'}}}\noutputs: [{{type: stdout}}]\n")
    node = Running(host.name, ["setpriv", f"--bounding-set={bounding}", "--", sys.executable, "-m", "sensor",
                               "-v", "honeyports", "--config", str(config), "--listen", host.ipv4,
                               "--tcp", "23,2323", "--udp", ""])
    wait_for(lambda: node.logged("honeyports: capnode listening on") or node.process.poll() is not None, 20,
             "the node to listen")
    return node


def _touch(host: Host, port: int) -> bool:
    probe = run_in(host.name, [sys.executable, "-c", "import socket, sys; "
                               f"socket.create_connection(({host.ipv4!r}, {port}), timeout=5).close()"], timeout=20)
    return probe.returncode == 0


def test_net_bind_service_alone_opens_low_ports(host: Host, tmp_path: Path) -> None:
    node = _node(host, tmp_path, "-all,+net_bind_service")
    try:
        assert node.process.poll() is None, node.log
        assert node.logged("listening on 2 ports"), node.log
        assert node.logged("CAP_NET_RAW") or node.logged("half-open"), "the SYN watcher says it is off"
        assert _touch(host, 23)
        wait_for(lambda: node.alerts, 20, "the alert")
    finally:
        node.stop()
    assert node.alerts[0]["destination"]["port"] == 23 and node.alerts[0]["event"]["action"] == "honeyport_probe"


def test_without_it_the_low_port_is_reported_not_fatal(host: Host, tmp_path: Path) -> None:
    node = _node(host, tmp_path, "-all")
    try:
        assert node.process.poll() is None, node.log
        assert node.logged("23: permission denied"), node.log
        assert node.logged("listening on 1 port"), node.log
        assert _touch(host, 2323)
        assert not _touch(host, 23), "nothing listens on the port it could not bind"
    finally:
        node.stop()
