"""The packaged service on a booted Debian 12, command for command as docs/deployment.md says.

A Debian 12 root (``debootstrap``) is booted with ``systemd-nspawn --boot``; ``packaging/install.sh`` runs
inside from the checkout (bind-mounted read-only) before Zeek is installed; then Zeek's logs appear in a
directory of group ``zeek`` at a place of the test's choosing, the installer's advice (``usermod``) is followed,
and the service is started with ``systemctl``. A honeyport touched on the
container's loopback and the Zeek log's port scan must both reach the service's file sink; ``systemctl
reload`` and ``stop`` must do what the docs say. Every unit is also checked by ``systemd-analyze verify``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.machine import CHECKOUT, Machine, booted, require_tools, wheelhouse
from tests.waiting import wait_for

pytestmark = pytest.mark.systemd

UNITS = sorted((CHECKOUT / "packaging" / "systemd").glob("*.service"))
CONFIG = "/etc/t1046-sensor/sensor.yaml"
ALERTS = "/var/lib/t1046-sensor/alerts.jsonl"
LOG_DIR = "/srv/zeek/logs/current"
SCAN_LOG = CHECKOUT / "tests" / "data" / "captures" / "s1_vertical_syn" / "zeek" / "conn.log"


def _sensor_yaml(port: int) -> str:
    """What the test's operator writes into sensor.yaml (no single quotes: it goes through printf '%s')."""
    return f"""\
sensor: {{name: nspawn-sensor, state_dir: /var/lib/t1046-sensor}}
zeek: {{log_dir: {LOG_DIR}}}
detection:
  local_nets: [10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, 127.0.0.0/8]
honeyports: {{listen: [127.0.0.1], tcp: "{port}", udp: ""}}
outputs:
  - {{type: file, path: alerts.jsonl}}
"""


