"""A switched lab of network namespaces for the end-to-end mDNS tests, always torn down.

The namespaces are made as in :mod:`tests.netns` (its ``make_hub`` and ``plug_host``): one holds a Linux
bridge, every host is a namespace with ``eth0`` (a veth) plugged into it, so multicast stays inside the
lab; hosts are added one by one, by name. Names carry ``os.getpid()``. Every process the lab starts is ended by its
own id when the lab closes, even when a test fails. avahi-daemon runs in a private mount namespace (a
tmpfs over ``/run``, this host's services directory bound over ``/etc/avahi/services``) and, for
``avahi-browse``, with its own dbus-daemon whose socket lives in the lab's temporary directory.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.netns import delete_namespace, make_hub, plug_host
from tests.waiting import wait_for

TOOLS = ("ip", "unshare", "avahi-daemon", "avahi-browse", "dbus-daemon", "nmap", "dig")

_BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
"""

_AVAHI_CONFIG = """[server]
host-name={host_name}
domain-name=local
use-ipv4=yes
use-ipv6={ipv6}
allow-interfaces=eth0
enable-dbus={dbus}
ratelimit-interval-usec=1000000
ratelimit-burst=1000

[wide-area]
enable-wide-area=no

[publish]
publish-hinfo=no
publish-workstation=no
"""

_SERVICE = """<?xml version="1.0" standalone='no'?>
<!DOCTYPE service-group SYSTEM "avahi-service.dtd">
<service-group>
  <name>{name}</name>
  <service><type>{type}</type><port>{port}</port></service>
</service-group>
"""



def missing_tools() -> list[str]:
    """Tools the lab needs that are not installed."""
    return [tool for tool in TOOLS if shutil.which(tool) is None]


@dataclass
class Host:
    """One namespace on the lab's bridge."""

    name: str
    netns: str
    address: str
    directory: Path
    address6: str = ""
    """The host's IPv6 address on the bridge, when it has one (``add_host(..., ipv6=True)``)."""
    bus: str = ""
    """``DBUS_SYSTEM_BUS_ADDRESS`` of this host's private bus, when it has one."""

    def command(self, args: Sequence[str]) -> list[str]:
        """``args`` run inside this host's namespace (with its bus, if any)."""
        prefix = ["ip", "netns", "exec", self.netns]
        if self.bus:
            prefix += ["env", f"DBUS_SYSTEM_BUS_ADDRESS={self.bus}"]
        return [*prefix, *args]


@dataclass
class Lab:
    """The bridge namespace, its hosts and every process started in them."""

    subnet: str
    prefix: str = field(default_factory=lambda: f"t46m{os.getpid()}")
    hosts: dict[str, Host] = field(default_factory=dict)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    directory: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="t46m-lab-")))

    @property
    def bridge_netns(self) -> str:
        return f"{self.prefix}br"

    def __enter__(self) -> Lab:
        try:
            make_hub(self.bridge_netns)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add_host(self, name: str, number: int, *, ipv6: bool = False) -> Host:
        """A namespace with ``eth0`` at ``<subnet>.<number>/24`` on the bridge (and ``fd46:<pid>::<number>/64``
        with ``ipv6``)."""
        address6 = f"fd46:{os.getpid() % 0xFFFF:x}::{number}" if ipv6 else ""
        host = Host(name, f"{self.prefix}{name}", f"{self.subnet}.{number}", self.directory / name, address6)
        host.directory.mkdir()
        self.hosts[name] = host
        plug_host(self.bridge_netns, host.netns, f"p{number}", host.address, address6 or None)
        return host

    def start(self, host: Host, args: Sequence[str], name: str) -> tuple[subprocess.Popen[bytes], Path, Path]:
        """Start ``args`` in ``host``; return the process and the paths of its stdout and stderr."""
        out, err = host.directory / f"{name}.out", host.directory / f"{name}.err"
        with out.open("wb") as stdout, err.open("wb") as stderr:
            process = subprocess.Popen(host.command(args), stdout=stdout, stderr=stderr,
                                       start_new_session=True)
        self.processes.append(process)
        return process, out, err

    def run(self, host: Host, args: Sequence[str], timeout: float) -> subprocess.CompletedProcess[bytes]:
        """Run ``args`` in ``host`` to completion (killed after ``timeout`` seconds)."""
        process, out, err = self.start(host, args, Path(args[0]).name)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            _end(process)
        return subprocess.CompletedProcess(args, process.returncode, out.read_bytes(), err.read_bytes())

    def start_bus(self, host: Host) -> None:
        """A private system-like dbus-daemon for ``host`` (avahi-browse talks to avahi-daemon over D-Bus)."""
        socket = host.directory / "bus"
        config = host.directory / "bus.conf"
        config.write_text(_BUS_CONFIG.format(socket=socket))
        self.start(host, ["dbus-daemon", f"--config-file={config}", "--nofork", "--nopidfile"], "dbus")
        wait_for(socket.exists, 10, f"dbus-daemon of {host.name}")
        host.bus = f"unix:path={socket}"

    def start_avahi(self, host: Host, services: Sequence[tuple[str, str, int]] = ()) -> None:
        """avahi-daemon in ``host`` publishing ``(name, type, port)`` services; D-Bus when the host has a bus."""
        services_dir = host.directory / "services"
        services_dir.mkdir()
        for index, (name, kind, port) in enumerate(services):
            (services_dir / f"s{index}.service").write_text(_SERVICE.format(name=name, type=kind, port=port))
        config = host.directory / "avahi-daemon.conf"
        config.write_text(_AVAHI_CONFIG.format(host_name=f"{host.name}-{os.getpid()}",
                                               dbus="yes" if host.bus else "no",
                                               ipv6="yes" if host.address6 else "no"))
        script = (f"mount -t tmpfs tmpfs /run && mount --bind {services_dir} /etc/avahi/services && "
                  f"exec avahi-daemon -f {config} --no-drop-root --no-chroot --no-rlimits")
        _, _, err = self.start(host, ["unshare", "-m", "sh", "-c", script], "avahi")
        wait_for(lambda: b"Server startup complete" in err.read_bytes(), 20, f"avahi-daemon of {host.name}")
        wait_for(lambda: err.read_bytes().count(b"successfully established") >= len(services), 20,
                 f"services of {host.name}")

    def close(self) -> None:
        """End every process (by its id) and delete every namespace and file of the lab."""
        for process in reversed(self.processes):
            _end(process)
        self.processes.clear()
        for host in self.hosts.values():
            delete_namespace(host.netns)
        delete_namespace(self.bridge_netns)
        shutil.rmtree(self.directory, ignore_errors=True)


def _end(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process's own group, then SIGKILL it if it lingers."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(5)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(5)
    except ProcessLookupError:
        process.wait(5)
