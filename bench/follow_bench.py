"""Follower benchmark: ``t1046-sensor run`` following a log directory to which the bench's conn.log is appended.

    python bench/follow_bench.py [--records 1000000] [--sources 100000] [--runs 3] [--keep FILE]

The daemon starts on a directory whose conn.log holds only the header. Once it serves its metrics and has
written its first checkpoint, the records are appended as fast as the disk takes them, and the time is
taken until the daemon's own ``t1046_records_read_total{log="conn"}`` counts every record: the counter
moves after a batch has gone through the pipeline, so by then every record has been judged. Printed beside
the naive loop on the same file (best of ``--runs`` each), with the daemon's CPU time and peak RSS.

Then, in ``zeek.logs: [notice, t1046, dns]`` mode (the package's detections only), the same conn.log is
appended together with a t1046.log of the scanners' detections: the time until every t1046 line is read and
the daemon's CPU time for the whole append.

Last, the checkpoint commit with the correlator a 100 000-source log leaves: the longest stall of the
daemon's event loop during ``Daemon._commit`` (measured by a task that wakes every millisecond), the time
until the checkpoint is durable, and its size.
"""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from benchlog import NAIVE, log_arguments, measure, write_log

T1046_HEADER = (
    "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tt1046\n"
    "#open\t2026-11-28-00-00-00\n"
    "#fields\tts\tscanner\tkind\tn_targets\tn_ports\tn_probes\tn_failed\ttargets\tports\tfirst_seen\tlast_seen"
    "\tuids\tmdns_query\tmdns_qtype\tmdns_qu\tmdns_legacy_unicast\tmsg\n"
    "#types\ttime\taddr\tstring\tcount\tcount\tcount\tcount\tvector[addr]\tvector[port]\ttime\ttime"
    "\tvector[string]\tstring\tstring\tbool\tbool\tstring\n"
)
DETECTIONS_PER_SCANNER = 20


@dataclass(frozen=True)
class FollowRun:
    """One daemon run over the appended log."""

    seconds: float
    """From the start of the append until the daemon counted every record."""
    cpu: float
    """The daemon's CPU seconds (user + system) from its start until then."""
    rss_mib: float
    """The daemon's own peak RSS."""
    rss_children_mib: float
    """The largest peak RSS of the daemon and the checkpoint writers it forked."""
    checkpoints: int
    alerts: int


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _metrics(port: int) -> dict[str, float]:
    """The daemon's metrics, by series name with labels; empty while it does not answer yet."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return {}
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return math.nan


def _split_header(path: Path) -> tuple[bytes, int]:
    """The log's ``#`` header lines and the offset of its first record."""
    with path.open("rb") as stream:
        head = stream.read(1 << 16)
    offset = 0
    while head.startswith(b"#", offset):
        offset = head.index(b"\n", offset) + 1
    return head[:offset], offset


def _detections() -> bytes:
    """t1046.log lines of the kind the Zeek package writes for the bench log's scanners (each one grows)."""
    lines = []
    for scanner in range(1, 6):
        for update in range(1, DETECTIONS_PER_SCANNER + 1):
            ts = 1795000000.0 + scanner + update
            kind = "port_scan" if scanner <= 2 else "address_scan"
            lines.append(f"{ts:.6f}\t10.66.0.{scanner}\t{kind}\t{update * 5}\t{update * 10}\t{update * 50}\t"
                         f"{update * 50}\t10.20.0.1,10.20.0.2\t22,80,443\t1795000000.000000\t{ts:.6f}\tCs1,Cs2\t"
                         f"-\t-\t-\t-\t10.66.0.{scanner} probed {update * 10} ports\n")
    return "".join(lines).encode()


