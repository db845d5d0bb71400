"""Files the daemon creates have exact modes whatever the umask: the file sink's alerts 0600, or 0640 with the
configured group; the sink never writes through a planted link."""

from __future__ import annotations

import asyncio
import grp
import os
import stat
from pathlib import Path

import pytest

from sensor.alerts.alert import Alert
from sensor.config import OutputConfig
from sensor.outputs.build import build_sinks
from sensor.outputs.settings import SinkConfigError

from .conftest import config_with


def _deliver(tmp_path: Path, alerts: list[Alert], **settings: object) -> Path:
    path = tmp_path / "elsewhere" / "alerts.jsonl"
    (sink,) = build_sinks(config_with(tmp_path, OutputConfig("file", settings={"path": str(path), **settings})))

    async def deliver() -> None:
        sink.start()
        sink.accept(1, alerts, "sensor-test")
        assert await sink.settled(len(alerts), 30)
        await sink.drain(10)

    asyncio.run(deliver())
    return path


@pytest.mark.parametrize("umask", [0o022, 0o000])
def test_the_alerts_file_outside_state_dir_is_private_whatever_the_umask(
        tmp_path: Path, real_alerts: list[Alert], umask: int) -> None:
    previous = os.umask(umask)
    try:
        path = _deliver(tmp_path, real_alerts[:2])
    finally:
        os.umask(previous)
    assert len(path.read_text().splitlines()) == 2
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for made in (tmp_path / "state").rglob("*"):
        assert stat.S_IMODE(made.stat().st_mode) in (0o600, 0o700), made


def test_a_configured_group_may_read_the_alerts_file(tmp_path: Path, real_alerts: list[Alert]) -> None:
    group = grp.getgrgid(os.getegid()).gr_name
    previous = os.umask(0o077)
    try:
        path = _deliver(tmp_path, real_alerts[:1], group=group)
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640 and path.stat().st_gid == os.getegid()


def test_an_unknown_group_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(SinkConfigError, match=r"outputs\[0\]\.group: no group 'no-such-group-t1046'"):
        build_sinks(config_with(tmp_path, OutputConfig("file", settings={"path": "a.jsonl",
                                                                          "group": "no-such-group-t1046"})))


def test_the_file_sink_does_not_write_through_a_planted_link(tmp_path: Path, real_alerts: list[Alert]) -> None:
    victim = tmp_path / "victim"
    victim.write_text("untouched\n")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "alerts.jsonl").symlink_to(victim)
    (sink,) = build_sinks(config_with(tmp_path, OutputConfig(
        "file", settings={"path": str(tmp_path / "elsewhere" / "alerts.jsonl"), "retry_max_seconds": 1})))

    async def attempt() -> None:
        sink.start()
        sink.accept(1, real_alerts[:1], "sensor-test")
        await sink.settled(1, 2)
        await sink.drain(1)

    asyncio.run(attempt())
    assert victim.read_text() == "untouched\n"
    assert sink.last_error is not None and "Too many levels of symbolic links" in sink.last_error
