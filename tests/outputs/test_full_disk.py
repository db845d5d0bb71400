"""A full disk under the sinks: a tmpfs of 256 KiB (the ``disk`` fixture) that the test fills up (root only).

The disk holds the state directory (spools, cursors) and the alert file. While it is full, alerts are
held in memory and nothing is torn; once there is room again, every alert reaches the file exactly once,
in order.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import os
import re
from pathlib import Path

import pytest

from sensor.alerts.alert import Alert
from sensor.config import OutputConfig, SensorConfig
from sensor.metrics import Metrics
from sensor.outputs.build import build_sinks
from sensor.outputs.sink import SpooledSink
from sensor.outputs.transport import DeliveryError
from tests.alertcheck import validate_alert
from tests.conftest import fill_disk
from tests.waiting import wait_for_async

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")


def _file_lines(path: Path) -> list[str]:
    text = path.read_text() if path.exists() else ""
    assert not text or text.endswith("\n"), "no torn line"
    return [validate_alert(json.loads(line))["event"]["id"] for line in text.splitlines()]


def test_alerts_wait_in_memory_for_room_and_then_reach_the_file_once_in_order(disk: Path,
                                                                               real_alerts: list[Alert]) -> None:
    config = SensorConfig(name="sensor-test", state_dir=disk / "state",
                          outputs=(OutputConfig("file", settings={"path": "alerts.jsonl"}),))
    output = disk / "state" / "alerts.jsonl"
    alerts = real_alerts[:12]

    async def main() -> None:
        (sink,) = build_sinks(config)
        assert isinstance(sink, SpooledSink)
        sink.start()
        sink.accept(1, alerts[:4], "sensor-test")
        await wait_for_async(lambda: _file_lines(output) == [a.event_id for a in alerts[:4]], 20, "the first batch")
        filler = fill_disk(disk)
        os.truncate(filler, filler.stat().st_size - 4096)  # room for part of a batch only
        spooled = sink.spool.size
        sink.accept(2, alerts[4:8], "sensor-test")
        sink.accept(3, alerts[8:], "sensor-test")
        assert sink.spool.size == spooled, "a full disk leaves no torn record in the spool"
        filler.unlink()
        await wait_for_async(lambda: len(_file_lines(output)) == len(alerts), 20, "the held alerts delivered")
        assert await sink.drain(10)

    asyncio.run(asyncio.wait_for(main(), 60))
    assert _file_lines(output) == [alert.event_id for alert in alerts]


def test_a_write_that_the_full_disk_cut_short_is_taken_back(disk: Path, real_alerts: list[Alert]) -> None:
    config = SensorConfig(name="sensor-test", state_dir=disk / "state",
                          outputs=(OutputConfig("file", settings={"path": "alerts.jsonl"}),))
    output = disk / "state" / "alerts.jsonl"

    async def main() -> None:
        (sink,) = build_sinks(config)
        assert isinstance(sink, SpooledSink)
        sink.accept(1, real_alerts, "sensor-test")  # spooled while there is room
        records, end = sink.spool.read(1000)
        filler = fill_disk(disk)
        filler_size = filler.stat().st_size
        os.truncate(filler, filler_size - 4096)  # room for part of the batch only
        with pytest.raises(DeliveryError, match=rf"^file {re.escape(str(output))}: \[Errno {errno.ENOSPC}\] "):
            await sink.transport.send(records)
        assert not output.exists() or output.stat().st_size == 0, "the part written was taken back"
        filler.unlink()
        await sink.transport.send(records)
        sink.spool.advance(end)
        await sink.transport.close()
        sink.spool.close()

    asyncio.run(asyncio.wait_for(main(), 60))
    assert _file_lines(output) == [alert.event_id for alert in real_alerts]


def test_what_waits_in_memory_for_a_full_disk_is_bounded_and_drops_the_oldest_loudly(
        disk: Path, real_alerts: list[Alert], caplog: pytest.LogCaptureFixture) -> None:
    output = OutputConfig("http", settings={"url": "http://127.0.0.1:9/", "spool_max_bytes": 4096, "name": "siem"})
    metrics = Metrics()
    (sink,) = build_sinks(SensorConfig(name="sensor-test", state_dir=disk / "state", outputs=(output,)),
                          metrics=metrics)
    fill_disk(disk)
    with caplog.at_level(logging.ERROR):
        for seq, alert in enumerate(real_alerts * 3, start=1):
            sink.accept(seq, [alert], "sensor-test")
    assert 0 < sink.held_bytes <= 4096
    dropped = metrics.registry.get_sample_value("t1046_spool_dropped_total", {"sink": "siem"})
    assert dropped == len(real_alerts) * 3 - sink.held_alerts > 0
    assert "held in memory for a full disk dropped" in caplog.text
    assert caplog.text.count("cannot spool") == 1, "one ERROR line for the whole stretch"
    sink.close()


def test_alerts_delivered_one_by_one_while_the_disk_is_full_are_all_kept(disk: Path,
                                                                          real_alerts: list[Alert]) -> None:
    config = SensorConfig(name="sensor-test", state_dir=disk / "state",
                          outputs=(OutputConfig("file", settings={"path": "alerts.jsonl"}),))
    output = disk / "state" / "alerts.jsonl"
    alerts = real_alerts[:3]

    async def main() -> None:
        (sink,) = build_sinks(config)
        filler = fill_disk(disk)
        for alert in alerts:  # the standalone honeyports and mdns commands hand alerts over like this
            sink.deliver(alert, "sensor-test")
        assert sink.held_alerts == len(alerts)
        filler.unlink()
        await wait_for_async(lambda: len(_file_lines(output)) == len(alerts), 20, "the held alerts delivered")
        assert await sink.drain(10)

    asyncio.run(asyncio.wait_for(main(), 60))
    assert _file_lines(output) == [alert.event_id for alert in alerts]
