"""Network namespaces for end-to-end tests: made by the test, always removed, traffic kept inside.

``netns_lab(n, subnet)`` creates ``n`` namespaces named ``t1046-<pid>-<i>-<tag>``, each with loopback up
and a veth pair whose outer end is enslaved to a bridge living in a hub namespace of its own; so nothing
touches the host's interfaces or routing. Host ``i`` gets ``<subnet>.<i+1>/24`` (IPv4),
``fd46:<pid>::<i+1>/64`` (IPv6, DAD off) and a route for multicast on eth0. Everything is torn down in
``finally`` — on failure too — and the helpers skip the test cleanly when not root or when ``ip`` is
missing::

    @pytest.mark.netns
    def test_something():
        with netns_lab(2, subnet_for("mine")) as lab:
            server, scanner = lab.hosts
            proc = popen_in(server.name, [sys.executable, "-m", "sensor", "honeyports", ...])
            run_in(scanner.name, ["nmap", "-sS", "-p", "22", server.ipv4], timeout=30)
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import threading
import time
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.alertcheck import validate_alert


@dataclass(frozen=True)
class Host:
    """One namespace of a lab and its addresses on the lab's bridge."""

    name: str
    interface: str
    ipv4: str
    ipv6: str
    mac: str


@dataclass
class Lab:
    """The namespaces of one test, joined by a bridge in a hub namespace."""

    tag: str
    hub: str
    hosts: list[Host] = field(default_factory=list)


def skip_unless_possible() -> None:
    """Skip the calling test unless it runs as root with iproute2."""
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    if shutil.which("ip") is None:
        pytest.skip("network namespaces need iproute2 (`ip`)")


def subnet_for(tag: str) -> str:
    """A private /24 prefix (``10.99.X`` or ``10.98.X``) derived from the process id and a test tag, so
    concurrent test runs on one machine do not collide."""
    digest = zlib.crc32(f"{os.getpid()}-{tag}".encode())
    return f"10.{98 + (digest >> 8) % 2}.{digest % 250 + 1}"


def _ip(*argv: str, namespace: str | None = None) -> None:
    prefix = ["ip", "netns", "exec", namespace] if namespace else []
    subprocess.run([*prefix, "ip", *argv], check=True, capture_output=True, timeout=20)


def run_in(namespace: str, argv: Sequence[str], timeout: float, check: bool = False,
           input_bytes: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run ``argv`` inside ``namespace`` and wait at most ``timeout`` seconds for it."""
    return subprocess.run(["ip", "netns", "exec", namespace, *argv], capture_output=True, timeout=timeout,
                          check=check, input=input_bytes)


def popen_in(namespace: str, argv: Sequence[str], **kwargs: object) -> subprocess.Popen[bytes]:
    """Start ``argv`` inside ``namespace`` (stdout and stderr piped unless given)."""
    options: dict[str, object] = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, **kwargs}
    return subprocess.Popen(["ip", "netns", "exec", namespace, *argv], **options)  # type: ignore[call-overload]


class Running:
    """A sensor command running in a namespace: its stderr lines and its stdout alerts (validated against
    the alert schema, with their arrival times) are collected by two threads."""

    def __init__(self, namespace: str, argv: Sequence[str]) -> None:
        self.process = popen_in(namespace, argv)
        self.log: list[str] = []
        self.timed_alerts: list[tuple[float, dict[str, Any]]] = []
        self._readers = [threading.Thread(target=self._read_log, daemon=True),
                         threading.Thread(target=self._read_alerts, daemon=True)]
        for reader in self._readers:
            reader.start()

    @property
    def alerts(self) -> list[dict[str, Any]]:
        """The alerts printed so far."""
        return [alert for _, alert in self.timed_alerts]

    def logged(self, text: str) -> bool:
        """True once a stderr line contains ``text``."""
        return any(text in line for line in self.log)

    def _read_log(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.log.append(line.decode(errors="replace").rstrip())

    def _read_alerts(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.timed_alerts.append((time.time(), validate_alert(json.loads(line))))

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM (SIGKILL after ``timeout``), read what is left; the exit status."""
        stop(self.process, timeout)
        for reader in self._readers:
            reader.join(10)
        return self.process.returncode


def stop(process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """Terminate a process started by :func:`popen_in` (SIGTERM, then SIGKILL)."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)


def make_hub(hub: str) -> None:
    """A namespace ``hub`` holding the bridge ``br0`` (no multicast snooping: mDNS reaches every port)."""
    _ip("netns", "add", hub)
    _ip("link", "add", "br0", "type", "bridge", "mcast_snooping", "0", namespace=hub)
    _ip("link", "set", "br0", "up", namespace=hub)


def plug_host(hub: str, name: str, port: str, ipv4: str, ipv6: str | None = None) -> str:
    """A namespace ``name`` with loopback up and ``eth0`` (a veth whose other end, ``port``, is on the hub's
    bridge) at ``ipv4``/24 (and ``ipv6``/64, DAD off), with a multicast route; return eth0's MAC."""
    _ip("netns", "add", name)
    _ip("link", "set", "lo", "up", namespace=name)
    _ip("link", "add", "eth0", "netns", name, "type", "veth", "peer", "name", port, "netns", hub)
    _ip("link", "set", port, "master", "br0", namespace=hub)
    _ip("link", "set", port, "up", namespace=hub)
    _ip("addr", "add", f"{ipv4}/24", "dev", "eth0", namespace=name)
    if ipv6 is not None:
        subprocess.run(["ip", "netns", "exec", name, "sysctl", "-qw", "net.ipv6.conf.eth0.accept_dad=0"],
                       capture_output=True, timeout=10, check=False)
        _ip("addr", "add", f"{ipv6}/64", "dev", "eth0", "nodad", namespace=name)
    _ip("link", "set", "eth0", "up", namespace=name)
    _ip("route", "add", "224.0.0.0/4", "dev", "eth0", namespace=name)
    return run_in(name, ["cat", "/sys/class/net/eth0/address"], timeout=5).stdout.decode().strip()


def delete_namespace(namespace: str) -> None:
    """Kill whatever still runs in ``namespace``, then delete it (quietly: it may be half made)."""
    with contextlib.suppress(subprocess.SubprocessError, OSError):
        pids = subprocess.run(["ip", "netns", "pids", namespace], capture_output=True, timeout=5).stdout.split()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), 9)
        subprocess.run(["ip", "netns", "del", namespace], capture_output=True, timeout=20)


@contextlib.contextmanager
def netns_lab(count: int, subnet: str, tag: str = "lab") -> Iterator[Lab]:
    """``count`` namespaces on one bridge, addressed ``<subnet>.1`` …; removed on exit, even on failure."""
    skip_unless_possible()
    short = f"{os.getpid() % 100000}{tag[:4]}"
    lab = Lab(tag=tag, hub=f"t1046-{short}-hub")
    created: list[str] = []
    try:
        created.append(lab.hub)
        make_hub(lab.hub)
        group = zlib.crc32(short.encode()) % 0xFFFF
        for index in range(count):
            name = f"t1046-{short}-{index}"
            created.append(name)
            ipv4, ipv6 = f"{subnet}.{index + 1}", f"fd46:{group:x}::{index + 1}"
            mac = plug_host(lab.hub, name, f"t{short}p{index}"[:15], ipv4, ipv6)
            lab.hosts.append(Host(name=name, interface="eth0", ipv4=ipv4, ipv6=ipv6, mac=mac))
        yield lab
    finally:
        for namespace in reversed(created):
            delete_namespace(namespace)
