"""Record the captures of the scans the Zeek package's notices used to miss while replay caught them (issue 22,
item 7): ``slow_t1_vertical``, ``small_port_scan``, ``sweep_445``, ``zero_window_telnet``, ``avahi_browse``,
and a benign ``avahi_smb_browse``. Run as root; everything happens in network namespaces this script makes
and removes (a hub with a Linux bridge, veth links: tests/netns.py, tests/mdns/netlab.py), captured on the
bridge as a SPAN port sees it, and traffic goes only between them.

    python tests/data/reach/record_parity.py tests/data/reach              # all of them
    python tests/data/reach/record_parity.py tests/data/reach sweep_445

The TCP scenarios have two hosts: the target 10.223.0.1 (Python listeners on 22 and 80; with
``TARGETS`` also at 10.223.0.20-35, of which 10.223.0.24-35 drop every packet with nftables, so they
stay silent while the rest answer 445 and 23 with a reset) and the scanner 10.223.0.2:

- ``slow_t1_vertical``: ``nmap -sS -Pn -n -T1 -p`` twelve ports of 10.223.0.1 (two of them open): one
  probe every 15 s, about three minutes;
- ``small_port_scan``: ``nmap -sS -Pn -n -T4 -p`` ten ports of 10.223.0.1 (one open);
- ``sweep_445``: ``nmap -sS -Pn -n -T4 --max-retries 1 -p 445 10.223.0.20-35``;
- ``zero_window_telnet``: hping3, a SYN with window 0 to 23/tcp of each of 10.223.0.20-29, one a second.

The mDNS scenarios (tests/mdns/netlab.py: avahi-daemon in a private mount namespace, its own dbus-daemon)
have a responder at 10.223.1.2 (avahi-daemon publishing ssh and smb) and a browser at 10.223.1.10
(avahi-daemon, whose questions go from port 5353 to the group, as an operating system's do):

- ``avahi_browse``: ``avahi-browse -rtp _ssh._tcp``, then ``avahi-browse -artp`` (the service type
  enumeration, then every type found);
- ``avahi_smb_browse``: ``avahi-browse -rtp _smb._tcp`` only, what a file manager does: not a scan.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from tests.mdns.netlab import Lab  # noqa: E402
from tests.netns import netns_lab, popen_in, run_in, stop  # noqa: E402

SUBNET = "10.223.0"
TARGETS = [f"{SUBNET}.{n}" for n in range(20, 36)]
SILENT = TARGETS[4:]
DROP = "table inet silent {\n    chain input { type filter hook input priority 0; ip daddr { %s } drop; }\n}\n"
LISTEN = """
import socket, threading
def serve(port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    s.listen(64)
    while True:
        c, _ = s.accept(); c.close()
for port in (22, 80):
    threading.Thread(target=serve, args=(port,), daemon=True).start()
threading.Event().wait()
"""
NMAP = ("nmap", "-sS", "-Pn", "-n")
SCANS: dict[str, list[tuple[str, ...]]] = {
    "slow_t1_vertical": [(*NMAP, "-T1", "-p", "21,22,23,25,53,80,110,139,143,443,445,3389", f"{SUBNET}.1")],
    "small_port_scan": [(*NMAP, "-T4", "-p", "21,22,23,25,110,135,139,443,995,3306", f"{SUBNET}.1")],
    "sweep_445": [(*NMAP, "-T4", "--max-retries", "1", "-p", "445", f"{SUBNET}.20-35")],
    "zero_window_telnet": [("hping3", "-q", "-S", "-w", "0", "-p", "23", "-c", "1", target) for target in TARGETS[:10]],
}
BROWSES: dict[str, list[list[str]]] = {
    "avahi_browse": [["avahi-browse", "-rtp", "_ssh._tcp"], ["avahi-browse", "-artp"]],
    "avahi_smb_browse": [["avahi-browse", "-rtp", "_smb._tcp"]],
}


def record_scan(name: str, out: Path) -> None:
    """One TCP scenario's capture into ``out``."""
    with netns_lab(2, SUBNET, tag=name[:4]) as lab:
        target, scanner = lab.hosts
        for address in TARGETS:
            run_in(target.name, ["ip", "addr", "add", f"{address}/24", "dev", "eth0"], timeout=10, check=True)
        run_in(target.name, ["nft", "-f", "-"], timeout=10, check=True,
               input_bytes=(DROP % ", ".join(SILENT)).encode())
        listener = popen_in(target.name, [sys.executable, "-c", LISTEN])
        dump = popen_in(lab.hub, ["tcpdump", "-i", "br0", "-U", "-w", str(out), "not ip6"])
        try:
            time.sleep(2)
            for scan in SCANS[name]:
                done = run_in(scanner.name, scan, timeout=400)
                if done.returncode not in ((0, 1) if scan[0] == "hping3" else (0,)):
                    raise SystemExit(f"{' '.join(scan)}: exit {done.returncode}: {done.stderr.decode()}")
                if scan[0] == "hping3":
                    time.sleep(1)
            time.sleep(7)
        finally:
            stop(dump)
            stop(listener)


def record_browse(name: str, out: Path) -> None:
    """One mDNS scenario's capture into ``out``."""
    with Lab("10.223.1") as lab:
        responder = lab.add_host("resp", 2)
        browser = lab.add_host("brws", 10)
        dump = popen_in(lab.bridge_netns, ["tcpdump", "-i", "br0", "-U", "-w", str(out), "not ip6"])
        try:
            time.sleep(2)
            lab.start_avahi(responder, [("vm", "_ssh._tcp", 22), ("share", "_smb._tcp", 445)])
            lab.start_bus(browser)
            lab.start_avahi(browser)
            for browse in BROWSES[name]:
                done = lab.run(browser, browse, 30)
                if done.returncode != 0:
                    raise SystemExit(f"{' '.join(browse)}: exit {done.returncode}: {done.stderr.decode()}")
            time.sleep(2)
        finally:
            stop(dump)


def main() -> None:
    folder = Path(sys.argv[1]).resolve()
    for name in sys.argv[2:] or sorted([*SCANS, *BROWSES]):
        (folder / name).mkdir(parents=True, exist_ok=True)
        (record_scan if name in SCANS else record_browse)(name, folder / name / "capture.pcap")


if __name__ == "__main__":
    main()
