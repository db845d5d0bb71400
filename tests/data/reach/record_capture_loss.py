"""Record ``capture_loss_web/capture.pcap``: a web client fetching pages from three HTTP servers while the
capture misses packets, as a lossy SPAN port does. Run as root; everything happens in network namespaces
this script makes and removes (a hub with a Linux bridge, veth links: tests/netns.py), captured on the
bridge, and traffic goes only between them.

    python tests/data/reach/record_capture_loss.py tests/data/reach/capture_loss_web/capture.pcap

10.223.0.1 is the client; 10.223.0.2, .3 and .4 serve HTTP on 80 and 8080 (Python's http.server) and a
line echo on 9000. Before the capture starts, the client opens a connection to each server's 9000 and
keeps exchanging a line every half second until the end (the capture picks them up mid-stream). Then, in
three rounds, it fetches four pages from each server on each port with curl. The capture filter loses:

- on port 80, every packet of the client after its SYN (they all carry the ACK flag): Zeek sees the
  servers answer the SYN, send their pages and close, and never the client's ACK;
- on port 8080, every packet without the SYN flag, both ways: Zeek sees the SYN and the SYN-ACK only (as in
  Zeek's own ``wikipedia-filtered-plus-udp.trace``).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from tests.netns import netns_lab, popen_in, run_in, stop  # noqa: E402

SUBNET = "10.223.0"
PAGES = ("index.html", "news.html", "about.html", "contact.html")
SERVE = r"""
import http.server, socket, socketserver, threading
class Echo(socketserver.StreamRequestHandler):
    def handle(self):
        for line in self.rfile:
            self.wfile.write(line)
for port in (80, 8080):
    server = socketserver.ThreadingTCPServer(("0.0.0.0", port), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
socketserver.ThreadingTCPServer.allow_reuse_address = True
socketserver.ThreadingTCPServer(("0.0.0.0", 9000), Echo).serve_forever()
"""
CHAT = r"""
import socket, sys, time
streams = [socket.create_connection((host, 9000), timeout=5) for host in sys.argv[2:]]
end = time.time() + float(sys.argv[1])
while time.time() < end:
    for stream in streams:
        stream.sendall(b"status?\n")
        stream.recv(64)
    time.sleep(0.5)
for stream in streams:
    stream.close()
"""
"""The long-lived connections: a line to each server and its echo every half second for argv[1] seconds."""
LOSSY = ("not ip6 and not (src host {client} and tcp dst port 80 and tcp[tcpflags] & tcp-ack != 0)"
         " and not (tcp port 8080 and tcp[tcpflags] & tcp-syn == 0)")
"""The capture filter: what a lossy SPAN port misses (the module docstring says what)."""


def main(out: Path) -> None:
    with netns_lab(4, SUBNET, tag="loss") as lab, tempfile.TemporaryDirectory() as site:
        client, *servers = lab.hosts
        for number, page in enumerate(PAGES):
            (Path(site) / page).write_text(f"<html><body>{page}: {'news of the day ' * 40 * (number + 1)}"
                                           "</body></html>\n")
        running = [popen_in(server.name, [sys.executable, "-c", SERVE], cwd=site) for server in servers]
        try:
            for server in servers:
                deadline = time.monotonic() + 20
                while b"LISTEN" not in run_in(server.name, ["ss", "-ltn", "sport", "= :9000"], timeout=5).stdout:
                    if time.monotonic() > deadline:
                        raise SystemExit(f"{server.ipv4} did not listen")
                    time.sleep(0.2)
            chat = popen_in(client.name, [sys.executable, "-c", CHAT, "40", *(s.ipv4 for s in servers)])
            running.append(chat)
            time.sleep(3)
            running.append(popen_in(lab.hub, ["tcpdump", "-i", "br0", "-U", "-w", str(out),
                                              LOSSY.format(client=client.ipv4)]))
            time.sleep(2)
            for _ in range(3):
                for server in servers:
                    for port in (80, 8080):
                        urls = [f"http://{server.ipv4}:{port}/{page}" for page in PAGES]
                        run_in(client.name, ["curl", "-sS", "--max-time", "10", "-o", "/dev/null", *urls],
                               timeout=60, check=True)
                time.sleep(5)
            if chat.wait(60) != 0:
                raise SystemExit(f"the long-lived connections failed: {chat.stderr and chat.stderr.read()!r}")
            time.sleep(2)
        finally:
            for process in reversed(running):
                stop(process)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
