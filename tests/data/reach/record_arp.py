"""Record the ARP scenarios of tests/data/reach/ (see PROVENANCE.md there). Run as root; everything happens in
network namespaces this script makes and removes (tests/netns.py's lab: a hub namespace holding a Linux bridge,
captured with tcpdump as a SPAN port sees it)::

    python tests/data/reach/record_arp.py arp_answered_ssh tests/data/reach/arp_answered_ssh/capture.pcap
    python tests/data/reach/record_arp.py arp_routed_scan tests/data/reach/arp_routed_scan/capture.pcap
    python tests/data/reach/record_arp.py arp_only_sweep tests/data/reach/arp_only_sweep/capture.pcap

``arp_answered_ssh``: 10.80.0.2 runs OpenSSH's client against 40 addresses of 10.80.0.1 (10.80.0.101-140, all
on one host), whose Python server sends an SSH banner and reads the client's; every ARP request is answered
and every answer used.

``arp_routed_scan``: 10.79.1.10, on another subnet, scans 10.79.2.2-41 through a router namespace (10.79.1.1 /
10.79.2.1) with ``nmap -sS -Pn -n -p 22,80,445,3389``; on the target segment only 10.79.2.2, .3 and .4 exist, so
the router ARPs in vain for the other 37. Captured on the target segment.

``arp_only_sweep``: 10.81.0.1 runs ``nmap -sT -Pn -n -p 22,80,445,3389`` over 10.81.0.2-42 on its own segment,
where only .2, .3 and .4 exist: for the other 38 nothing but ARP leaves the scanner.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from tests.netns import Lab, delete_namespace, netns_lab, popen_in, run_in, stop

PORTS = "22,80,445,3389"
SERVE = r"""
import socket, sys, threading
def serve(port, banner):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    s.listen(64)
    while True:
        c, _ = s.accept()
        c.settimeout(0.5)
        try:
            c.sendall(banner)
            while c.recv(4096):
                pass
        except OSError:
            pass
        c.close()
threading.Thread(target=serve, args=(22, b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n"), daemon=True).start()
threading.Thread(target=serve, args=(80, b"HTTP/1.0 200 OK\r\n\r\n"), daemon=True).start()
threading.Event().wait()
"""
"""Listeners on 22 (an SSH banner) and 80 that read what the client sends until it pauses for half a second, then
close: sessions with data both ways, ended by FIN."""


@contextlib.contextmanager
def capture(namespace: str, out: Path) -> Iterator[None]:
    """tcpdump on ``namespace``'s bridge, written to ``out``, until the block ends (and a second after)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    dump = popen_in(namespace, ["tcpdump", "-i", "br0", "-U", "-s", "0", "-w", str(out)],
                    stdout=subprocess.DEVNULL)
    assert dump.stderr is not None
    for line in dump.stderr:
        if b"listening on" in line:
            break
    try:
        yield
        time.sleep(1)
    finally:
        stop(dump)


def quiet(lab: Lab) -> None:
    """No IPv6 on the hosts (its neighbour discovery and MLD are noise here) and empty neighbour caches."""
    for namespace in (lab.hub, *(host.name for host in lab.hosts)):
        run_in(namespace, ["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"], timeout=10, check=True)
        run_in(namespace, ["ip", "neigh", "flush", "all"], timeout=10)


def serve(lab: Lab, index: int) -> subprocess.Popen[bytes]:
    return popen_in(lab.hosts[index].name, [sys.executable, "-c", SERVE], stdout=subprocess.DEVNULL)


def answered_ssh(out: Path) -> None:
    with netns_lab(2, "10.80.0", tag="assh") as lab:
        quiet(lab)
        server, client = lab.hosts
        for last in range(101, 141):
            run_in(server.name, ["ip", "addr", "add", f"10.80.0.{last}/24", "dev", "eth0"], timeout=10, check=True)
        listener = serve(lab, 0)
        try:
            time.sleep(1)
            with capture(lab.hub, out):
                for last in range(101, 141):
                    run_in(client.name, ["ssh", "-n", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
                                         "-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=5",
                                         f"admin@10.80.0.{last}", "true"], timeout=30)
        finally:
            stop(listener)


def routed_scan(out: Path) -> None:
    with netns_lab(4, "10.79.2", tag="arte") as lab:
        quiet(lab)
        router = lab.hosts[0].name
        scanner = f"{lab.hub[:-4]}-scan"
        try:
            subprocess.run(["ip", "netns", "add", scanner], check=True, timeout=20)
            subprocess.run(["ip", "-n", scanner, "link", "add", "eth0", "type", "veth", "peer", "name", "up0",
                            "netns", router], check=True, timeout=20)
            for namespace, link, address in ((scanner, "eth0", "10.79.1.10/24"), (router, "up0", "10.79.1.1/24")):
                subprocess.run(["ip", "-n", namespace, "addr", "add", address, "dev", link], check=True, timeout=20)
                subprocess.run(["ip", "-n", namespace, "link", "set", link, "up"], check=True, timeout=20)
            subprocess.run(["ip", "-n", scanner, "link", "set", "lo", "up"], check=True, timeout=20)
            subprocess.run(["ip", "-n", scanner, "route", "add", "default", "via", "10.79.1.1"], check=True, timeout=20)
            run_in(router, ["sysctl", "-qw", "net.ipv4.ip_forward=1"], timeout=10, check=True)
            for host in lab.hosts[1:]:
                run_in(host.name, ["ip", "route", "add", "default", "via", "10.79.2.1"], timeout=10, check=True)
            listeners = [serve(lab, 1), serve(lab, 2)]
            try:
                time.sleep(1)
                with capture(lab.hub, out):
                    run_in(scanner, ["nmap", "-sS", "-Pn", "-n", "-p", PORTS, "--max-retries", "1",
                                     "--host-timeout", "60s", "10.79.2.2-41"], timeout=120, check=True)
            finally:
                for listener in listeners:
                    stop(listener)
        finally:
            delete_namespace(scanner)


def arp_only_sweep(out: Path) -> None:
    with netns_lab(4, "10.81.0", tag="asw") as lab:
        quiet(lab)
        listeners = [serve(lab, 1), serve(lab, 2)]
        try:
            time.sleep(1)
            with capture(lab.hub, out):
                run_in(lab.hosts[0].name, ["nmap", "-sT", "-Pn", "-n", "-p", PORTS, "10.81.0.2-42"], timeout=120,
                       check=True)
        finally:
            for listener in listeners:
                stop(listener)


SCENARIOS = {"arp_answered_ssh": answered_ssh, "arp_routed_scan": routed_scan, "arp_only_sweep": arp_only_sweep}

if __name__ == "__main__":
    SCENARIOS[sys.argv[1]](Path(sys.argv[2]).resolve())
