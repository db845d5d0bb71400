"""An mDNS flood beside honeyport touches, in a lab of network namespaces: ``run`` watches mDNS and serves a
honeyport in one namespace; another floods the mDNS group with 64-question queries at a fixed rate (bounded
in count and time) -- legacy unicast ones, as dig sends, each question a service type not asked before --
while it times honeyport connect-and-banner round trips. Used by
``tests/mdns/test_flood.py`` and ``bench/mdns_flood_bench.py``."""

from __future__ import annotations

import json
import os
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.mdns.netlab import Lab
from tests.waiting import wait_for

HONEYPORT = 2222
FLOODER = r"""
import json, socket, struct, sys, threading, time
target, port, seconds, rate = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])

def name(text):
    return b"".join(bytes([len(label)]) + label.encode() for label in text.split(".")) + b"\0"

def packet(serial):
    return struct.pack(">HHHHHH", 0, 0, 64, 0, 0, 0) + b"".join(
        name(f"_f{serial}x{number}._tcp.local") + struct.pack(">HH", 12, 1) for number in range(64))

sent = [0]

def flood():
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 255)
    start = time.monotonic()
    while sent[0] < rate * seconds:
        sender.sendto(packet(sent[0]), ("224.0.0.251", 5353))
        sent[0] += 1
        delay = start + sent[0] / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)

thread = threading.Thread(target=flood)
thread.start()
time.sleep(1.0)
latencies = []
end = time.monotonic() + seconds - 1.5
while time.monotonic() < end:
    started = time.monotonic()
    try:
        with socket.create_connection((target, port), timeout=20) as connection:
            connection.recv(64)
    except TimeoutError:
        pass  # counted as the 20 s it waited
    latencies.append(time.monotonic() - started)
    time.sleep(0.1)
thread.join()
print(json.dumps({"latencies": latencies, "packets": sent[0]}))
"""


@dataclass(frozen=True)
class Flood:
    """What one flood measured."""

    latencies: list[float]
    """Seconds from connecting to the honeyport to its banner, one per touch during the flood."""
    packets: int
    log: str
    """The daemon's stderr."""

    @property
    def median(self) -> float:
        return statistics.median(self.latencies)


def flood(directory: Path, seconds: float = 6.0, rate: float = 100.0) -> Flood:
    """Run the daemon and the flood in a lab of their own (root and iproute2 needed)."""
    subnet = f"10.252.{os.getpid() % 200}"
    with Lab(subnet) as lab:
        watch = lab.add_host("fwatch", 1)
        flooder = lab.add_host("flood", 2)
        config = directory / "sensor.yaml"
        config.write_text(f"sensor: {{name: lab, state_dir: {directory / 'state'}}}\n"
                          f"honeyports: {{listen: [{watch.address}], tcp: '{HONEYPORT}'}}\n"
                          "mdns: {interfaces: [eth0]}\noutputs: [{type: file, path: alerts.jsonl}]\n")
        _, _, err = lab.start(watch, [sys.executable, "-m", "sensor", "-v", "run", "--config", str(config)], "run")
        wait_for(lambda: b"watching eth0" in err.read_bytes() and b"running" in err.read_bytes(), 60,
                 "the daemon to watch mDNS and serve its honeyport")
        measured = lab.run(flooder, [sys.executable, "-c", FLOODER, watch.address, str(HONEYPORT), str(seconds),
                                     str(rate)], seconds + 120)
        assert measured.returncode == 0, measured.stderr.decode()
        found = json.loads(measured.stdout)
        return Flood(found["latencies"], found["packets"], err.read_text())
