"""First-alert latency of the honeyport node: how long after a scanner's first touch its alert is out.

Runs ``python -m sensor honeyports`` (the real command, alerts to stdout) on 127.0.0.1, on a port the system
chooses (``--tcp 0``, read back from the node's ``honeyport listening on`` log line). Then, from distinct
loopback source addresses:

* ``--touches`` single touches, one connect each, one at a time: the alert's arrival on stdout minus the
  first touch as the node stamped it (``event.start``), and minus the moment the bench connected;
* a flood of ``--flood`` connections from one more source, as fast as the client goes: the first alert's
  arrival minus the flood's first connect, and how long the flood's connections took.

The goal (docs/performance.md): the first alert within 1 s of the first touch, also during a flood.

    python bench/first_alert_bench.py [--touches 20] [--flood 4000]
"""

from __future__ import annotations

import argparse
import json
import re
import selectors
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import IO, Any

GOAL_SECONDS = 1.0


class Node:
    """The honeyport command; its stdout alerts collected with their arrival times."""

    def __init__(self, directory: Path) -> None:
        config = directory / "node.yaml"
        config.write_text(f"sensor: {{name: bench-node, state_dir: {directory / 'state'}}}\n"
                          "honeyports: {max_connections_per_source: 64, idle_timeout: 3}\n"
                          "outputs: [{type: stdout}]\n")
        self.stderr = directory / "stderr"
        self.process = subprocess.Popen([sys.executable, "-m", "sensor", "-v", "honeyports", "--config", str(config),
                                         "--listen", "127.0.0.1", "--tcp", "0", "--udp", ""],
                                        stdout=subprocess.PIPE, stderr=self.stderr.open("wb"))
        self.alerts: list[tuple[float, dict[str, Any]]] = []
        self._lock = threading.Lock()
        assert self.process.stdout is not None
        threading.Thread(target=self._read, args=(self.process.stdout,), daemon=True).start()
        self.port = self._reported_port(30.0)

    def _read(self, stream: IO[bytes]) -> None:
        for line in stream:
            arrival = time.time()
            with self._lock:
                self.alerts.append((arrival, json.loads(line)))

    def _reported_port(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(r"honeyport listening on 127\.0\.0\.1:(\d+)/tcp", self.stderr.read_text())
            if found:
                return int(found.group(1))
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise SystemExit(f"the node did not report its port:\n{self.stderr.read_text()}")

    def first_alert(self, source: str, timeout: float = 30.0) -> tuple[float, dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                found = next(((t, a) for t, a in self.alerts if a["source"]["ip"] == source), None)
            if found is not None:
                return found
            time.sleep(0.001)
        raise SystemExit(f"no alert for {source} within {timeout:.0f} s")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)


def touch(port: int, source: str) -> float:
    """One connect from ``source``; the time it was made."""
    started = time.time()
    with socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(source, 0)):
        pass
    return started


def flood(port: int, source: str, total: int) -> tuple[float, float]:
    """``total`` non-blocking connects (at most 200 in flight); (time of the first, seconds for all)."""
    selector = selectors.DefaultSelector()
    done = started = 0
    first = time.time()
    begin = time.monotonic()
    while done < total:
        while started < total and started - done < 200:
            sock = socket.socket()
            sock.setblocking(False)
            sock.bind((source, 0))
            sock.connect_ex(("127.0.0.1", port))
            selector.register(sock, selectors.EVENT_WRITE)
            started += 1
        for key, _ in selector.select(5):
            selector.unregister(key.fileobj)
            assert isinstance(key.fileobj, socket.socket)
            key.fileobj.close()
            done += 1
    return first, time.monotonic() - begin


def _seconds(values: list[float]) -> str:
    return f"median {statistics.median(values):.3f} s, max {max(values):.3f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--touches", type=int, default=20)
    parser.add_argument("--flood", type=int, default=4000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        node = Node(Path(directory))
        try:
            after_touch, after_connect = [], []
            for index in range(args.touches):
                source = f"127.0.2.{index + 1}"
                connected = touch(node.port, source)
                arrival, alert = node.first_alert(source)
                after_touch.append(arrival - datetime.fromisoformat(alert["event"]["start"]).timestamp())
                after_connect.append(arrival - connected)
            first, took = flood(node.port, "127.0.3.1", args.flood)
            flood_arrival, _ = node.first_alert("127.0.3.1")
        finally:
            node.stop()
    flood_latency = flood_arrival - first
    worst = max(*after_touch, flood_latency)
    print(f"single touches:        {args.touches}, from distinct sources")
    print(f"  alert after touch:   {_seconds(after_touch)} (the node's first-touch stamp to stdout)")
    print(f"  alert after connect: {_seconds(after_connect)} (the bench's connect to stdout)")
    print(f"flood:                 {args.flood} connections in {took:.2f} s from one source")
    print(f"  first alert:         {flood_latency:.3f} s after the flood's first connect")
    print(f"goal (first alert within {GOAL_SECONDS:.0f} s of the first touch): "
          f"{'met' if worst < GOAL_SECONDS else 'NOT met'} (worst {worst:.3f} s)")


if __name__ == "__main__":
    main()
