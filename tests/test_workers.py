"""``replay --workers N`` says byte for byte what one process says, in the same order, with the same ids: on every
log directory in tests/data (tests/test_golden.py lists them) and on a log shaped as the bench's (many benign
sources, scanners among them, times a little out of order).

The workers are real processes (spawned, as the command spawns them), fed through pipes, agreeing at each pass
of time through a shared barrier.
"""

from __future__ import annotations

import dataclasses
import io
import random
import sys
from pathlib import Path

import pytest

from sensor.config.load import default_config
from sensor.replay import replay
from tests.test_golden import DIRECTORIES, replayed

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from benchlog import write_log


def in_workers(paths: list[Path], workers: int, **detection: object) -> tuple[bytes, str]:
    config = default_config()
    if detection:
        config = dataclasses.replace(config, detection=dataclasses.replace(config.detection, **detection))
    out = io.BytesIO()
    summary = replay(paths, config, out, workers=workers)
    return out.getvalue(), summary.line().rsplit(" in ", 1)[0]


def test_every_log_directory_in_two_workers_as_in_one() -> None:
    for directory in DIRECTORIES:
        assert in_workers([directory], 2)[0] == replayed(directory), directory


@pytest.fixture(scope="module")
def bench_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """100 000 records of the bench's log, a tenth of them shuffled among their neighbours (Zeek writes a
    connection when it ends), the scanners' probes among them."""
    path = tmp_path_factory.mktemp("bench") / "conn.log"
    write_log(path, 100_000, 5_000)
    lines = path.read_text().splitlines(keepends=True)
    header = [line for line in lines if line.startswith("#")]
    rows = [line for line in lines if not line.startswith("#")]
    shuffler = random.Random(26)
    for index in range(0, len(rows) - 40, 10):
        window = rows[index:index + 40]
        shuffler.shuffle(window)
        rows[index:index + 40] = window
    path.write_text("".join(header + rows))
    return path


@pytest.mark.parametrize("workers", [2, 3])
def test_the_bench_log_in_workers_as_in_one(bench_log: Path, workers: int) -> None:
    one = in_workers([bench_log], 1, idle_timeout=20.0, final_update_after=5.0)
    assert one[0].count(b"\n") >= 5, "the scanners are found"
    assert in_workers([bench_log], workers, idle_timeout=20.0, final_update_after=5.0) == one


def test_past_a_cap_the_logs_are_judged_again_in_one_process(bench_log: Path,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    """With max_sources below the log's sources, the parts cannot know whom one process would evict: the output
    is still one process's (what was written before stays, the rest follows)."""
    one = in_workers([bench_log], 1, max_sources=3000)
    assert in_workers([bench_log], 2, max_sources=3000) == one
    assert "may have reached max_sources; judging the logs again in one process" in caplog.text
