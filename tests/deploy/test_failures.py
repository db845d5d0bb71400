"""Every command against every failure it can meet: one line on stderr and the exit status the README's
table gives (0 done, 1 an input unreadable or an output unwritable, 2 a bad configuration, usage or
installation, 130 interrupted), never a traceback.

Each case runs as ``nobody`` (:mod:`tests.deploy.nobody`), with ``-q``: what is left on stderr is the
failure's line alone. An interrupt comes while the command waits to read its input from a FIFO: the test
opens the FIFO's other end (which waits until the command has opened it), sends SIGINT, then closes it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.deploy.nobody import NOBODY, SCAN_LOG, World, as_nobody

COMMANDS = ("replay", "report", "run", "honeyports", "mdns", "check-config", "test-alert")
READERS = ("replay", "report")
"""The commands whose inputs are logs (the others read a configuration)."""
Case = Callable[[World, str], tuple[list[str], str, int]]
"""(arguments, the line expected on stderr, exit status) of a command against one failure."""


def _config_args(command: str, config: Path) -> list[str]:
    return ["check-config", str(config)] if command == "check-config" else [command, "--config", str(config)]


def _reader_args(command: str, world: World, *paths: Path) -> list[str]:
    out = ["--out", str(world.state("out") / "report.html")] if command == "report" else []
    return [command, *map(str, paths), *out]


def _state(world: World, name: str = "state") -> Path:
    return world.state(name)


def _config(world: World, text: str = "") -> Path:
    """A configuration whose state directory nobody may use (and an mDNS interface for ``mdns``)."""
    return world.config("sensor.yaml", f"sensor: {{state_dir: {_state(world)}}}\nmdns: {{interfaces: [lo]}}\n"
                                       f"outputs: [{{type: stdout}}]\n{text}")


def missing_path(world: World, command: str) -> tuple[list[str], str, int]:
    missing = world.root / "missing"
    if command in READERS:
        return _reader_args(command, world, missing), f"t1046-sensor: error: {missing}: no such file or directory", 1
    return (_config_args(command, missing),
            f"t1046-sensor: invalid configuration: {missing}: cannot read: No such file or directory", 2)


def unreadable_path(world: World, command: str) -> tuple[list[str], str, int]:
    if command in READERS:
        logs = world.root / "logs"
        logs.mkdir(mode=0o700)
        shutil.copy(SCAN_LOG, logs / "conn.log")
        return (_reader_args(command, world, logs), f"t1046-sensor: error: {logs}: cannot read: Permission denied "
                f"(it is root:root 700: let group nogroup read it, e.g. chgrp nogroup {logs} && chmod g+rX {logs})", 1)
    config = _config(world)
    config.chmod(0o600)
    return (_config_args(command, config), f"t1046-sensor: invalid configuration: {config}: cannot read: Permission "
            f"denied (it is root:root 600: let group nogroup read it, e.g. chgrp nogroup {config} && chmod g+rX "
            f"{config})", 2)


def bad_data(world: World, command: str) -> tuple[list[str], str, int]:
    if command in READERS:
        header = "".join(SCAN_LOG.read_text().splitlines(keepends=True)[:8])
        log = world.config("conn.log", header + "x\ty\n" * 1000)
        return (_reader_args(command, world, log),
                f"t1046-sensor: error: {log}: no usable record: 1000 malformed lines (line 9: 2 columns where the "
                "header has 21)", 1)
    config = world.config("sensor.yaml", "honeyports: [\n")
    return (_config_args(command, config), f"t1046-sensor: invalid configuration: {config}: not valid YAML at line 2,"
            " column 1: expected the node content, but found '<stream end>'", 2)


def unusable_directory(world: World, command: str) -> tuple[list[str], str, int]:
    """A state directory nobody cannot write (for ``report``: ``--out`` into a missing directory); the
    commands that keep no state go on (``test-alert`` spools in a directory of its own)."""
    if command == "report":
        out = world.root / "missing" / "r.html"
        return ([command, str(SCAN_LOG), "--out", str(out)],
                f"t1046-sensor: error: cannot write the report: --out {out}: {out.parent}: no such directory", 1)
    config = world.config("sensor.yaml", f"sensor: {{state_dir: {world.root / 'root-only' / 'state'}}}\n"
                                         "mdns: {interfaces: [lo]}\noutputs: [{type: stdout}]\n")
    (world.root / "root-only").mkdir(mode=0o755)
    if command in ("replay", "test-alert"):
        return [command, "--config", str(config), *([str(SCAN_LOG)] if command == "replay" else [])], "", 0
    problem = f"sensor.state_dir: {world.root / 'root-only'} is not writable by this user"
    if command == "check-config":
        return _config_args(command, config), f"{config}: {problem}", 2
    return _config_args(command, config), f"t1046-sensor: invalid configuration: {config}: {problem}", 2


FAILURES: dict[str, Case] = {
    "missing path": missing_path,
    "unreadable path": unreadable_path,
    "bad data": bad_data,
    "unusable directory": unusable_directory,
}


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("failure", FAILURES)
def test_each_command_says_each_failure_in_one_line_with_its_exit_status(world: World, failure: str,
                                                                         command: str) -> None:
    args, line, status = FAILURES[failure](world, command)
    result = as_nobody(world, "-q", *args, report=True)
    stderr = result.stderr.splitlines()
    if command == "test-alert" and status == 0:
        assert result.stdout.splitlines()[-1].startswith("stdout-"), result.stdout
    assert (result.returncode, stderr) == (status, [line] if line else []), result.stderr


def test_report_without_its_extra_says_how_to_install_it_and_the_others_need_none(world: World) -> None:
    result = as_nobody(world, "-q", "report", str(SCAN_LOG), "--out", str(world.state("out") / "r.html"))
    assert (result.returncode, result.stderr) == (
        2, "t1046-sensor: error: the report command needs matplotlib, which is not installed: "
           "pip install 't1046-sensor[report]'\n")
    assert not (world.root / "out" / "r.html").exists()
    replayed = as_nobody(world, "-q", "replay", str(SCAN_LOG))
    assert (replayed.returncode, replayed.stderr) == (0, "") and replayed.stdout.count("\n") >= 1


def test_an_s3_source_without_its_extra_says_how_to_install_it(world: World) -> None:
    config = world.config("s3.yaml", f"sensor: {{state_dir: {world.state('state')}}}\n"
                                     "flows: [{format: aws, path: 's3://flow-logs/AWSLogs/'}]\n")
    line = "flows[0].path: s3://flow-logs/AWSLogs/ needs boto3, which is not installed: pip install 't1046-sensor[s3]'"
    checked = as_nobody(world, "-q", "check-config", str(config))
    assert (checked.returncode, checked.stderr) == (2, f"{config}: {line}\n")
    ran = as_nobody(world, "-q", "run", "--config", str(config))
    assert (ran.returncode, ran.stderr) == (2, f"t1046-sensor: invalid configuration: {config}: {line}\n")


def _reading_a_fifo(world: World, command: str) -> tuple[list[str], Path]:
    fifo = world.root / "input"
    os.mkfifo(fifo)
    fifo.chmod(0o644)
    if command in READERS:
        return _reader_args(command, world, fifo), fifo
    return _config_args(command, fifo), fifo


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_interrupted_while_it_reads_says_so_in_one_line(world: World, command: str) -> None:
    args, fifo = _reading_a_fifo(world, command)
    process = subprocess.Popen([*NOBODY, sys.executable, "-S", "-m", "sensor", "-q", *args], cwd=world.root,
                               env=world.env_with_report, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    writer: list[int] = []
    opening = threading.Thread(target=lambda: writer.append(os.open(fifo, os.O_WRONLY)), daemon=True)
    opening.start()
    try:
        opening.join(60)  # returns once the command has opened the FIFO to read it
        assert writer, "the command opened its input"
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)
        for descriptor in writer:
            os.close(descriptor)
    assert (process.returncode, stderr.splitlines()) == (130, [f"t1046-sensor: {command}: interrupted"]), stderr
    assert "Traceback" not in stdout + stderr
