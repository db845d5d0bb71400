"""Throughput benchmark: a synthetic conn.log of ≥ 1 M records through ``replay`` and ``run``, beside a naive loop.

    python bench/replay_bench.py [--records 1000000] [--sources 100000] [--runs 3] [--keep FILE] [--no-follow]

Prints, in one run on the same file: records/s and peak RSS of the naive analytic (split on tab, count
distinct ports per source in a dict of sets), of ``t1046-sensor replay`` and of ``t1046-sensor run``
following a directory to which the log is appended (bench/follow_bench.py says how that is timed), the
ratio of each to the naive loop, the daemon in ``zeek.logs: [notice, t1046, dns]`` mode, and the checkpoint
commit at the number of sources the log leaves. Each side runs ``--runs`` times, alternately, and the best
time is kept: other work on the machine only ever slows a run down.

It also prints a floor: reading and splitting the lines alone, and the random walk's bare bookkeeping (find
the source, touch its recency, check and note the target, move the ratio) timed alone over rows split in
memory beforehand.
"""

from __future__ import annotations

import math
import sys
import tempfile
from pathlib import Path

from benchlog import FLOOR, NAIVE, READ_SPLIT, log_arguments, measure, write_log
from follow_bench import FollowRun, commit_figures, follow_once, report_commit, report_detections, report_follow


def main() -> None:
    parser = log_arguments(__doc__)
    parser.add_argument("--no-follow", action="store_true", help="replay and the naive loop only")
    parser.add_argument("--compare", type=Path, metavar="DIR",
                        help="another copy of the project's source (git archive COMMIT | tar -x -C DIR) whose "
                             "replay and run are measured alongside")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        path = args.keep or Path(scratch) / "conn.log"
        probes = write_log(path, args.records, args.sources)
        size = path.stat().st_size / (1 << 20)
        print(f"conn.log: {args.records} records ({probes} scan probes from 5 scanners), "
              f"{args.sources} distinct benign sources, {size:.0f} MiB")
        naive = replay = floor = read_split = naive_cpu = replay_cpu = math.inf
        naive_rss = replay_rss = 0.0
        follows: list[FollowRun] = []
        other = other_cpu = math.inf
        other_follows: list[FollowRun] = []
        for _ in range(args.runs):
            if args.compare is not None:
                seconds, _, _, cpu = measure([sys.executable, "-m", "sensor", "replay", str(path)], args.compare)
                other, other_cpu = min(other, seconds), min(other_cpu, cpu)
                if not args.no_follow:
                    other_follows.append(follow_once(path, args.records, source=args.compare))
            seconds, rss, _, cpu = measure([sys.executable, "-c", NAIVE, str(path)])
            naive, naive_rss, naive_cpu = min(naive, seconds), max(naive_rss, rss), min(naive_cpu, cpu)
            seconds, rss, _, cpu = measure([sys.executable, "-m", "sensor", "replay", str(path)])
            replay, replay_rss, replay_cpu = min(replay, seconds), max(replay_rss, rss), min(replay_cpu, cpu)
            if not args.no_follow:
                follows.append(follow_once(path, args.records))
            floor = min(floor, float(measure([sys.executable, "-c", FLOOR, str(path)])[2]))
            read_split = min(read_split, float(measure([sys.executable, "-c", READ_SPLIT, str(path)])[2]))
        print(f"naive baseline:  {args.records / naive:>10,.0f} records/s  peak RSS {naive_rss:6.0f} MiB; "
              f"CPU {naive_cpu / args.records * 1e6:.2f} us per record")
        print(f"replay:          {args.records / replay:>10,.0f} records/s  peak RSS {replay_rss:6.0f} MiB; "
              f"CPU {replay_cpu / args.records * 1e6:.2f} us per record")
        print(f"replay / naive throughput: {naive / replay:.2f}x (by CPU time: {naive_cpu / replay_cpu:.2f}x)")
        if args.compare is not None:
            print(f"replay of {args.compare}: {args.records / other:>10,.0f} records/s; CPU "
                  f"{other_cpu / args.records * 1e6:.2f} us per record; / naive {naive / other:.2f}x "
                  f"(by CPU time: {naive_cpu / other_cpu:.2f}x)")
        if follows:
            fastest = min(follows, key=lambda run: run.seconds)
            report_follow(FollowRun(fastest.seconds, min(run.cpu for run in follows),
                                    max(run.rss_mib for run in follows), max(run.rss_children_mib for run in follows),
                                    fastest.checkpoints, fastest.alerts), args.records, naive, naive_cpu)
            if other_follows:
                print(f"  the same for {args.compare}:")
                report_follow(min(other_follows, key=lambda run: run.seconds), args.records, naive, naive_cpu)
            report_detections(follow_once(path, args.records, detections_only=True), args.records)
        report_commit(commit_figures(path))
        per = {name: seconds / args.records * 1e6 for name, seconds in
               (("naive", naive), ("read_split", read_split), ("walk", floor))}
        print(f"floor: reading and splitting the lines {per['read_split']:.2f} us per record, the random walk's bare "
              f"bookkeeping on rows split beforehand {per['walk']:.2f} us;\n       together "
              f"{per['read_split'] + per['walk']:.2f} us against {per['naive']:.2f} us for the whole naive loop")


if __name__ == "__main__":
    main()
