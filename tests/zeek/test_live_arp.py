"""A live ARP-only sweep: real Zeek with this package sniffing a lab bridge (as a SPAN port), ``run`` following
its logs, and ``nmap -sT -Pn`` of 41 LAN addresses of which 38 are absent, so that for most of the scan only
the kernel's ARP requests leave the scanner (tests/data/reach/arp_only_sweep is a capture of the same scan).
The scanner is alerted within the live bound, 15 s of the scan's start; nobody else is. Runs as root with
``zeek`` and ``nmap`` on PATH, and skips otherwise."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.netns import Running, netns_lab, popen_in, run_in, stop, subnet_for
from tests.waiting import wait_for

pytestmark = pytest.mark.netns
PACKAGE = Path(__file__).resolve().parents[2] / "zeek_scripts"
LIVE_BOUND = 15.0
"""Seconds from a scan's start within which ``run`` alerts it (issue 22)."""
LISTEN = ("import socket, threading\n"
          "def serve(port):\n"
          "    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
          "    s.bind(('0.0.0.0', port)); s.listen(64)\n"
          "    while True:\n"
          "        c, _ = s.accept(); c.sendall(b'SSH-2.0-OpenSSH_9.2p1\\r\\n'); c.close()\n"
          "for port in (22, 80):\n"
          "    threading.Thread(target=serve, args=(port,), daemon=True).start()\n"
          "threading.Event().wait()\n")


def _needs(*tools: str) -> None:
    for tool in tools:
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not on PATH")


def test_an_arp_only_sweep_is_alerted_within_the_live_bound(tmp_path: Path) -> None:
    _needs("zeek", "nmap")
    logs, state = tmp_path / "zeek", tmp_path / "state"
    logs.mkdir()
    config = tmp_path / "sensor.yaml"
    config.write_text(f"sensor: {{name: live-arp, state_dir: {state}}}\nzeek: {{log_dir: {logs}}}\n"
                      "detection: {local_nets: [10.0.0.0/8]}\nhoneyports: {listen: []}\noutputs: [{type: stdout}]\n")
    with netns_lab(4, subnet_for("livearp"), tag="larp") as lab:
        scanner, *live = lab.hosts
        for host in lab.hosts:
            run_in(host.name, ["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"], timeout=10, check=True)
        prefix = scanner.ipv4.rsplit(".", 1)[0]
        listeners = [popen_in(host.name, [sys.executable, "-c", LISTEN]) for host in live[:2]]
        daemon = Running(lab.hub, [sys.executable, "-m", "sensor", "run", "--config", str(config)])
        zeek = popen_in(lab.hub, ["zeek", "-i", "br0", "-C", "local", "Site::local_nets += {10.0.0.0/8}",
                                  str(PACKAGE)], cwd=str(logs), stdout=subprocess.DEVNULL)
        try:
            wait_for(lambda: daemon.logged("live-arp running"), 30, "the daemon's start")
            assert zeek.stderr is not None
            for line in zeek.stderr:
                if b"listening on br0" in line:
                    break
            else:
                pytest.fail(f"zeek exited ({zeek.wait()}) before listening on br0")
            started = time.time()
            run_in(scanner.name, ["nmap", "-sT", "-Pn", "-n", "-p", "22,80,445,3389", f"{prefix}.2-42"],
                   timeout=120, check=True)
            wait_for(lambda: any(alert["source"]["ip"] == scanner.ipv4 for alert in daemon.alerts),
                     started + LIVE_BOUND + 5 - time.time(), "run's alert about the scanner")
        finally:
            stop(zeek)
            assert daemon.stop() == 0
            for listener in listeners:
                stop(listener)
    first = min(at for at, alert in daemon.timed_alerts if alert["source"]["ip"] == scanner.ipv4)
    print(f"live ARP-only sweep alerted {first - started:.1f} s after the scan started")
    assert first - started <= LIVE_BOUND, f"alerted {first - started:.1f} s after the scan started"
    assert {alert["source"]["ip"] for alert in daemon.alerts} == {scanner.ipv4}
