"""The README's "try it" lines, as they are written: ``t1046-sensor run`` on its embedded default, then the
README's nmap line, in a network namespace of the test's own (its loopback is the daemon's and nmap's
alone). The first scan the README suggests must be alerted; and ``nmap -sV`` names the emulated services
on the default's high ports as docs/honeyports.md says (redis on 16379 is left out: nmap probes redis on
6379 only, so it tries every probe there for a minute and a half before it says ``unknown``).
"""

from __future__ import annotations

import re
import shlex
import shutil
import sys
from pathlib import Path

import pytest

from tests.netns import Running, netns_lab, run_in, subnet_for
from tests.waiting import wait_for

pytestmark = pytest.mark.netns

README = Path(__file__).resolve().parents[2] / "README.md"
DEFAULT_SERVICES = {2222: "ssh", 2323: "telnet", 8081: "http", 13306: "mysql", 33389: "ms-wbt-server",
                    35900: "vnc"}
"""What nmap 7.93's -sV says on the embedded default's TCP honeyports but 16379 (docs/honeyports.md)."""


def _readme_scan() -> list[str]:
    """The nmap line of the README's "Try it" shell block (the second: the first is the install and test
    commands), without its comment."""
    blocks = [part.split("```", 1)[0] for part in README.read_text().split("```sh\n")[1:]]
    assert not [line for line in blocks[0].splitlines() if line.startswith("nmap ")], "the first block is two commands"
    lines = [line for line in blocks[1].splitlines() if line.startswith("nmap ")]
    assert len(lines) == 1, blocks[1]
    return shlex.split(lines[0].partition("#")[0])


def test_the_readme_scan_is_alerted_by_the_embedded_default(tmp_path: Path) -> None:
    if shutil.which("nmap") is None:
        pytest.skip("needs nmap (Debian package nmap)")
    scan = _readme_scan()
    assert "127.0.0.1" in scan
    with netns_lab(1, subnet_for("tryit"), "tryit") as lab:
        host = lab.hosts[0]
        daemon = Running(host.name, ["env", f"HOME={tmp_path}", sys.executable, "-m", "sensor", "run"])
        try:
            wait_for(lambda: daemon.logged("run: t1046-sensor running") or daemon.process.poll() is not None, 60,
                     "the embedded default running")
            scanned = run_in(host.name, scan, timeout=120)
            assert scanned.returncode == 0, scanned.stderr.decode()
            wait_for(lambda: any(alert["event"]["action"] == "port_scan" for alert in daemon.alerts)
                     or daemon.process.poll() is not None, 60, "the scan's alert")
            versions = run_in(host.name, ["nmap", "-sV", "-Pn", "-n", "-T4", "-p",
                                          ",".join(map(str, DEFAULT_SERVICES)), "127.0.0.1"], timeout=120)
        finally:
            status = daemon.stop()
    assert status == 0, daemon.log
    scans = [alert for alert in daemon.alerts if alert["event"]["action"] == "port_scan"]
    assert scans and {alert["source"]["ip"] for alert in scans} == {"127.0.0.1"}, daemon.alerts
    assert max(alert["t1046"]["counts"]["distinct_ports"] for alert in scans) == len(DEFAULT_SERVICES) + 1
    named = {int(port): service for port, service in re.findall(r"^(\d+)/tcp\s+open\s+(\S+)",
                                                               versions.stdout.decode(), re.MULTILINE)}
    assert named == DEFAULT_SERVICES, versions.stdout.decode()
