"""A day of rotated, gzipped logs through ``replay --workers N``, beside the naive loop, in one run.

    python bench/hunt_bench.py [--records 10000000] [--sources 100000] [--files 24] [--workers 1,2,4]
                               [--dask 2] [--runs 1] [--keep DIR]

Writes (or reuses, with ``--keep DIR``) a day of conn logs as zeekctl rotates them -- ``--files`` hourly
``conn.HH:00:00-HH+1:00:00.log.gz`` files, the bench log's records (bench/benchlog.py: benign sources on six
services, 1 % refused, five scanners) spread over 24 hours -- then, on that directory:

- the **naive analytic** (split on tab, distinct ports per source in a dict of sets) reading the gzip files;
- **``t1046-sensor replay DIR --workers N``** for each N given (1 is one process, as before this command had
  workers), its output compared byte for byte with one worker's;
- **``t1046-sensor replay DIR --engine dask --workers N``** on the local cluster the command starts;

and prints records/s, the ratio to one worker and to the naive loop, the peak RSS of the reading process and
of each worker (as they report it, ``-v``), and the fit of ``seconds = serial + parallel / N`` through the
points measured (docs/performance.md, "Partitioned replay").
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import hashlib
import math
import os
import re
import sys
import tempfile
from pathlib import Path

from benchlog import HEADER, measure, write_log

NAIVE_GZ = """
import gzip, pathlib, sys
from collections import defaultdict
ports = defaultdict(set)
for path in sorted(pathlib.Path(sys.argv[1]).glob("conn.*.log.gz")):
    with gzip.open(path, "rt") as stream:
        for line in stream:
            if line.startswith("#"):
                continue
            parts = line.split("\\t")
            ports[parts[2]].add(parts[5])
print(sum(1 for seen in ports.values() if len(seen) > 5), file=sys.stderr)
"""
"""The naive loop of bench/benchlog.py over every gzip file of the directory."""
DAY = 86400.0


def write_day(directory: Path, records: int, sources: int, files: int) -> None:
    """The bench log's records spread over a day, cut into ``files`` rotated, gzipped conn logs."""
    plain = directory / "day.log"
    write_log(plain, records, sources)
    step = DAY / records
    per_file = math.ceil(records / files)
    with plain.open() as stream, contextlib.ExitStack() as files_open:
        out = None
        written = 0
        for line in stream:
            if line.startswith("#"):
                continue
            if written % per_file == 0:
                hour = written // per_file
                name = f"conn.{hour:02d}:00:00-{hour + 1:02d}:00:00.log.gz"
                out = files_open.enter_context(gzip.open(directory / name, "wt", compresslevel=1))
                out.write(HEADER)
            assert out is not None
            out.write(f"{1795000000.0 + written * step:.6f}\t{line.split(chr(9), 1)[1]}")
            written += 1
    plain.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=10_000_000)
    parser.add_argument("--sources", type=int, default=100_000)
    parser.add_argument("--files", type=int, default=24)
    parser.add_argument("--workers", default=f"1,2,{max(2, os.cpu_count() or 1)}",
                        help="numbers of workers to measure (comma-separated)")
    parser.add_argument("--runs", type=int, default=1, help="runs of each; the best is kept")
    parser.add_argument("--dask", type=int, metavar="N", default=2,
                        help="also replay --engine dask --workers N on the command's local cluster (0: not)")
    parser.add_argument("--keep", type=Path, help="write the day of logs here once and reuse it")
    args = parser.parse_args()
    counts = sorted({int(text) for text in args.workers.split(",")})
    with tempfile.TemporaryDirectory() as scratch:
        directory = args.keep or Path(scratch)
        directory.mkdir(parents=True, exist_ok=True)
        if not any(directory.glob("conn.*.log.gz")):
            write_day(directory, args.records, args.sources, args.files)
        size = sum(path.stat().st_size for path in directory.glob("conn.*.log.gz")) / (1 << 20)
        print(f"{args.records} records in {args.files} gzip files ({size:.0f} MiB), {args.sources} benign sources "
              f"and 5 scanners over a day; {os.cpu_count()} cores")
        naive = min(measure([sys.executable, "-c", NAIVE_GZ, str(directory)])[0] for _ in range(args.runs))
        print(f"naive loop:          {args.records / naive:>10,.0f} records/s")
        points: list[tuple[int, float]] = []
        reference = ""
        for workers in counts:
            best, rss, workers_rss, reading_rss = math.inf, 0.0, [0.0], ""
            for _ in range(args.runs):
                out = directory / "alerts.jsonl"
                seconds, peak, stderr, _ = measure(["sh", "-c", f'"$0" -m sensor -v replay "$1" --workers {workers} '
                                                    f'> "$2"', sys.executable, str(directory), str(out)])
                digest = hashlib.sha256(out.read_bytes()).hexdigest()
                reference = reference or digest
                if digest != reference:
                    sys.exit(f"--workers {workers}: the alerts differ from one worker's")
                if seconds < best:
                    best, rss = seconds, peak
                    workers_rss = [float(found) for found in re.findall(r"worker \d+ done, peak RSS (\d+) MiB",
                                                                         stderr)] or [0.0]
                    reading = re.search(r"the reading process's peak RSS (\d+) MiB", stderr)
                    reading_rss = f"{reading.group(1)} MiB the reading process, " if reading else ""
            points.append((workers, best))
            print(f"replay --workers {workers}: {args.records / best:>10,.0f} records/s  "
                  f"{points[0][1] / best:.2f}x one worker, {naive / best:.2f}x the naive loop; peak RSS "
                  f"{rss:.0f} MiB of any process, " + (f"{reading_rss}{max(workers_rss):.0f} MiB per worker at the "
                                                        "most; " if workers > 1 else "") +
                  "alerts identical to one worker's")
        if args.dask:
            out = directory / "alerts.jsonl"
            seconds = min(measure(["sh", "-c", f'"$0" -m sensor replay "$1" --engine dask --workers {args.dask} > "$2"',
                                   sys.executable, str(directory), str(out)])[0] for _ in range(args.runs))
            if hashlib.sha256(out.read_bytes()).hexdigest() != reference:
                sys.exit("--engine dask: the alerts differ from one worker's")
            print(f"replay --engine dask --workers {args.dask} (a local cluster, started and stopped by the command): "
                  f"{args.records / seconds:>10,.0f} records/s  {points[0][1] / seconds:.2f}x one worker; "
                  "alerts identical to one worker's")
        if len(points) >= 2:
            serial, parallel = fit(points)
            print(f"fit: seconds = {serial:.1f} + {parallel:.1f} / N  (per record: {serial / args.records * 1e6:.2f} "
                  f"+ {parallel / args.records * 1e6:.2f} / N us); the speed-up is bounded by "
                  f"{(serial + parallel) / max(serial, 1e-9):.1f}x")


def fit(points: list[tuple[int, float]]) -> tuple[float, float]:
    """Least squares of ``seconds = serial + parallel / N`` through the (N, seconds) measured."""
    xs = [1 / workers for workers, _ in points]
    ys = [seconds for _, seconds in points]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    spread = sum((x - mean_x) ** 2 for x in xs) or 1.0
    parallel = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / spread
    return mean_y - parallel * mean_x, parallel


if __name__ == "__main__":
    main()
