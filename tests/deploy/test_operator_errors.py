"""Every ordinary operator mistake ends in one clear line naming the path and the likely fix, never a
traceback; each case runs as the unprivileged user ``nobody`` (``setpriv``), as a service user would.

The Zeek log directory belongs to a group the test creates (``t1046-<pid>``, deleted in teardown), so the
hint names a group ``nobody`` is not in, as on a sensor whose ``t1046`` user is not in group ``zeek``.
``nobody`` imports the project from a world-readable copy (:mod:`tests.deploy.nobody`).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tests.deploy.nobody import NOBODY, World, as_nobody
from tests.fixtures import stop_process
from tests.waiting import wait_for

POLLS = 10
FOLLOW = f"""
import logging, sys
from pathlib import Path
from sensor.zeek.follow import LogFollower
from sensor.zeek.malformed import MalformedLog
logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s", stream=sys.stdout)
follower = LogFollower(Path(sys.argv[1]), MalformedLog())
for _ in range({POLLS}):
    assert not follower.poll().records
print("polled", flush=True)
sys.stdin.readline()
print("records:", sum(follower.poll().records.values()), flush=True)
"""
"""The follower as nobody: polled while the log cannot be read, then once more after the fix."""


def _not_in_group(world: World, where: str, mode: str) -> str:
    return (f"({where} is root:{world.group} {mode} and nobody is not in group {world.group}: "
            f"usermod -a -G {world.group} nobody, then restart the service)")


def _zeek_config(world: World, log_dir: Path) -> Path:
    state = world.state("state")
    return world.config("sensor.yaml", f"sensor: {{state_dir: {state}}}\nzeek: {{log_dir: {log_dir}}}\n"
                                       "outputs: [{type: file, path: alerts.jsonl}]\n")


RETRIED = "; run goes on and follows it once it can read it"


def test_check_config_warns_of_an_unreadable_log_directory_and_names_the_group(world: World) -> None:
    logs = world.logs(0o750)
    config = _zeek_config(world, logs)
    checked = as_nobody(world, "check-config", str(config))
    assert (checked.returncode, checked.stdout, checked.stderr) == (
        0, f"{config}: OK\n", f"{config}: warning: zeek.log_dir: {logs}: cannot read: Permission denied "
                              f"{_not_in_group(world, 'it', '750')}{RETRIED}\n"), "run starts and retries: a warning"


def test_check_config_warns_of_an_unreadable_conn_log(world: World) -> None:
    logs = world.logs(0o755, conn_mode=0o640)
    config = _zeek_config(world, logs)
    checked = as_nobody(world, "check-config", str(config))
    assert (checked.returncode, checked.stdout, checked.stderr) == (
        0, f"{config}: OK\n", f"{config}: warning: zeek.log_dir: {logs / 'conn.log'}: cannot read: Permission denied "
                              f"{_not_in_group(world, 'it', '640')}{RETRIED}\n")


def test_check_config_warns_of_a_missing_log_directory(world: World) -> None:
    config = _zeek_config(world, world.root / "no-zeek")
    checked = as_nobody(world, "check-config", str(config))
    assert (checked.returncode, checked.stdout, checked.stderr) == (
        0, f"{config}: OK\n", f"{config}: warning: zeek.log_dir: {world.root / 'no-zeek'}: no such directory; run goes "
                              "on and follows it once it appears (install Zeek, or set zeek.log_dir to where its logs "
                              "are written, or remove zeek.log_dir to run without Zeek)\n")


def test_a_configuration_the_service_user_cannot_read_is_one_line_with_the_fix(world: World) -> None:
    etc = world.root / "etc"
    etc.mkdir(mode=0o750)
    config = etc / "sensor.yaml"
    config.write_text("sensor: {name: s}\n")
    config.chmod(0o640)
    expected = (f"t1046-sensor: invalid configuration: {config}: cannot read: Permission denied ({etc} is "
                f"root:root 750: let group nogroup read it, e.g. chgrp nogroup {etc} && chmod g+rX {etc})\n")
    for command in (["check-config", str(config)], ["run", "--config", str(config)]):
        result = as_nobody(world, *command)
        assert (result.returncode, result.stdout, result.stderr) == (2, "", expected), command
    as_root = subprocess.run([sys.executable, "-m", "sensor", "check-config", str(config), "--user", "nobody"],
                             capture_output=True, text=True, timeout=60)
    assert (as_root.returncode, as_root.stdout, as_root.stderr) == (2, "", expected)


def test_duplicate_keys_are_rejected_with_their_lines(world: World) -> None:
    config = world.config("sensor.yaml", "outputs: [{type: stdout}]\nhoneyports:\n  tcp: '2222'\n  tcp: '2223'\n"
                                         "outputs: [{type: syslog, host: siem.example}]\n")
    checked = as_nobody(world, "check-config", str(config), "--content-only")
    last = "YAML would keep only the last one"
    assert (checked.returncode, checked.stdout, checked.stderr) == (
        2, "", "t1046-sensor: invalid configuration (2 problems):\n"
               f"  {config}: line 4: honeyports.tcp: duplicate key (first at line 3); {last}\n"
               f"  {config}: line 5: outputs: duplicate key (first at line 1); {last}\n")


def test_a_missing_tls_file_is_named(world: World) -> None:
    state = world.state("state")
    config = world.config("sensor.yaml", f"sensor: {{state_dir: {state}}}\noutputs:\n"
                                         "  - {type: syslog, host: siem.example, protocol: tls, "
                                         f"ca_file: {world.root / 'ca.pem'}}}\n")
    problem = f"outputs[0].ca_file: {world.root / 'ca.pem'}: cannot read: No such file or directory"
    checked = as_nobody(world, "check-config", str(config))
    assert (checked.returncode, checked.stdout, checked.stderr) == (2, "", f"{config}: {problem}\n")
    for command in ("run", "honeyports"):
        started = as_nobody(world, command, "--config", str(config))
        assert (started.returncode, started.stdout, started.stderr) == (
            2, "", f"t1046-sensor: invalid configuration: {config}: {problem}\n"), command


class _Daemon:
    """``run`` as nobody, its stderr in a file; stopped with SIGTERM by its PID."""

    def __init__(self, world: World, config: Path) -> None:
        self.stderr = world.root / "run.stderr"
        with self.stderr.open("wb") as stderr:
            self.process = subprocess.Popen([*NOBODY, sys.executable, "-m", "sensor", "run", "--config", str(config)],
                                            cwd=world.root, env=world.env, stdin=subprocess.DEVNULL,
                                            stdout=subprocess.DEVNULL, stderr=stderr)

    def lines(self) -> list[str]:
        return self.stderr.read_text().splitlines()

    def logged(self, text: str) -> bool:
        return any(text in line for line in self.lines()) or self.process.poll() is not None

    def stop(self) -> int:
        return stop_process(self.process, 60)


def _follow_until_readable(world: World, logs: Path, unreadable: Path, fix: Callable[[], object],
                           reason: str) -> None:
    follower = subprocess.Popen([*NOBODY, sys.executable, "-c", FOLLOW, str(logs)], cwd=world.root, env=world.env,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert follower.stdout is not None and follower.stdin is not None
        before = [follower.stdout.readline() for _ in range(2)]
        fix()
        follower.stdin.write("fixed\n")
        follower.stdin.flush()
        after = follower.stdout.read()
    finally:
        if follower.poll() is None:
            follower.kill()
        assert follower.wait(30) == 0
    assert before == [f"WARNING: {unreadable}: cannot read: {reason}; retrying\n", "polled\n"], \
        f"one warning for {POLLS} polls"
    assert after == f"WARNING: {unreadable}: readable now; following it\nrecords: 2\n"


def _readable_by_others(path: Path) -> Callable[[], None]:
    return lambda: path.chmod(path.stat().st_mode | 0o005)


def test_the_follower_says_once_that_the_log_directory_cannot_be_read_and_when_it_can(world: World) -> None:
    logs = world.logs(0o750, conn_mode=0o644)
    _follow_until_readable(world, logs, logs, _readable_by_others(logs),
                           f"Permission denied {_not_in_group(world, 'it', '750')}")


def test_the_follower_says_once_that_conn_log_cannot_be_read_and_when_it_can(world: World) -> None:
    logs = world.logs(0o755, conn_mode=0o640)
    _follow_until_readable(world, logs, logs / "conn.log", _readable_by_others(logs / "conn.log"),
                           f"Permission denied {_not_in_group(world, 'it', '640')}")


def test_the_follower_says_once_that_the_log_directory_is_missing_and_when_it_appears(world: World) -> None:
    logs = world.root / "zeek-logs"
    _follow_until_readable(world, logs, logs, lambda: world.logs(0o755, conn_mode=0o644),
                           "No such file or directory")


def test_run_goes_on_while_the_logs_cannot_be_read_and_follows_them_once_they_can(world: World) -> None:
    logs = world.logs(0o750, conn_mode=0o644, lines=2000)
    daemon = _Daemon(world, _zeek_config(world, logs))
    warning = (f"t1046-sensor: WARNING: {logs}: cannot read: Permission denied "
               f"{_not_in_group(world, 'it', '750')}; retrying")
    try:
        wait_for(lambda: daemon.logged(" running"), 30, "the daemon to start")
        wait_for(lambda: daemon.logged(warning), 30, "the warning")
        logs.chmod(0o755)
        wait_for(lambda: daemon.logged(f"t1046-sensor: WARNING: {logs}: readable now; following it"), 30,
                 "the recovery")
        wait_for(lambda: (world.root / "state" / "alerts.jsonl").exists() or daemon.process.poll() is not None, 30,
                 "the scan's alerts")
    finally:
        status = daemon.stop()
    lines = daemon.lines()
    assert status == 0, lines
    assert [line for line in lines if "cannot read" in line] == [warning]
    assert not [line for line in lines if "Traceback" in line or "daemon failed" in line], lines
