"""Records the outbound scenarios of tests/data/reach/ (issue 22, item 3): an internal host scanning the
"internet", and internal clients using it. Run once, as root, from the repository:

    python -m tests.data.reach.record_outbound tests/data/reach

The lab (``tests/netns.py``'s helpers; every namespace named with this process's id and deleted on exit):
a switched LAN, 10.79.0.0/24, on a Linux bridge in a hub namespace, captured there by tcpdump as a SPAN
port sees it; on it the router 10.79.0.1, the scanner 10.79.0.2 and a client 10.79.0.3. The router routes
the documentation ranges 198.51.100.0/24 and 203.0.113.0/24 over a veth link (192.0.2.0/30) to one
"internet" namespace, which holds a few addresses of those ranges on its loopback and drops the rest of
them (blackhole routes: an absent internet host stays silent, as most do). Every packet stays inside the
namespaces made here; every scan is bounded in count (its target list) and time (the timeouts below).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from tests.netns import Lab, delete_namespace, netns_lab, popen_in, run_in, stop

LAN = "10.79.0"
INTERNET = {  # live internet addresses and what listens on each (tcp ports; udp ports)
    "198.51.100.23": ((23,), ()),
    "198.51.100.53": ((), (53,)),
    "198.51.100.80": ((80,), ()),
    "198.51.100.81": ((80,), ()),
    "198.51.100.82": ((80,), ()),
    "203.0.113.10": ((22, 80, 443), ()),
    "203.0.113.23": ((23,), ()),
    "203.0.113.80": ((80,), ()),
    "203.0.113.81": ((80,), ()),
    "203.0.113.82": ((80,), ()),
    "203.0.113.123": ((), (123,)),
    "203.0.113.124": ((), (123,)),
    "198.51.100.123": ((), (123,)),
}
SERVERS = r"""
import selectors, socket, sys
listeners = selectors.DefaultSelector()
for spec in sys.argv[1:]:
    address, proto, port = spec.split(":")
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    sock = socket.socket(socket.AF_INET, kind)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((address, int(port)))
    if proto == "tcp":
        sock.listen(64)
    listeners.register(sock, selectors.EVENT_READ, (proto, int(port)))
print("ready", flush=True)
while True:
    for key, _ in listeners.select():
        proto, port = key.data
        if proto == "tcp":
            conn, _ = key.fileobj.accept()
            conn.settimeout(2)
            try:
                if port == 23:
                    conn.sendall(b"login: ")
                elif port == 22:
                    conn.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")
                else:
                    conn.recv(4096)
                    conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")
            except OSError:
                pass
            conn.close()
        else:
            data, peer = key.fileobj.recvfrom(2048)
            if port == 53 and len(data) >= 12:
                key.fileobj.sendto(data[:2] + b"\x81\x80" + data[4:6] + b"\x00\x00\x00\x00\x00\x00" + data[12:], peer)
            elif port == 123:
                key.fileobj.sendto(b"\x24\x02\x00\xe7" + bytes(44), peer)