@pytest.mark.parametrize("unit", UNITS, ids=[unit.name for unit in UNITS])
def test_systemd_analyze_verifies_the_unit(unit: Path, tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("needs systemd-analyze (Debian package systemd)")
    # verify loads the unit's dependencies and checks that its commands exist: give it a root with the
    # host's units and a stand-in for each command the unit runs (the installed system has them).
    root = tmp_path / "root"
    shutil.copytree("/usr/lib/systemd/system", root / "usr" / "lib" / "systemd" / "system", symlinks=True)
    for line in unit.read_text().splitlines():
        if line.startswith("Exec") and "=/" in line:
            command = root / line.partition("=")[2].split()[0].lstrip("/")
            command.parent.mkdir(parents=True, exist_ok=True)
            command.write_text("#!/bin/sh\n")
            command.chmod(0o755)
    (root / "etc" / "systemd" / "system").mkdir(parents=True)
    shutil.copy(unit, root / "etc" / "systemd" / "system" / unit.name)
    result = subprocess.run(["systemd-analyze", "verify", f"--root={root}", f"/etc/systemd/system/{unit.name}"],
                            capture_output=True, text=True, timeout=120)
    complaints = [line for line in result.stderr.splitlines() if unit.name in line or "t1046" in line]
    assert result.returncode == 0 and not complaints, result.stderr


def _alerts(machine: Machine, path: str = ALERTS) -> list[dict[str, object]]:
    found = machine.run(["cat", path], check=False)
    return [json.loads(line) for line in found.stdout.splitlines() if line.strip()]


def _touch(machine: Machine, port: int, source: str) -> None:
    """A TCP connection from ``source`` to the container's 127.0.0.1:``port``, made in its namespace."""
    script = ("import socket,sys; s=socket.socket(); s.bind((sys.argv[1], 0)); "
              "s.connect(('127.0.0.1', int(sys.argv[2]))); s.sendall(b'hello\\n'); s.close()")
    result = machine.in_network([sys.executable, "-c", script, source, str(port)])
    assert result.returncode == 0, result.stderr


def _refused(machine: Machine, port: int) -> bool:
    script = ("import socket,sys\ntry: socket.create_connection(('127.0.0.1', int(sys.argv[1])), 5)\n"
              "except ConnectionRefusedError: sys.exit(0)\nsys.exit(1)")
    return machine.in_network([sys.executable, "-c", script, str(port)]).returncode == 0


def _from(alerts: list[dict[str, object]], source: str, action: str) -> list[dict[str, object]]:
    return [alert for alert in alerts if isinstance(alert["source"], dict) and alert["source"]["ip"] == source
            and isinstance(alert["event"], dict) and alert["event"]["action"] == action]


def _wait_journal(machine: Machine, text: str, what: str) -> None:
    """Wait for ``text`` in the service's journal; fail with the journal's end."""
    try:
        wait_for(lambda: text in machine.journal("t1046-sensor"), 60, what, interval=0.5)
    except pytest.fail.Exception:
        pytest.fail(f"no {text!r} in the journal:\n{machine.journal('t1046-sensor')[-4000:]}")


def test_install_start_alert_reload_and_stop_in_a_booted_debian(tmp_path: Path) -> None:
    require_tools()
    wheels = wheelhouse()
    with booted(tmp_path, {CHECKOUT: "/src", wheels: "/wheels", SCAN_LOG.parent: "/scan"}) as machine:
        # Installed before Zeek: there is no group zeek yet, and the installer says what to do once there is.
        installed = machine.run(["sh", "/src/packaging/install.sh"], timeout=900,
                                env={"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": "/wheels"})
        assert "no group zeek: if Zeek is installed later, run: usermod -a -G zeek t1046" in installed.stdout
        assert machine.run(["stat", "-c", "%U:%G %a", "/etc/t1046-sensor", CONFIG]).stdout.split("\n")[:2] == [
            "root:t1046 750", "root:t1046 640"]
        assert machine.run(["readlink", "/usr/local/bin/t1046-sensor"]).stdout.strip() == \
            "/opt/t1046-sensor/bin/t1046-sensor"
        assert machine.run(["test", "-f", "/usr/share/doc/t1046-sensor/deployment.md"], check=False).returncode == 0
        assert machine.run(["sh", "-c", "test -e /bin/kill || test -e /usr/bin/kill"], check=False).returncode == 1, \
            "a minimal root: no kill but the shell's (no procps), as on a minbase Debian"

        # As installed, before any edit, the service runs (there is no Zeek at /opt/zeek/logs/current).
        machine.run(["systemctl", "start", "t1046-sensor"])
        _wait_journal(machine, "run: sensor-1 running", "the installed configuration running")
        assert machine.run(["systemctl", "is-active", "t1046-sensor"]).stdout.strip() == "active"
        assert ("/opt/zeek/logs/current: cannot read: No such file or directory; retrying"
                in machine.journal("t1046-sensor"))
        machine.run(["systemctl", "stop", "t1046-sensor"], timeout=120)

        # Zeek installed: its logs where zeek.log_dir says, readable by the group zeek only; the installer's
        # advice followed.
        machine.sh(f"groupadd --system zeek && install -d -m 0750 -g zeek /srv/zeek /srv/zeek/logs {LOG_DIR} "
                   f"&& install -m 0640 -g zeek /scan/conn.log {LOG_DIR}/conn.log && usermod -a -G zeek t1046")

        # sudoedit /etc/t1046-sensor/sensor.yaml; then check it as the service will see it.
        machine.sh(f"printf '%s' '{_sensor_yaml(2222)}' > {CONFIG}")
        checked = machine.run(["t1046-sensor", "check-config", CONFIG, "--env-file", "/etc/t1046-sensor/secrets.env",
                               "--user", "t1046"], check=False)
        assert (checked.returncode, checked.stdout.strip()) == (0, f"{CONFIG}: OK"), checked.stderr

        machine.run(["systemctl", "enable", "--now", "t1046-sensor"])
        wait_for(lambda: _from(_alerts(machine), "10.200.0.10", "port_scan"), 120,
                 "the Zeek log's scan in the service's file sink", interval=0.5)
        journal = machine.journal("t1046-sensor")
        assert f"zeek: following {LOG_DIR}: conn.log" in journal, journal
        assert "honeyport listening on 127.0.0.1:2222/tcp" in journal, journal
        assert f"alerts to file {ALERTS} (ecs)" in journal, journal
        assert journal.count("cannot read") == 1, "only the installed configuration's missing Zeek"

        _touch(machine, 2222, "127.0.0.1")
        wait_for(lambda: _from(_alerts(machine), "127.0.0.1", "honeyport_probe"), 120,
                 "the honeyport alert in the service's file sink", interval=0.5)

        # systemctl reload: the file sink reopened (logrotate renamed it), honeyports changed live.
        machine.sh(f"mv {ALERTS} {ALERTS}.1")
        machine.sh(f"printf '%s' '{_sensor_yaml(2223)}' > {CONFIG}")
        machine.run(["systemctl", "reload", "t1046-sensor"])
        _wait_journal(machine, f"SIGHUP: configuration {CONFIG} reloaded", "the reload in the journal")
        wait_for(lambda: _refused(machine, 2222), 60, "port 2222 closed by the reload", interval=0.5)
        _touch(machine, 2223, "127.0.0.2")
        wait_for(lambda: _from(_alerts(machine), "127.0.0.2", "honeyport_probe"), 120,
                 "the new port's alert in the reopened file sink", interval=0.5)

        # systemctl stop: a clean exit, a last checkpoint, the listeners closed.
        machine.run(["systemctl", "stop", "t1046-sensor"], timeout=120)
        shown = machine.run(["systemctl", "show", "t1046-sensor", "-p", "ActiveState", "-p", "Result",
                             "-p", "ExecMainStatus"]).stdout.split()
        assert sorted(shown) == ["ActiveState=inactive", "ExecMainStatus=0", "Result=success"]
        journal = machine.journal("t1046-sensor")
        assert "stopping: closing sources, saving a last checkpoint, draining sinks" in journal
        assert "Traceback" not in journal
        assert _refused(machine, 2223)
        assert machine.run(["test", "-s", "/var/lib/t1046-sensor/checkpoint"], check=False).returncode == 0

        # install.sh again (an upgrade): the operator's configuration is kept, a broken mode repaired.
        machine.run(["chmod", "0700", "/etc/t1046-sensor"])
        upgraded = machine.run(["sh", "/src/packaging/install.sh"], timeout=900,
                               env={"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": "/wheels"})
        assert "t1046 is in group zeek (to read Zeek's logs)" in upgraded.stdout
        assert machine.run(["cat", CONFIG]).stdout == _sensor_yaml(2223)
        assert machine.run(["stat", "-c", "%U:%G %a", "/etc/t1046-sensor"]).stdout.strip() == "root:t1046 750"
