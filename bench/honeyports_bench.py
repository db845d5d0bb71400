"""Honeyport throughput: sustained accepted-and-recorded TCP connections per second with 1000 ports open.

The node (HoneyportService on an asyncio reactor, every hit fed to a real Pipeline/Correlator) runs in this
process, pinned to one CPU; client processes pinned to the other CPUs connect and close as fast as they can
to random ports among the 1000 on loopback. After the clients stop, the node drains its accept queues and
the figures are printed: connections made by clients, hits recorded, the difference (must be 0), the
sustained rate and the node's peak RSS.

    python bench/honeyports_bench.py [--seconds 10] [--rate 6000] [--clients 1] [--base-port 30000]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import random
import resource
import selectors
import socket
import time
from multiprocessing.connection import Connection

from twisted.internet.asyncioreactor import AsyncioSelectorReactor

from honeyports.service import HoneyportService, raise_descriptor_limit
from sensor.config import HoneyportsConfig, SensorConfig
from sensor.daemon.pipeline import Pipeline

PORTS = 1000


def client(address: str, ports: list[int], seconds: float, rate: float, cpu: int, report: Connection) -> None:
    """Connect-and-close at ``rate`` per second (0: as fast as possible) for ``seconds``; report the counts."""
    os.sched_setaffinity(0, {cpu})
    selector = selectors.DefaultSelector()
    done = failed = in_flight = 0
    start = time.monotonic()
    deadline = start + seconds
    while time.monotonic() < deadline or in_flight:
        now = time.monotonic()
        allowed = (now - start) * rate if rate else float("inf")
        while in_flight < 256 and now < deadline and done + failed + in_flight < allowed:
            sock = socket.socket()
            sock.setblocking(False)
            sock.connect_ex((address, random.choice(ports)))
            selector.register(sock, selectors.EVENT_WRITE)
            in_flight += 1
        for key, _ in selector.select(0.001 if rate else 1.0):
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            selector.unregister(sock)
            in_flight -= 1
            if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                done += 1
            else:
                failed += 1
            sock.close()
    report.send((done, failed))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=1)
    parser.add_argument("--rate", type=float, default=6000.0,
                        help="offered connections/s per client (0: as fast as the client can)")
    parser.add_argument("--base-port", type=int, default=30000)
    args = parser.parse_args()
    cpus = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpus[0]})
    raise_descriptor_limit()  # for the client's sockets too, before they are made

    ports = list(range(args.base_port, args.base_port + PORTS))
    config = SensorConfig(name="bench", honeyports=HoneyportsConfig(
        listen=("127.0.0.1",), tcp=tuple(ports), max_connections=4000, max_connections_per_source=4000,
        idle_timeout=10.0, read_limit=4096))
    pipeline = Pipeline(config, [])
    loop = asyncio.new_event_loop()
    reactor = AsyncioSelectorReactor(loop)
    service = HoneyportService(config.honeyports, pipeline.observe, "bench", reactor, half_open=True)
    problems = service.start()
    if problems:
        raise SystemExit("cannot start: " + "; ".join(problems))

    context = multiprocessing.get_context("fork")
    pipes, workers = [], []
    for index in range(args.clients):
        receive, send = context.Pipe(duplex=False)
        cpu = cpus[(index + 1) % len(cpus)]
        worker = context.Process(target=client, args=("127.0.0.1", ports, args.seconds, args.rate, cpu, send))
        worker.start()
        pipes.append(receive)
        workers.append(worker)

    async def run() -> float:
        """Seconds from the clients' start to the last hit recorded (accept queues and pending SYNs drained)."""
        start = time.monotonic()
        while any(worker.is_alive() for worker in workers):
            await asyncio.sleep(0.05)
        last, last_change = -1, time.monotonic()
        watcher = service.watcher
        while time.monotonic() - last_change < 1.0 or (watcher is not None and watcher.pending):
            await asyncio.sleep(0.02)
            if service.stats.hits != last:
                last, last_change = service.stats.hits, time.monotonic()
        return last_change - start

    elapsed = loop.run_until_complete(run())
    made = failed = 0
    for pipe in pipes:
        done, bad = pipe.recv()
        made += done
        failed += bad
    loop.run_until_complete(service.stop().asFuture(loop))
    pipeline.close()
    peak_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    stats = service.stats
    recorded = pipeline.correlator.stats.observations
    print(f"ports open:            {PORTS} (TCP, 127.0.0.1, half-open watcher on)")
    print(f"client connections:    {made} ok, {failed} failed, in {args.seconds:.0f} s "
          f"({args.clients} client process(es)); all recorded after {elapsed:.1f} s")
    print(f"hits recorded:         {stats.hits} (correlator observations: {recorded}; "
          f"{stats.half_open} half-open, {stats.refused_source + stats.refused_total} over a cap)")
    print(f"unaccounted touches:   {made - stats.hits}")
    print(f"sustained rate:        {stats.hits / elapsed:.0f} accepted-and-recorded conn/s on one core")
    print(f"node peak RSS:         {peak_rss_mib:.1f} MiB")


if __name__ == "__main__":
    main()