def follow_once(path: Path, records: int, detections_only: bool = False, source: Path | None = None) -> FollowRun:
    """Start the daemon (of the project's source in ``source`` when given), append the log, wait until it
    counted every record; stop it and measure."""
    header, body_offset = _split_header(path)
    with tempfile.TemporaryDirectory() as scratch:
        base = Path(scratch)
        logs, state = base / "zeek", base / "state"
        logs.mkdir()
        (logs / "conn.log").write_bytes(header)
        if detections_only:
            (logs / "t1046.log").write_text(T1046_HEADER)
        port = _free_port()
        config = base / "sensor.yaml"
        kinds = ", logs: [notice, t1046, dns]" if detections_only else ""
        config.write_text(f"sensor: {{name: bench, state_dir: {state}, metrics_listen: '127.0.0.1:{port}'}}\n"
                          f"zeek: {{log_dir: {logs}{kinds}}}\n"
                          "honeyports: {listen: [], tcp: ''}\n"
                          "outputs:\n  - {type: file, path: alerts.jsonl}\n")
        stderr = (base / "daemon.stderr").open("wb")
        env = {**os.environ, "PYTHONPATH": str(source)} if source is not None else None
        daemon = subprocess.Popen([sys.executable, "-m", "sensor", "run", "--config", str(config)],
                                  stdout=subprocess.DEVNULL, stderr=stderr, env=env)
        try:
            deadline = time.monotonic() + 60
            while not (_metrics(port) and (state / "checkpoint").exists()):
                if daemon.poll() is not None or time.monotonic() > deadline:
                    sys.exit(f"the daemon did not start: {(base / 'daemon.stderr').read_text()}")
                time.sleep(0.05)
            counter, wanted = ('t1046_records_read_total{log="t1046"}', DETECTIONS_PER_SCANNER * 5) \
                if detections_only else ('t1046_records_read_total{log="conn"}', records)
            started = time.perf_counter()
            with path.open("rb") as original, (logs / "conn.log").open("ab") as live:
                original.seek(body_offset)
                while chunk := original.read(8 << 20):
                    live.write(chunk)
            if detections_only:
                with (logs / "t1046.log").open("ab") as live:
                    live.write(_detections())
            while _metrics(port).get(counter, 0.0) < wanted:
                if daemon.poll() is not None:
                    sys.exit(f"the daemon stopped: {(base / 'daemon.stderr').read_text()}")
                time.sleep(0.02)
            seconds = time.perf_counter() - started
            cpu = _cpu_seconds(daemon.pid)
            rss = _peak_rss_mib(daemon.pid)
            checkpoints = int(_metrics(port).get("t1046_checkpoints_total", 0))
            daemon.send_signal(signal.SIGTERM)
            _, status, usage = os.wait4(daemon.pid, 0)
            daemon.returncode = os.waitstatus_to_exitcode(status)
        finally:
            if daemon.poll() is None:
                daemon.kill()
                daemon.wait()
            stderr.close()
        if daemon.returncode != 0:
            sys.exit(f"the daemon failed: {(base / 'daemon.stderr').read_text()}")
        alerts_file = state / "alerts.jsonl"
        alerts = len(alerts_file.read_bytes().splitlines()) if alerts_file.exists() else 0
        return FollowRun(seconds, cpu, rss, usage.ru_maxrss / 1024, checkpoints, alerts)


COMMIT_CHILD = r"""
import asyncio, json, sys, time
from pathlib import Path
from sensor.config import HoneyportsConfig, OutputConfig, SensorConfig
from sensor.metrics import Metrics
from sensor.daemon.run import Daemon
from sensor.zeek.records import to_observation

path, state = Path(sys.argv[1]), Path(sys.argv[2])
config = SensorConfig(name="bench", state_dir=state, honeyports=HoneyportsConfig(listen=(), tcp=()),
                      outputs=(OutputConfig(type="file", settings={"path": "alerts.jsonl"}),))
FIELDS = ("ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "proto", "service")
PICK = ((0, float), (1, str), (2, str), (3, int), (4, str), (5, int), (6, str), (7, str))


async def main() -> None:
    daemon = Daemon(config, None, Metrics(), None)
    daemon._restore()
    correlator = daemon.pipeline.correlator
    next_tick = float("-inf")
    with path.open() as stream:
        for line in stream:
            if line.startswith("#"):
                continue
            parts = line.rstrip("\n").split("\t")
            record = {name: convert(parts[index]) for name, (index, convert) in zip(FIELDS, PICK)}
            record.update(conn_state=parts[11], history=parts[15], resp_pkts=int(parts[18]))
            if record["service"] == "-":
                del record["service"]
            observation = to_observation("conn", record)
            if observation is not None:
                correlator.observe(observation, observation.ts)
                if observation.ts >= next_tick:
                    correlator.tick(observation.ts)
                    next_tick = observation.ts + 60
    daemon.outbox.pending.clear()
    stall = [0.0]

    async def watch() -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            stall[0] = max(stall[0], now - last)
            last = now

    figures = []
    for _ in range(3):
        watcher = asyncio.create_task(watch())
        await asyncio.sleep(0.05)
        stall[0] = 0.0
        seq = daemon.seq
        started = time.perf_counter()
        daemon._dirty = True
        daemon._commit()
        call = time.perf_counter() - started
        while daemon.seq == seq:
            await asyncio.sleep(0.001)
        durable = time.perf_counter() - started
        await asyncio.sleep(0.05)
        watcher.cancel()
        figures.append({"call": call, "stall": stall[0], "durable": durable})
    best = min(figures, key=lambda figure: figure["stall"])
    print(json.dumps({**best, "sources": correlator.tracked_sources,
                      "bytes": (state / "checkpoint").stat().st_size}))


asyncio.run(main())
"""


