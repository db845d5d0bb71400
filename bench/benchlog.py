"""The benchmarks' shared parts: the synthetic conn.log, the naive baseline and a child-process timer.

The log has the 21 columns of a real Zeek 7.0 conn.log: benign sources using six common services on 400
servers (1 % of their contacts refused), and 5 scanners sending one record in 200 (vertical and horizontal).
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import time
from pathlib import Path

HEADER = """#separator \\x09
#set_separator\t,
#empty_field\t(empty)
#unset_field\t-
#path\tconn
#open\t2026-11-28-00-00-00
#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tduration\torig_bytes\tresp_bytes\t\
conn_state\tlocal_orig\tlocal_resp\tmissed_bytes\thistory\torig_pkts\torig_ip_bytes\tresp_pkts\tresp_ip_bytes\t\
tunnel_parents
#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring\tinterval\tcount\tcount\tstring\tbool\tbool\tcount\t\
string\tcount\tcount\tcount\tcount\tset[string]
"""
BENIGN = (
    ("tcp", 443, "ssl", "SF", "ShADadFf", 12), ("tcp", 80, "http", "SF", "ShADadfF", 8),
    ("tcp", 22, "ssh", "SF", "ShAdDaFf", 20), ("tcp", 445, "smb", "SF", "ShADadFf", 10),
    ("udp", 53, "dns", "SF", "Dd", 1), ("tcp", 3389, "-", "RSTR", "ShADadR", 30),
)
NAIVE = """
import sys
from collections import defaultdict
ports = defaultdict(set)
with open(sys.argv[1]) as stream:
    for line in stream:
        if line.startswith("#"):
            continue
        parts = line.split("\\t")
        ports[parts[2]].add(parts[5])
flagged = sum(1 for seen in ports.values() if len(seen) > 5)
print(flagged, file=sys.stderr)
"""
READ_SPLIT = """
import sys, time
started = time.perf_counter()
with open(sys.argv[1]) as stream:
    for line in stream:
        if not line.startswith("#"):
            parts = line.split("\\t")
print(time.perf_counter() - started, file=sys.stderr)
"""
FLOOR = """
import sys, time
from collections import OrderedDict
rows = []
with open(sys.argv[1]) as stream:
    for line in stream:
        if not line.startswith("#"):
            parts = line.split("\\t")
            rows.append((parts[2], parts[4], parts[11] != "REJ"))
tracks = OrderedDict()
started = time.perf_counter()
for source, target, answered in rows:
    track = tracks.get(source)
    if track is None:
        track = tracks[source] = [0.0, {}]
    else:
        tracks.move_to_end(source)
    contacted = track[1]
    if target not in contacted:
        contacted[target] = None
        track[0] += -1.386 if answered else 1.386
print(time.perf_counter() - started, file=sys.stderr)
"""


def write_log(path: Path, records: int, sources: int, seed: int = 1046) -> int:
    """Write the synthetic conn.log; return the number of scan probes in it."""
    rng = random.Random(seed)
    servers = [f"10.20.{i // 250}.{i % 250 + 1}" for i in range(400)]
    scanners = [f"10.66.0.{i + 1}" for i in range(5)]
    ts = 1795000000.0
    probes = 0
    with path.open("w") as out:
        out.write(HEADER)
        for n in range(records):
            ts += 0.0005
            if n % 200 == 0:
                scanner = scanners[(n // 200) % len(scanners)]
                target = servers[(n // 1000) % len(servers)] if scanner.endswith((".1", ".2")) else rng.choice(servers)
                port = rng.randrange(1, 65536)
                out.write(f"{ts:.6f}\tCs{n}\t{scanner}\t{40000 + n % 20000}\t{target}\t{port}\ttcp\t-\t0.000001\t0\t0"
                          f"\tREJ\tT\tT\t0\tSr\t1\t44\t1\t40\t-\n")
                probes += 1
                continue
            source = f"10.{100 + (n % sources) // 65536}.{(n % sources) // 256 % 256}.{n % sources % 256}"
            proto, port, service, state, history, seconds = rng.choice(BENIGN)
            target = servers[rng.randrange(len(servers))]
            if rng.random() < 0.01:
                state, history, service = "REJ", "Sr", "-"
            out.write(f"{ts:.6f}\tC{n}\t{source}\t{rng.randrange(32768, 61000)}\t{target}\t{port}\t{proto}\t{service}"
                      f"\t{seconds}.5\t800\t4200\t{state}\tT\tT\t0\t{history}\t8\t1200\t7\t5000\t-\n")
    return probes


def measure(argv: list[str], source: Path | None = None) -> tuple[float, float, str, float]:
    """Wall seconds, peak RSS (MiB), stderr and CPU seconds (user + system) of one child process
    (importing the project from ``source`` when given)."""
    env = {**os.environ, "PYTHONPATH": str(source)} if source is not None else None
    started = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    assert process.stderr is not None
    stderr = process.stderr.read().decode()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if status != 0:
        sys.exit(f"{argv[:3]} failed: {stderr}")
    return seconds, usage.ru_maxrss / 1024, stderr, usage.ru_utime + usage.ru_stime


def log_arguments(description: str | None) -> argparse.ArgumentParser:
    """The options both throughput benches take: the synthetic log's size, the runs, where to keep the log."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--sources", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3, help="runs of each side; the best time is kept")
    parser.add_argument("--keep", type=Path, help="write the synthetic log here and keep it")
    return parser
