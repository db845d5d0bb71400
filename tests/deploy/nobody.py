"""Running the sensor as the unprivileged user ``nobody`` (``setpriv``), as a service user would, from a
world-readable copy of the project and every distribution it needs (hard links where the file system
allows): the clone, the virtual environment or the interpreter's own site-packages may lie where ``nobody``
cannot enter (a CI runner's ``/root``, a ``mkdtemp`` directory). The ``report`` extra (matplotlib and what
it needs) is copied into a directory of its own, on ``PYTHONPATH`` only when asked for, so a missing extra is
real too.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.requirements import Requirement

NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
PROJECT = Path(__file__).resolve().parents[2]
SCAN_LOG = PROJECT / "tests" / "data" / "captures" / "s1_vertical_syn" / "zeek" / "conn.log"
"""A vertical scan; its first 10 lines are the header and 2 records."""
EXTRA = "report-extra"
"""The folder of the code copy holding the ``report`` extra's distributions."""
@dataclass(frozen=True)
class World:
    """A directory everyone may enter, and a group ``nobody`` is not in."""

    root: Path
    group: str
    code: Path

    @property
    def env(self) -> dict[str, str]:
        """The environment in which ``nobody`` imports the copy of the project and its dependencies."""
        return {**os.environ, "PYTHONPATH": str(self.code)}

    @property
    def env_with_report(self) -> dict[str, str]:
        """:attr:`env` with the ``report`` extra too."""
        return {**os.environ, "PYTHONPATH": f"{self.code}{os.pathsep}{self.code / EXTRA}"}

    def config(self, name: str, text: str) -> Path:
        path = self.root / name
        path.write_text(text)
        path.chmod(0o644)
        return path

    def state(self, name: str) -> Path:
        state = self.root / name
        state.mkdir()
        shutil.chown(state, "nobody", "nogroup")
        return state

    def logs(self, mode: int, conn_mode: int | None = None, lines: int = 10) -> Path:
        """A Zeek log directory of root and this group, optionally with a conn.log (the scan log's first
        ``lines``)."""
        logs = self.root / "zeek-logs"
        logs.mkdir()
        shutil.chown(logs, "root", self.group)
        logs.chmod(mode)
        if conn_mode is not None:
            conn = logs / "conn.log"
            conn.write_text("".join(SCAN_LOG.read_text().splitlines(keepends=True)[:lines]))
            shutil.chown(conn, "root", self.group)
            conn.chmod(conn_mode)
        return logs


def _distributions(name: str, extra: str = "", without: frozenset[str] = frozenset()) -> list[
        importlib.metadata.Distribution]:
    """The installed distributions ``name`` (with ``extra``) needs at run time, itself and ``without``
    excluded, found through their requirements."""
    seen = {name, *without}
    found: list[importlib.metadata.Distribution] = []
    todo = [name]
    while todo:
        wanted = extra if todo[-1] == name else ""
        for line in importlib.metadata.distribution(todo.pop()).requires or []:
            requirement = Requirement(line)
            key = re.sub(r"[-_.]+", "-", requirement.name).lower()
            if key in seen or (requirement.marker is not None
                               and not requirement.marker.evaluate({"extra": wanted})):
                continue
            seen.add(key)
            found.append(importlib.metadata.distribution(requirement.name))
            todo.append(requirement.name)
    return found


def _readable_copy(source: Path, target: Path) -> None:
    """``source`` at ``target``, readable by everyone: a hard link where the file already is (and the file
    system allows), else a copy made readable."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.stat().st_mode & 0o004:
        with contextlib.suppress(OSError):
            os.link(source, target)
            return
    shutil.copy2(source, target)
    target.chmod(target.stat().st_mode | 0o444)


@pytest.fixture(scope="module")
def code() -> Iterator[Path]:
    """A world-readable directory holding the project's packages, its metadata (``--version``) and the
    files of every distribution it needs, to be put on ``PYTHONPATH``."""
    if os.geteuid() != 0:
        pytest.skip("needs root (to make files nobody cannot read, and to become nobody)")
    missing = [tool for tool in ("setpriv", "groupadd", "groupdel") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (Debian packages util-linux, passwd)")
    code = Path(tempfile.mkdtemp(prefix=f"t1046-{os.getpid()}-code-"))
    try:
        code.chmod(0o755)
        for package in ("sensor", "honeyports"):
            shutil.copytree(PROJECT / package, code / package, ignore=shutil.ignore_patterns("__pycache__"))
        version = importlib.metadata.version("t1046-sensor")
        (code / f"t1046_sensor-{version}.dist-info").mkdir()
        (code / f"t1046_sensor-{version}.dist-info" / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: t1046-sensor\nVersion: {version}\n")
        base = _distributions("t1046-sensor")
        names = frozenset(re.sub(r"[-_.]+", "-", found.metadata["Name"]).lower() for found in base)
        for folder, distributions in ((code, base),
                                      (code / EXTRA, _distributions("t1046-sensor", "report", names))):
            for distribution in distributions:
                site = Path(os.path.normpath(str(distribution.locate_file(""))))
                for file in distribution.files or []:
                    source = Path(os.path.normpath(str(distribution.locate_file(file))))
                    if source.is_file() and source.is_relative_to(site) and "__pycache__" not in source.parts:
                        _readable_copy(source, folder / source.relative_to(site))
        for directory in code.rglob("*"):
            if directory.is_dir():
                directory.chmod(0o755)
        yield code
    finally:
        shutil.rmtree(code, ignore_errors=True)


@pytest.fixture
def world(code: Path) -> Iterator[World]:
    group = f"t1046-{os.getpid()}"
    subprocess.run(["groupadd", "--system", group], check=True, timeout=30)
    root = Path(tempfile.mkdtemp(prefix=f"t1046-{os.getpid()}-"))
    root.chmod(0o755)
    try:
        yield World(root, group, code)
    finally:
        shutil.rmtree(root, ignore_errors=True)
        subprocess.run(["groupdel", group], check=True, timeout=30)


def as_nobody(world: World, *args: str, report: bool = False) -> subprocess.CompletedProcess[str]:
    """``t1046-sensor ARGS`` as nobody in the world's directory (with the report extra when ``report``), with
    nothing on the path but the copy (``-S``: not the interpreter's own site-packages, which may be readable)."""
    return subprocess.run([*NOBODY, sys.executable, "-S", "-m", "sensor", *args], cwd=world.root,
                          env=world.env_with_report if report else world.env, capture_output=True, text=True,
                          timeout=60)
