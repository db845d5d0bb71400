"""A booted Debian 12 machine for deployment tests: ``debootstrap`` root, ``systemd-nspawn --boot``.

The root (``debootstrap --variant=minbase`` plus :data:`PACKAGES`, from the Debian mirror this host's own
apt sources name) is built once and cached as a tarball under :data:`CACHE`, keyed by the suite and the
package list; a root that cannot be built (no mirror in the sources, no network) skips the test with the
reason. The Python dependencies of this checkout
are cached beside it as a wheelhouse built by the root's own Python (nspawn, not booted, with the host's
network), keyed by the root and ``pyproject.toml``'s requirements.
Each test gets a fresh copy of the root, boots it with a private network (only its own loopback, so a
honeyport touched there is the container's) and the checkout and wheelhouse bind-mounted read-only, and
reaches it with ``nsenter -t LEADER``. The machine is named ``t1046-<pid>-<n>`` and always terminated in
teardown (SIGTERM to ``systemd-nspawn``, which halts the container; SIGKILL when it does not stop).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import itertools
import os
import re
import shutil
import signal
import ssl
import subprocess
import tomllib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

CHECKOUT = Path(__file__).resolve().parents[2]
CACHE = Path("/var/cache/t1046-sensor-tests")
SUITE = "bookworm"
PACKAGES = ("systemd", "systemd-sysv", "dbus", "python3", "python3-venv")
"""What a minimal Debian 12 host has (systemd; no procps, so no ``/bin/kill``) plus what the installer needs
(python3 -m venv)."""
APT_SOURCES = Path("/etc/apt")
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_names = itertools.count()


def require_tools() -> None:
    """Skip, with the reason, where a booted machine cannot be made."""
    if os.geteuid() != 0:
        pytest.skip("needs root (debootstrap, systemd-nspawn)")
    missing = [tool for tool in ("debootstrap", "systemd-nspawn", "nsenter", "tar") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (Debian packages debootstrap, systemd-container, util-linux)")


@contextlib.contextmanager
def _locked(name: str) -> Iterator[None]:
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _deb_entries(apt: Path) -> Iterator[tuple[list[str], list[str], list[str]]]:
    """(URIs, suites, components) of each ``deb`` entry in ``apt``'s sources: ``sources.list`` and
    ``sources.list.d/*.list`` (one-line format), ``sources.list.d/*.sources`` (deb822)."""
    for path in [apt / "sources.list", *sorted((apt / "sources.list.d").glob("*.list"))]:
        with contextlib.suppress(OSError):
            for line in path.read_text().splitlines():
                words = re.sub(r"\[[^]]*\]", " ", line.partition("#")[0]).split()
                if len(words) >= 3 and words[0] == "deb":
                    yield [words[1]], [words[2]], words[3:]
    for path in sorted((apt / "sources.list.d").glob("*.sources")):
        with contextlib.suppress(OSError):
            for stanza in re.split(r"\n\s*\n", path.read_text()):
                fields: dict[str, list[str]] = {}
                for line in stanza.splitlines():
                    name, colon, value = line.partition(":")
                    if colon and not line.startswith(("#", " ", "\t")):
                        fields[name.strip().lower()] = value.split()
                if "deb" in fields.get("types", []) and fields.get("enabled", ["yes"]) != ["no"]:
                    yield fields.get("uris", []), fields.get("suites", []), fields.get("components", [])


def debian_mirror(apt: Path = APT_SOURCES, suite: str = SUITE) -> str | None:
    """The first mirror ``apt``'s sources take ``suite``'s main component from (http, https or file), or
    None when they name none."""
    for uris, suites, components in _deb_entries(apt):
        if suite in suites and "main" in components:
            for uri in uris:
                if uri.split(":", 1)[0] in ("http", "https", "file"):
                    return uri
    return None


def root_tarball() -> Path:
    """The cached root, built with debootstrap from the host's own Debian mirror when it is not there yet;
    skips, with the reason, when it cannot be built."""
    key = hashlib.sha256(f"{SUITE} minbase {','.join(PACKAGES)}".encode()).hexdigest()[:16]
    tarball = CACHE / f"debian-{SUITE}-{key}.tar"
    with _locked("root"):
        if not tarball.exists():
            mirror = debian_mirror()
            if mirror is None:
                pytest.skip(f"cannot build the Debian root: no {SUITE} main mirror in {APT_SOURCES}/sources.list*")
            building = CACHE / f"building-{os.getpid()}"
            shutil.rmtree(building, ignore_errors=True)
            try:
                _build(["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE,
                        str(building), mirror], "the Debian root")
                _run(["tar", "-C", str(building), "--numeric-owner", "-cf", f"{tarball}.part", "."], timeout=600)
                Path(f"{tarball}.part").rename(tarball)
            finally:
                shutil.rmtree(building, ignore_errors=True)
    return tarball


def wheelhouse() -> Path:
    """Wheels of this checkout's runtime and build requirements for the root's own Python, for an offline
    ``pip install`` inside the booted machine (which has no network but its loopback). They are built in
    the root, not booted, with the host's network: pip there reaches PyPI."""
    project = tomllib.loads((CHECKOUT / "pyproject.toml").read_text())
    requirements = sorted([*project["project"]["dependencies"], *project["build-system"]["requires"], "wheel"])
    tarball = root_tarball()
    key = hashlib.sha256(f"{tarball.name} {requirements}".encode()).hexdigest()[:16]
    wheels = CACHE / f"wheels-{key}"
    with _locked("wheels"):
        if not wheels.exists():
            part = CACHE / f"wheels-part-{os.getpid()}"
            root = CACHE / f"wheels-root-{os.getpid()}"
            for scratch in (part, root):
                shutil.rmtree(scratch, ignore_errors=True)
                scratch.mkdir()
            try:
                _run(["tar", "-C", str(root), "--numeric-owner", "-xf", str(tarball)], timeout=600)
                pip = "python3 -m venv /tmp/venv && /tmp/venv/bin/pip wheel --quiet --wheel-dir /wheels \"$@\""
                _build([*_nspawn(root, f"t1046-{os.getpid()}-wheels"), f"--bind={part}:/wheels", *_host_trust(),
                        "sh", "-c", pip, "pip", *requirements], "the wheelhouse")
                part.rename(wheels)
            finally:
                shutil.rmtree(root, ignore_errors=True)
                shutil.rmtree(part, ignore_errors=True)
    return wheels


def _host_trust() -> list[str]:
    """nspawn options giving pip in the root the host's CA bundle and proxy settings: the host's network
    may only reach PyPI through them."""
    bundle = Path(os.environ.get("PIP_CERT") or ssl.get_default_verify_paths().cafile
                  or "/etc/ssl/certs/ca-certificates.crt")
    options = [f"--bind-ro={bundle}:/run/host-ca.pem", "--setenv=PIP_CERT=/run/host-ca.pem"] if bundle.is_file() else []
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy"):
        if os.environ.get(name):
            options.append(f"--setenv={name}={os.environ[name]}")
    return options


def _nspawn(root: Path, name: str) -> list[str]:
    command = ["systemd-nspawn", "--quiet", "--directory", str(root), "--machine", name]
    if not Path("/run/systemd/system").is_dir():  # no systemd on the host: no machined, no scope to ask for
        command += ["--register=no", "--keep-unit"]
    return command


def _build(command: Sequence[str], what: str) -> None:
    """Run a step that fetches from the network; skip, with its last words, when it fails (no network, a
    mirror that does not answer): the machine cannot be made here, which is not the product's failure."""
    result = subprocess.run(command, capture_output=True, text=True, timeout=1800)
    if result.returncode != 0:
        said = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
        pytest.skip(f"cannot build {what}: {command[0]} exited {result.returncode}: "
                    f"{' / '.join(said[-3:]) or 'no output'}")


def _run(command: Sequence[str], timeout: float) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        pytest.fail(f"{' '.join(command)} exited {result.returncode}:\n{result.stdout[-3000:]}\n"
                    f"{result.stderr[-3000:]}")
    return result


@dataclass
class Machine:
    """A booted container: run commands in it as root, in all of its namespaces."""

    name: str
    leader: int
    console: Path

    def run(self, command: Sequence[str], timeout: float = 120, check: bool = True,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """``command`` inside the machine, with a clean environment (plus ``env``)."""
        variables = [f"{name}={value}" for name, value in {"PATH": PATH, "LANG": "C.UTF-8", **(env or {})}.items()]
        full = ["nsenter", "-t", str(self.leader), "-a", "env", "-i", *variables, *command]
        result = subprocess.run(full, capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            pytest.fail(f"in {self.name}: {' '.join(command)} exited {result.returncode}:\n"
                        f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
        return result

    def sh(self, script: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run(["sh", "-c", script], timeout=timeout, check=check)

    def in_network(self, command: Sequence[str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
        """``command`` from the host's file system, in the machine's network namespace only."""
        return subprocess.run(["nsenter", "-t", str(self.leader), "-n", *command], capture_output=True, text=True,
                              timeout=timeout)

    def journal(self, unit: str) -> str:
        return self.run(["journalctl", "--no-pager", "-o", "cat", "-u", unit]).stdout


def _leader(nspawn: subprocess.Popen[bytes]) -> int | None:
    """The container's PID 1 (a child of systemd-nspawn) once it runs systemd."""
    try:
        children = Path(f"/proc/{nspawn.pid}/task/{nspawn.pid}/children").read_text().split()
    except OSError:
        return None
    for child in children:
        with contextlib.suppress(OSError):
            if Path(f"/proc/{child}/comm").read_text().strip() == "systemd":
                return int(child)
    return None


@contextlib.contextmanager
def booted(work: Path, binds: dict[Path, str]) -> Iterator[Machine]:
    """A fresh copy of the cached root under ``work``, booted; ``binds`` maps host paths to read-only
    mount points inside."""
    root = work / "root"
    root.mkdir()
    _run(["tar", "-C", str(root), "--numeric-owner", "-xf", str(root_tarball())], timeout=600)
    name = f"t1046-{os.getpid()}-{next(_names)}"
    console = work / "console.log"
    command = [*_nspawn(root, name), "--boot", "--private-network",
               *(f"--bind-ro={host}:{inside}" for host, inside in binds.items())]
    with console.open("wb") as output:
        nspawn = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT)
    try:
        leader = None
        for _ in range(600):
            leader = _leader(nspawn)
            if leader is not None or nspawn.poll() is not None:
                break
            with contextlib.suppress(subprocess.TimeoutExpired):
                nspawn.wait(0.1)
        if leader is None:
            pytest.fail(f"systemd-nspawn did not boot {name}:\n{console.read_text(errors='replace')[-3000:]}")
        machine = Machine(name, leader, console)
        state = ""
        for _ in range(300):  # "offline" or nothing until PID 1 listens on its private socket
            state = machine.run(["systemctl", "is-system-running", "--wait"], timeout=180, check=False).stdout.strip()
            if state not in ("", "offline", "unknown") or nspawn.poll() is not None:
                break
            with contextlib.suppress(subprocess.TimeoutExpired):
                nspawn.wait(0.2)
        if state not in ("running", "degraded"):
            pytest.fail(f"{name} booted into state {state!r}:\n{console.read_text(errors='replace')[-3000:]}")
        yield machine
    finally:
        nspawn.send_signal(signal.SIGTERM)
        try:
            nspawn.wait(60)
        except subprocess.TimeoutExpired:
            nspawn.kill()
            nspawn.wait(30)
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(Path("/run/systemd/nspawn/propagate") / name, ignore_errors=True)
