"""Forged sources: what 100 000 UDP honeyport touches from 100 000 different (forged) addresses cost.

One sender can put any source address on a UDP datagram. The correlator is fed such touches, one per source,
ten thousand a second of event time, twice: as it runs (``spray_sources: 4``: from the fourth unproven
source on they fold into one aggregate incident) and with the aggregate turned off (one incident per
source, as before it: ``spray_window: 0``). For each it prints the alerts, how many have
``confidence: high`` (none may), the sources the correlator keeps state for, and the memory the run's
state took (tracemalloc's peak and the process's RSS growth).

    python bench/spray_bench.py [--sources 100000] [--rate 10000]
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import resource
import time
import tracemalloc
from ipaddress import IPv4Address

from sensor.config import DetectionConfig
from sensor.detect.correlator import Correlator
from sensor.observations import HoneyportHit, Touch, Transport

TARGET = IPv4Address("10.0.0.5")


def touches(count: int, rate: float) -> list[HoneyportHit]:
    """One SNMP-looking datagram to a UDP honeyport from each of ``count`` addresses of 172.16.0.0/12."""
    first = int(IPv4Address("172.16.0.1"))
    return [HoneyportHit(ts=1_800_000_000.0 + n / rate, source=IPv4Address(first + n), source_port=40000 + n % 20000,
                         target=TARGET, target_port=161, transport=Transport.UDP, profile="snmp",
                         payload=b"\x30\x26\x02\x01\x01\x04\x06public", touch=Touch.DATAGRAM)
            for n in range(count)]


def run(config: DetectionConfig, hits: list[HoneyportHit]) -> dict[str, float]:
    """Feed ``hits`` to a correlator under ``config`` (and let time pass); its figures."""
    gc.collect()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    started = time.perf_counter()
    correlator = Correlator(config)
    alerts = []
    for hit in hits:
        alerts += correlator.observe(hit, hit.ts)
    alerts += correlator.tick(hits[-1].ts + 120.0)
    seconds = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"alerts": len(alerts), "high": sum(alert.confidence == "high" for alert in alerts),
            "aggregated": correlator.stats.aggregated, "sources kept": correlator.tracked_sources,
            "open incidents": correlator.open_incidents, "peak MiB": peak / 2**20,
            "RSS growth MiB": (rss_after - rss_before) / 1024, "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", type=int, default=100_000, help="forged sources, one touch each")
    parser.add_argument("--rate", type=float, default=10_000.0, help="touches per second of event time")
    args = parser.parse_args()
    hits = touches(args.sources, args.rate)
    base = DetectionConfig()
    rows = {"aggregate (spray_sources 4)": run(base, hits),
            "one incident per source": run(dataclasses.replace(base, spray_window=0.0), hits)}
    keys = list(next(iter(rows.values())))
    print(f"{args.sources} forged sources, one UDP touch each, {args.rate:g}/s")
    print(f"| | {' | '.join(keys)} |")
    print(f"| --- |{' --- |' * len(keys)}")
    for name, row in rows.items():
        print(f"| {name} | " + " | ".join(f"{value:.1f}" if isinstance(value, float) else str(value)
                                          for value in row.values()) + " |")


if __name__ == "__main__":
    main()