def commit_figures(path: Path) -> dict[str, float]:
    """The checkpoint commit with the correlator the log leaves, measured in a child process (best of 3)."""
    with tempfile.TemporaryDirectory() as scratch:
        result = subprocess.run([sys.executable, "-c", COMMIT_CHILD, str(path), str(Path(scratch) / "state")],
                                capture_output=True, text=True, check=False)
        if result.returncode != 0:
            sys.exit(f"the commit measurement failed: {result.stderr}")
        figures: dict[str, float] = json.loads(result.stdout.splitlines()[-1])
        return figures


def best_follow(path: Path, records: int, runs: int, detections_only: bool = False) -> FollowRun:
    """The fastest of ``runs`` daemon runs (the largest RSS seen in any of them)."""
    results = [follow_once(path, records, detections_only) for _ in range(runs)]
    fastest = min(results, key=lambda run: run.seconds)
    return FollowRun(fastest.seconds, min(run.cpu for run in results), max(run.rss_mib for run in results),
                     max(run.rss_children_mib for run in results), fastest.checkpoints, fastest.alerts)


def report_follow(run: FollowRun, records: int, naive: float, naive_cpu: float) -> None:
    rate = records / run.seconds
    print(f"run (follower):  {rate:>10,.0f} records/s  peak RSS {run.rss_mib:6.0f} MiB "
          f"({run.rss_children_mib:.0f} MiB with its checkpoint writers); CPU {run.cpu / records * 1e6:.2f} us "
          f"per record (the daemon's own); {run.checkpoints} checkpoints, {run.alerts} alerts delivered")
    print(f"run / naive throughput:    {naive / run.seconds:.2f}x (by CPU time: {naive_cpu / run.cpu:.2f}x)")


def report_detections(run: FollowRun, records: int) -> None:
    print(f"run, zeek.logs [notice, t1046, dns]: {DETECTIONS_PER_SCANNER * 5} t1046.log lines read "
          f"{run.seconds:.2f} s after the append started; daemon CPU {run.cpu:.2f} s in all while {records} "
          f"conn.log records were appended (not read); peak RSS {run.rss_mib:.0f} MiB")


def report_commit(figures: dict[str, float]) -> None:
    print(f"checkpoint commit at {figures['sources']:,.0f} sources ({figures['bytes'] / (1 << 20):.1f} MiB): "
          f"event loop stalled {figures['stall'] * 1000:.0f} ms at most (the _commit call "
          f"{figures['call'] * 1000:.0f} ms); durable after {figures['durable'] * 1000:.0f} ms")


def main() -> None:
    parser = log_arguments(__doc__)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        path = args.keep or Path(scratch) / "conn.log"
        probes = write_log(path, args.records, args.sources)
        print(f"conn.log: {args.records} records ({probes} scan probes from 5 scanners), "
              f"{args.sources} distinct benign sources, {path.stat().st_size / (1 << 20):.0f} MiB")
        naives = [measure([sys.executable, "-c", NAIVE, str(path)]) for _ in range(args.runs)]
        naive, naive_cpu = min(run[0] for run in naives), min(run[3] for run in naives)
        print(f"naive baseline:  {args.records / naive:>10,.0f} records/s; CPU {naive_cpu / args.records * 1e6:.2f} us "
              "per record")
        report_follow(best_follow(path, args.records, args.runs), args.records, naive, naive_cpu)
        report_detections(best_follow(path, args.records, 1, detections_only=True), args.records)
        report_commit(commit_figures(path))


if __name__ == "__main__":
    main()
