"""``replay --engine dask``: the same parts on Dask's distributed scheduler say byte for byte what one process says.

One local cluster of two worker processes (Dask's ``LocalCluster``, started here, stopped at the end) serves every
log directory of tests/data and a bench-shaped log, its address given as ``--scheduler`` would give a real
cluster's; the command's own local cluster (no ``--scheduler``) is run once, as a person runs it.
"""

from __future__ import annotations

import io
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sensor.config.load import default_config
from sensor.replay import replay
from tests.test_golden import DATA, DIRECTORIES, replayed
from tests.test_workers import bench_log, in_workers

distributed = pytest.importorskip("distributed")
__all__ = ["bench_log"]


@pytest.fixture(scope="module")
def scheduler() -> Iterator[str]:
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        yield cluster.scheduler_address


def on_dask(paths: list[Path], address: str) -> bytes:
    out = io.BytesIO()
    replay(paths, default_config(), out, workers=2, engine="dask", scheduler=address)
    return out.getvalue()


def test_every_log_directory_on_a_cluster_as_in_one_process(scheduler: str) -> None:
    for directory in DIRECTORIES:
        assert on_dask([directory], scheduler) == replayed(directory), directory


def test_the_bench_log_on_a_cluster_as_in_one_process(bench_log: Path, scheduler: str) -> None:
    assert on_dask([bench_log], scheduler) == in_workers([bench_log], 1)[0]


def test_the_command_starts_and_stops_a_local_cluster_of_its_own() -> None:
    directory = DATA / "captures" / "s2_horizontal_syn" / "zeek"
    found = subprocess.run([sys.executable, "-m", "sensor", "replay", str(directory), "--engine", "dask",
                            "--workers", "2"], capture_output=True, timeout=300, check=True)
    assert found.stdout == replayed(directory)
    assert b"replay: " in found.stderr


def test_a_scheduler_without_the_engine_is_a_usage_error() -> None:
    found = subprocess.run([sys.executable, "-m", "sensor", "replay", str(DATA / "slow"), "--scheduler",
                            "tcp://127.0.0.1:8786"], capture_output=True, text=True, timeout=60)
    assert found.returncode == 2
    assert found.stderr.strip() == "t1046-sensor: error: --scheduler is a Dask cluster's: give --engine dask with it"
