"""Record ``b3_server_outage/capture.pcap``: a server goes down while its clients and a monitoring poller
keep trying its ports. Run as root; everything happens in network namespaces this script makes and
removes (a hub with a Linux bridge, captured with tcpdump as a SPAN port sees it).

    python tests/data/outage/record.py tests/data/outage/b3_server_outage/capture.pcap

10.210.0.20 serves tcp 22 (an ssh banner), 80 and 8080 (Python's http.server), 443, 3306, 5432 and 8443
(accept and close); 10.210.0.30 fetches http from :80 and :8080 every second, 10.210.0.31 reads the ssh
banner every second, 10.210.0.40 polls all seven ports every two seconds. After 15 s every listener on
the server stops (the host stays up and answers with resets); the clients and the poller go on for 20 s.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TAG = f"o{os.getpid() % 100000}"
HOSTS = {"srv": "10.210.0.20", "cli1": "10.210.0.30", "cli2": "10.210.0.31", "poll": "10.210.0.40"}
PORTS = (22, 80, 443, 3306, 5432, 8080, 8443)
SERVE = r"""
import socket, sys, threading, http.server, socketserver
def banner(port, text):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    s.listen(64)
    while True:
        c, _ = s.accept(); c.sendall(text); c.close()
for port, text in ((22, b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n"), (443, b""), (3306, b""), (5432, b""), (8443, b"")):
    threading.Thread(target=banner, args=(port, text), daemon=True).start()
for port in (80, 8080):
    server = socketserver.ThreadingTCPServer(("0.0.0.0", port), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
threading.Event().wait()
"""
CLIENT = r"""
import socket, sys, time
host, ports = sys.argv[1], [int(p) for p in sys.argv[2].split(",")]
every, seconds = float(sys.argv[3]), float(sys.argv[4])
end = time.time() + seconds
while time.time() < end:
    for port in ports:
        try:
            with socket.create_connection((host, port), timeout=2) as s:
                if port in (80, 8080):
                    s.sendall(b"GET / HTTP/1.0\r\nHost: srv\r\n\r\n")
                s.recv(4096)
        except OSError:
            pass
    time.sleep(every)
"""


def ns(name: str) -> str:
    return f"{TAG}-{name}"


def sh(*args: str) -> None:
    subprocess.run(args, check=True)


def main() -> None:
    out = Path(sys.argv[1]).resolve()
    hub = ns("hub")
    made: list[str] = []
    procs: list[subprocess.Popen[bytes]] = []
    try:
        sh("ip", "netns", "add", hub)
        made.append(hub)
        sh("ip", "-n", hub, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", hub, "link", "set", "br0", "up")
        for n, (name, address) in enumerate(HOSTS.items()):
            host = ns(name)
            sh("ip", "netns", "add", host)
            made.append(host)
            sh("ip", "-n", hub, "link", "add", f"p{n}", "type", "veth", "peer", "name", "eth0", "netns", host)
            sh("ip", "-n", hub, "link", "set", f"p{n}", "master", "br0", "up")
            sh("ip", "-n", host, "addr", "add", f"{address}/24", "dev", "eth0")
            sh("ip", "-n", host, "link", "set", "eth0", "up")
            sh("ip", "-n", host, "link", "set", "lo", "up")
        dump = subprocess.Popen(["ip", "netns", "exec", hub, "tcpdump", "-i", "br0", "-U", "-w", str(out), "ip"],
                                stderr=subprocess.DEVNULL)
        procs.append(dump)
        time.sleep(1)
        root = Path(tempfile.mkdtemp(prefix="t1046-outage-"))
        (root / "index.html").write_text("<html><body>it works</body></html>\n")
        server = subprocess.Popen(["ip", "netns", "exec", ns("srv"), sys.executable, "-c", SERVE], cwd=root,
                                  stderr=subprocess.DEVNULL)
        procs.append(server)
        time.sleep(1)
        srv = HOSTS["srv"]
        clients = [
            ("cli1", "80,8080", "1", "35"), ("cli2", "22", "1", "35"),
            ("poll", ",".join(map(str, PORTS)), "2", "35"),
        ]
        for name, ports, every, seconds in clients:
            procs.append(subprocess.Popen(["ip", "netns", "exec", ns(name), sys.executable, "-c", CLIENT, srv, ports,
                                           every, seconds]))
        time.sleep(15)
        server.terminate()
        server.wait(10)
        for proc in procs[2:]:
            proc.wait(60)
        time.sleep(2)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(10)
        for name in reversed(made):
            subprocess.run(["ip", "netns", "delete", name], check=False)


if __name__ == "__main__":
    main()
