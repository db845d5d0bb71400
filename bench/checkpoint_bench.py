"""Checkpoint benchmark: encoding and decoding the state a 100 000-source conn.log leaves, and its size, in the
checkpoint's format (MessagePack, :mod:`sensor.daemon.stateform`) beside a pickle of the same state.

    python bench/checkpoint_bench.py [--records 1000000] [--sources 100000] [--runs 3] [--keep FILE]

The correlator is the one ``replay`` builds over the bench's synthetic conn.log (``bench/benchlog.py``);
the best of ``--runs`` is printed for each side. A pickle is what checkpoints were before version 2 (they
are never loaded now: unpickling can run code); it is measured for comparison only.
"""

from __future__ import annotations

import pickle
import sys
import tempfile
import time
from pathlib import Path

from benchlog import log_arguments, write_log

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sensor.config import SensorConfig
from sensor.daemon.checkpoint import Checkpoint, _decode, _encode, detection_digest
from sensor.detect.correlator import Correlator
from sensor.detect.watermark import Watermark
from sensor.zeek.logs import MalformedLog, ZeekLog
from sensor.zeek.records import observations, wanted_fields


def _correlator(path: Path, config: SensorConfig) -> Correlator:
    correlator = Correlator(config.detection)
    watermark = Watermark(config.detection.lateness)
    log = ZeekLog(path, MalformedLog())
    for batch in log.batches(wanted_fields):
        found = observations(log, batch)
        for item in [found] if not isinstance(found, list) else found:
            correlator.observe_read(item, watermark)
    return correlator


def _best(runs: int, work: object) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        work()  # type: ignore[operator]
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    arguments = log_arguments(__doc__).parse_args()
    config = SensorConfig()
    with tempfile.TemporaryDirectory() as scratch:
        path = arguments.keep or Path(scratch) / "conn.log"
        if not path.exists():
            write_log(path, arguments.records, arguments.sources)
        correlator = _correlator(path, config)
    checkpoint = Checkpoint(seq=1, detection=detection_digest(config.detection), streams={}, done=frozenset(),
                            correlator=correlator, clock=0.0)
    data = _encode(checkpoint)
    pickled = pickle.dumps(checkpoint, protocol=pickle.HIGHEST_PROTOCOL)
    encode = _best(arguments.runs, lambda: _encode(checkpoint))
    decode = _best(arguments.runs, lambda: _decode(data, config.detection))
    pickle_encode = _best(arguments.runs, lambda: pickle.dumps(checkpoint, protocol=pickle.HIGHEST_PROTOCOL))
    pickle_decode = _best(arguments.runs, lambda: pickle.loads(pickled))
    print(f"checkpoint of {correlator.tracked_sources} sources, {correlator.open_incidents} open incidents "
          f"(best of {arguments.runs}):")
    print(f"  msgpack (v2): write {encode:.3f} s, read {decode:.3f} s, {len(data) / 2**20:.1f} MiB")
    print(f"  pickle (v1):  write {pickle_encode:.3f} s, read {pickle_decode:.3f} s, {len(pickled) / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