"""


def sh(namespace: str, *argv: str) -> None:
    run_in(namespace, argv, timeout=20, check=True)


@contextlib.contextmanager
def internet(lab: Lab) -> Iterator[str]:
    """The router (lab.hosts[0]) and the internet namespace behind it; yields its name."""
    router = lab.hosts[0].name
    name = f"t1046-{os.getpid() % 100000}-inet"
    try:
        subprocess.run(["ip", "netns", "add", name], check=True, timeout=20)
        sh(router, "ip", "link", "add", "wan", "type", "veth", "peer", "name", "eth0", "netns", name)
        sh(router, "ip", "addr", "add", "192.0.2.1/30", "dev", "wan")
        sh(router, "ip", "link", "set", "wan", "up")
        sh(router, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        for block in ("198.51.100.0/24", "203.0.113.0/24"):
            sh(router, "ip", "route", "add", block, "via", "192.0.2.2")
        sh(name, "ip", "link", "set", "lo", "up")
        sh(name, "ip", "addr", "add", "192.0.2.2/30", "dev", "eth0")
        sh(name, "ip", "link", "set", "eth0", "up")
        sh(name, "ip", "route", "add", f"{LAN}.0/24", "via", "192.0.2.1")
        for block in ("198.51.100.0/24", "203.0.113.0/24"):
            sh(name, "ip", "route", "add", "blackhole", block)
        for address in INTERNET:
            sh(name, "ip", "addr", "add", f"{address}/32", "dev", "lo")
        for host in lab.hosts[1:]:
            sh(host.name, "ip", "route", "add", "default", "via", f"{LAN}.1")
        yield name
    finally:
        delete_namespace(name)


@contextlib.contextmanager
def captured(lab: Lab, pcap: Path) -> Iterator[None]:
    """tcpdump on the LAN's bridge (the SPAN port) into ``pcap`` while the block runs."""
    pcap.parent.mkdir(parents=True, exist_ok=True)
    dump = popen_in(lab.hub, ["tcpdump", "-i", "br0", "-U", "-s", "0", "-w", str(pcap)])
    assert dump.stderr is not None and b"listening on" in dump.stderr.readline()
    try:
        yield
    finally:
        time.sleep(2)  # the last answers (a scan's late RSTs) reach the bridge
        stop(dump)


def record(out: Path) -> None:
    with netns_lab(3, LAN, tag="outb") as lab, internet(lab) as inet:
        scanner, client = lab.hosts[1].name, lab.hosts[2].name
        specs = [f"{address}:tcp:{port}" for address, (tcp, _) in INTERNET.items() for port in tcp]
        specs += [f"{address}:udp:{port}" for address, (_, udp) in INTERNET.items() for port in udp]
        servers = popen_in(inet, [sys.executable, "-c", SERVERS, *specs])
        try:
            assert servers.stdout is not None and servers.stdout.readline().strip() == b"ready"
            with captured(lab, out / "outbound_telnet_sweep" / "capture.pcap"):
                result = run_in(scanner, ["masscan", "-p23", "--rate", "100", "--wait", "5",
                                          "198.51.100.0/26", "203.0.113.0/26"], timeout=60)
            (out / "outbound_telnet_sweep" / "masscan.txt").write_bytes(result.stdout)
            with captured(lab, out / "outbound_vertical" / "capture.pcap"):
                result = run_in(scanner, ["nmap", "-sS", "-Pn", "-n", "-T4", "--max-retries", "1",
                                          "--host-timeout", "120s", "--top-ports", "1000", "203.0.113.10"],
                                timeout=150)
            (out / "outbound_vertical" / "nmap.txt").write_bytes(result.stdout)
            with captured(lab, out / "outbound_benign_clients" / "capture.pcap"):
                benign(client)
        finally:
            stop(servers)


def benign(client: str) -> None:
    """What an internal client does on the internet: names, time, web pages, and a few first contacts
    that fail (an absent time server, web servers that are gone)."""
    for name in ("www.example.com", "example.net", "example.org"):
        run_in(client, ["dig", "+tries=1", "+time=2", "@198.51.100.53", name, "A"], timeout=10)
    for server in ("203.0.113.123", "203.0.113.124", "198.51.100.123", "203.0.113.125"):
        run_in(client, [sys.executable, "-c",
                        "import socket,sys; s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.settimeout(2); "
                        "s.sendto(b'\\x23'+bytes(47),(sys.argv[1],123));\ntry: s.recv(64)\nexcept OSError: pass",
                        server], timeout=10)
    for server in ("198.51.100.80", "198.51.100.81", "198.51.100.82", "203.0.113.80", "203.0.113.81",
                   "203.0.113.82", "203.0.113.10", "198.51.100.80", "203.0.113.80"):
        run_in(client, ["curl", "-s", "-m", "3", f"http://{server}/"], timeout=10)
    for server in ("198.51.100.200", "203.0.113.200", "198.51.100.201"):
        run_in(client, ["curl", "-s", "-m", "3", f"http://{server}/"], timeout=10)
    run_in(client, ["ping", "-c", "2", "-i", "0.5", "203.0.113.10"], timeout=10)


if __name__ == "__main__":
    record(Path(sys.argv[1]))
