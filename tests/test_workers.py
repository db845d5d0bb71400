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
from tests.test_golden import DATA, DIRECTORIES, replayed

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


def test_report_draws_the_merged_output_and_judges_logs_in_workers(tmp_path: Path) -> None:
    """``report`` of the alerts ``replay --workers 2`` wrote draws what the report of one process's alerts draws;
    ``report --workers 2`` of the logs writes the page one process writes."""
    pytest.importorskip("matplotlib")
    from sensor.report.command import write_report

    directory = DATA / "captures" / "s1_vertical_syn" / "zeek"
    merged, one = tmp_path / "merged.jsonl", tmp_path / "one.jsonl"
    merged.write_bytes(in_workers([directory], 2)[0])
    one.write_bytes(replayed(directory))
    pages = []
    for name, paths, workers in (("merged", [merged, directory], 1), ("one", [one, directory], 1),
                                 ("logs", [directory], 1), ("logs-in-workers", [directory], 2)):
        summary = write_report(paths, default_config(), tmp_path / f"{name}.html", workers=workers)
        assert summary.line().startswith("report: 1 incident from 2 alerts, 1000 probes drawn")
        pages.append((tmp_path / f"{name}.html").read_bytes())
    assert pages[0].replace(b"merged.jsonl", b"one.jsonl") == pages[1]
    assert pages[2] == pages[3]


def test_by_default_large_inputs_are_judged_in_the_machines_cores_and_small_ones_in_this_process(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import sensor.replay as replay_module

    asked: list[int] = []
    real = replay_module.judge_in_workers

    def counting(*args: object, **kwargs: object) -> object:
        asked.append(args[3])  # type: ignore[arg-type]
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(replay_module, "judge_in_workers", counting)
    directory = DATA / "captures" / "s1_vertical_syn" / "zeek"
    out = io.BytesIO()
    replay([directory], default_config(), out)
    assert asked == [], "a few hundred kilobytes: one process"
    monkeypatch.setattr(replay_module, "PARALLEL_BYTES", 1)
    monkeypatch.setattr(replay_module.os, "cpu_count", lambda: 2)
    parted = io.BytesIO()
    replay([directory], default_config(), parted)
    assert asked == [2] and parted.getvalue() == out.getvalue(), "as many processes as cores, the same output"
