"""Record ``alerts.jsonl``: what ``t1046-sensor honeyports`` alerted on when real nmap scanned its
honeyports. Run as root; everything happens in two network namespaces this script makes and removes (a hub
with a Linux bridge, veth links: tests/netns.py), and traffic goes only between them.

    python tests/data/honeyports/record.py tests/data/honeyports/alerts.jsonl

10.233.0.1 runs the node (honeyports on 2222, 2323, 8081, 13306, 33389 and 35900 over TCP); 10.233.0.2 runs
``nmap -sS`` of those six ports (half-open SYN probes), then, 20 s later, ``nmap -sV`` of three of them
(completed handshakes, nmap's probes as first bytes). The node's file sink is the recording; its stop
(SIGTERM) flushes what grew.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from tests.netns import netns_lab, popen_in, run_in, stop  # noqa: E402

PORTS = "2222,2323,8081,13306,33389,35900"


def main(out: Path) -> None:
    with netns_lab(2, "10.233.0", tag="rec") as lab, tempfile.TemporaryDirectory() as tmp:
        node, scanner = lab.hosts
        alerts = Path(tmp) / "alerts.jsonl"
        config = Path(tmp) / "node.yaml"
        config.write_text(f"sensor: {{name: recorder, state_dir: {tmp}/state}}\n"
                          f"honeyports: {{listen: [{node.ipv4}], tcp: '{PORTS}', udp: ''}}\n"
                          f"outputs: [{{type: file, path: {alerts}}}]\n")
        process = popen_in(node.name, [sys.executable, "-m", "sensor", "honeyports", "--config", str(config)],
                           cwd=ROOT)
        try:
            deadline = time.monotonic() + 20
            while not run_in(node.name, ["ss", "-ltn", "sport", "= :35900"], timeout=5).stdout.count(b"LISTEN"):
                if time.monotonic() > deadline:
                    raise SystemExit("the node did not listen")
                time.sleep(0.2)
            run_in(scanner.name, ["nmap", "-sS", "-Pn", "-n", "-T4", "-p", PORTS, node.ipv4], timeout=60, check=True)
            time.sleep(20)
            run_in(scanner.name, ["nmap", "-sV", "-Pn", "-n", "-T4", "-p", "2222,8081,13306", node.ipv4], timeout=120,
                   check=True)
            time.sleep(3)
        finally:
            stop(process, 20)
        shutil.copyfile(alerts, out)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
