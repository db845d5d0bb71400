"""Record the captures of stealth probes to a silent target: ``silent_null_scan``, ``silent_ack_scan`` and
``silent_flag_probes``. Run as root; everything happens in network namespaces this script makes and removes
(a hub with a Linux bridge, veth links: tests/netns.py), captured on the bridge as a SPAN port sees it, and
traffic goes only between them.

    python tests/data/reach/record_silent.py tests/data/reach            # all three
    python tests/data/reach/record_silent.py tests/data/reach silent_null_scan

10.222.0.1 is the target: an nftables table in its namespace drops every IP packet in and out (it still
answers ARP, so the scanner's packets leave), so nothing it receives is ever answered. 10.222.0.2 scans it:

- ``silent_null_scan``: ``nmap -sN -Pn -n -T4 --max-retries 1 -p 1-100``;
- ``silent_ack_scan``: ``nmap -sA -Pn -n -T4 --max-retries 1 -p 1-100``;
- ``silent_flag_probes``: hping3, one probe a second, each to the next port: CWR only (``-Y``, 10 ports from
  20), ECE only (``-X``, 8 from 40), CWR and ECE (``-X -Y``, 6 from 60), no flag at all (6 from 80).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from tests.netns import netns_lab, popen_in, run_in, stop  # noqa: E402

SUBNET = "10.222.0"
SILENT = """table inet silent {
    chain input { type filter hook input priority 0; policy drop; }
    chain output { type filter hook output priority 0; policy drop; }
}
"""
"""The target's ruleset: every IP packet in and out dropped (ARP is another family: still answered)."""
NMAP = ("nmap", "-Pn", "-n", "-T4", "--max-retries", "1", "--host-timeout", "120s", "-p", "1-100")
HPING = ("hping3", "-q", "-i", "1")
"""hping3 sends one probe a second; ``-p ++N`` moves each probe to the next port from N. It exits 1 when
nothing answered, which is the point here."""
SCANS: dict[str, list[tuple[str, ...]]] = {
    "silent_null_scan": [(*NMAP, "-sN")],
    "silent_ack_scan": [(*NMAP, "-sA")],
    "silent_flag_probes": [(*HPING, "-Y", "-c", "10", "-p", "++20"), (*HPING, "-X", "-c", "8", "-p", "++40"),
                           (*HPING, "-X", "-Y", "-c", "6", "-p", "++60"), (*HPING, "-c", "6", "-p", "++80")],
}


def record(name: str, out: Path) -> None:
    """One scenario's capture into ``out``."""
    with netns_lab(2, SUBNET, tag=name[7:11]) as lab:
        target, scanner = lab.hosts
        run_in(target.name, ["nft", "-f", "-"], timeout=10, check=True, input_bytes=SILENT.encode())
        dump = popen_in(lab.hub, ["tcpdump", "-i", "br0", "-U", "-w", str(out), "not ip6"])
        try:
            time.sleep(2)
            for scan in SCANS[name]:
                done = run_in(scanner.name, [*scan, target.ipv4], timeout=180)
                if done.returncode not in ((0, 1) if scan[0] == "hping3" else (0,)):
                    raise SystemExit(f"{' '.join(scan)}: exit {done.returncode}: {done.stderr.decode()}")
            time.sleep(2)
        finally:
            stop(dump)


def main() -> None:
    folder = Path(sys.argv[1]).resolve()
    for name in sys.argv[2:] or sorted(SCANS):
        (folder / name).mkdir(parents=True, exist_ok=True)
        record(name, folder / name / "capture.pcap")


if __name__ == "__main__":
    main()
