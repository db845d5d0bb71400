"""The checkpoint written by a forked child: committed by the daemon's rename only, failures reported, and
when the daemon's loop commits."""

from __future__ import annotations

import asyncio
from ipaddress import ip_address
from pathlib import Path

import pytest

from sensor.config import DetectionConfig
from sensor.daemon.checkpoint import (
    Checkpoint,
    CheckpointWriter,
    detection_digest,
    load_checkpoint,
    remove_leftovers,
    save_checkpoint,
)
from sensor.daemon.run import commit_due
from sensor.detect.correlator import Correlator
from sensor.observations import ConnAttempt, Outcome, Transport
from sensor.zeek.position import StreamPosition


def _probe(port: int) -> ConnAttempt:
    return ConnAttempt(ts=2.0, source=ip_address("10.0.0.66"), source_port=40000, target=ip_address("10.0.0.1"),
                       target_port=port, transport=Transport.TCP, outcome=Outcome.REJECTED)


def _checkpoint(seq: int, correlator: Correlator) -> Checkpoint:
    detection = DetectionConfig()
    return Checkpoint(seq=seq, detection=detection_digest(detection),
                      streams={"conn": StreamPosition("conn.log", 7, 4096, "ab" * 32, 512, 1.0)},
                      done=frozenset(), correlator=correlator, clock=float(seq))


def test_the_child_writes_the_snapshot_and_only_the_daemon_commits_it(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint"
    correlator = Correlator(DetectionConfig())
    save_checkpoint(path, _checkpoint(1, correlator))

    async def write() -> OSError | None:
        writer = CheckpointWriter(path, _checkpoint(2, correlator))
        for port in range(1, 200):  # changed after the fork: not in this checkpoint
            correlator.observe(_probe(port), 2.0)
        loaded = load_checkpoint(path, DetectionConfig())
        assert loaded is not None and loaded.seq == 1, "nothing is committed before the loop ran the commit"
        return await writer.done

    assert asyncio.run(write()) is None
    loaded = load_checkpoint(path, DetectionConfig())
    assert loaded is not None and loaded.seq == 2 and loaded.clock == 2.0
    assert loaded.streams["conn"].offset == 4096
    assert loaded.correlator.tracked_sources == 0, "the copy-on-write snapshot is the state at the fork"
    assert correlator.tracked_sources == 1
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint"], "no temporary file is left"


def test_a_failed_write_is_reported_and_leaves_the_old_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint"
    save_checkpoint(path, _checkpoint(1, Correlator(DetectionConfig())))
    (tmp_path / f".checkpoint.{999999}.tmp").write_bytes(b"left by a crash")
    blocked = tmp_path / "gone" / "checkpoint"

    async def write() -> OSError | None:
        return await CheckpointWriter(blocked, _checkpoint(2, Correlator(DetectionConfig()))).done

    error = asyncio.run(write())
    assert isinstance(error, OSError) and "No such file or directory" in str(error)
    loaded = load_checkpoint(path, DetectionConfig())
    assert loaded is not None and loaded.seq == 1
    remove_leftovers(path)
    assert [p.name for p in tmp_path.iterdir() if p.is_file()] == ["checkpoint"], "a crash's leftovers are removed"


def test_a_writer_needs_a_running_loop(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError):
        CheckpointWriter(tmp_path / "checkpoint", _checkpoint(1, Correlator(DetectionConfig())))


@pytest.mark.parametrize(("since", "cost", "flags", "due"), [
    (0.9, 0.0, {"live": True}, False),
    (1.0, 0.0, {"live": True}, True),
    (1.0, 0.0, {"unsaved": True}, True),
    (1.0, 0.0, {}, False),
    (1e9, 0.0, {"catching_up": True}, False),
    (4.9, 0.0, {"unsaved": True, "catching_up": True}, False),
    (5.0, 0.0, {"unsaved": True, "catching_up": True}, True),
    (1.0, 0.0, {"live": True, "unsaved": True, "catching_up": True}, True),
    (0.2, 0.0, {"acks": True, "catching_up": True}, True),
    (0.19, 0.0, {"acks": True}, False),
    (1.0, 0.3, {"live": True}, False),
    (1.5, 0.3, {"live": True}, True),
    (1.4, 0.3, {"acks": True}, False),
    (6.0, 1.0, {"unsaved": True, "catching_up": True}, True),
])
def test_commits_come_every_second_every_five_while_catching_up_and_spaced_by_their_cost(
        since: float, cost: float, flags: dict[str, bool], due: bool) -> None:
    given = {"live": False, "unsaved": False, "acks": False, "catching_up": False} | flags
    assert commit_due(since, cost, **given) is due
