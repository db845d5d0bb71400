"""The spooled sink with local destinations: stdout and the JSONL file get every alert once, in their format,
across restarts and crashes; a full spool drops loudly; bad settings are named and secrets never shown."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from sensor.alerts.alert import Alert
from sensor.config import OutputConfig, SensorConfig
from sensor.metrics import Metrics
from sensor.outputs.build import build_sinks
from sensor.outputs.settings import SinkConfigError
from sensor.outputs.sink import SpooledSink
from tests.alertcheck import validate_alert


def _config(tmp_path: Path, *outputs: OutputConfig) -> SensorConfig:
    return SensorConfig(name="sensor-test", state_dir=tmp_path / "state", outputs=outputs)


async def _deliver(sinks: list[SpooledSink], alerts: list[Alert], *, batches: int = 3, timeout: float = 30) -> None:
    for sink in sinks:
        sink.start()
    step = max(1, len(alerts) // batches)
    for seq, start in enumerate(range(0, len(alerts), step), start=1):
        for sink in sinks:
            sink.accept(seq, alerts[start:start + step], "sensor-test")
    for sink in sinks:
        assert await sink.drain(timeout)


def _lines(path: Path) -> list[dict[str, Any]]:
    return [validate_alert(json.loads(line)) for line in path.read_text().splitlines()]


def test_stdout_and_file_get_every_alert_once_in_their_format(tmp_path: Path, real_alerts: list[Alert]) -> None:
    out = io.BytesIO()
    config = _config(tmp_path, OutputConfig("stdout"), OutputConfig("file", "ocsf", {"path": "alerts.jsonl"}))
    sinks = build_sinks(config, stdout=out)
    asyncio.run(_deliver(sinks, real_alerts))
    ids = [alert.event_id for alert in real_alerts]
    assert [validate_alert(json.loads(line))["event"]["id"] for line in out.getvalue().splitlines()] == ids
    ocsf = _lines(tmp_path / "state" / "alerts.jsonl")
    assert [doc["metadata"]["uid"] for doc in ocsf] == ids
    assert all(doc["class_uid"] == 2004 for doc in ocsf)


def test_a_committed_batch_handed_again_after_restart_is_not_repeated(tmp_path: Path,
                                                                     real_alerts: list[Alert]) -> None:
    config = _config(tmp_path, OutputConfig("file", settings={"path": "alerts.jsonl"}))
    asyncio.run(_deliver(build_sinks(config), real_alerts, batches=2))
    asyncio.run(_deliver(build_sinks(config), real_alerts, batches=2))
    assert len(_lines(tmp_path / "state" / "alerts.jsonl")) == len(real_alerts)


def test_file_sink_rotates_by_size_and_keeps_the_newest_files(tmp_path: Path, real_alerts: list[Alert]) -> None:
    config = _config(tmp_path, OutputConfig("file", settings={"path": "alerts.jsonl", "max_bytes": 3000, "keep": 2,
                                                                 "batch_size": 1}))
    asyncio.run(_deliver(build_sinks(config), real_alerts, batches=len(real_alerts)))
    state = tmp_path / "state"
    files = [state / "alerts.jsonl.2", state / "alerts.jsonl.1", state / "alerts.jsonl"]
    assert all(path.exists() for path in files) and not (state / "alerts.jsonl.3").exists()
    kept = [doc["event"]["id"] for path in files for doc in _lines(path)]
    ids = [alert.event_id for alert in real_alerts]
    assert kept == ids[len(ids) - len(kept):], "the newest alerts, in order, none torn or repeated"
    assert all(path.stat().st_size < 3000 + 4096 for path in files[:2]), "each full file was closed near max_bytes"


def test_file_sink_trims_a_write_the_crash_left_uncounted(tmp_path: Path, real_alerts: list[Alert]) -> None:
    config = _config(tmp_path, OutputConfig("file", settings={"path": "alerts.jsonl"}))
    first, second = real_alerts[:4], real_alerts[4:]
    asyncio.run(_deliver(build_sinks(config), first, batches=1))

    async def crash_after_write() -> None:
        (sink,) = build_sinks(config)
        sink.accept(2, second, "sensor-test")
        records, _end = sink.spool.read(1000)
        await sink.transport.send(records)
        sink.spool.close()

    asyncio.run(crash_after_write())
    assert len(_lines(tmp_path / "state" / "alerts.jsonl")) == len(real_alerts)
    asyncio.run(_deliver(build_sinks(config), [], batches=1))
    ids = [doc["event"]["id"] for doc in _lines(tmp_path / "state" / "alerts.jsonl")]
    assert ids == [alert.event_id for alert in real_alerts]


def test_file_sink_trims_even_its_very_first_write_the_crash_left_uncounted(tmp_path: Path,
                                                                            real_alerts: list[Alert]) -> None:
    """A crash after the first batch ever was written, before any cursor said so: that batch is not repeated."""
    config = _config(tmp_path, OutputConfig("file", settings={"path": "alerts.jsonl"}))

    async def crash_after_write() -> None:
        (sink,) = build_sinks(config)
        sink.accept(1, real_alerts, "sensor-test")
        records, _end = sink.spool.read(1000)
        await sink.transport.send(records)
        sink.spool.close()

    asyncio.run(crash_after_write())
    assert len(_lines(tmp_path / "state" / "alerts.jsonl")) == len(real_alerts)
    asyncio.run(_deliver(build_sinks(config), [], batches=1))
    ids = [doc["event"]["id"] for doc in _lines(tmp_path / "state" / "alerts.jsonl")]
    assert ids == [alert.event_id for alert in real_alerts], "each alert once"


def test_full_spool_drops_the_oldest_loudly(tmp_path: Path, real_alerts: list[Alert],
                                            caplog: pytest.LogCaptureFixture) -> None:
    metrics = Metrics()
    output = OutputConfig("http", settings={"url": "http://127.0.0.1:9/", "spool_max_bytes": 4096, "name": "siem"})
    (sink,) = build_sinks(_config(tmp_path, output), metrics=metrics)
    with caplog.at_level(logging.ERROR):
        for seq, alert in enumerate(real_alerts, start=1):
            sink.accept(seq, [alert], "sensor-test")
    assert sink.spool.pending_bytes <= 4096
    dropped = metrics.registry.get_sample_value("t1046_spool_dropped_total", {"sink": "siem"})
    assert dropped is not None and dropped > 0
    assert "SPOOL FULL" in caplog.text
    records, _ = sink.spool.read(1000)
    assert records[-1].event_id == real_alerts[-1].event_id
    assert len(records) + int(dropped) == len(real_alerts)
    sink.close()


def test_bad_settings_are_named_and_secrets_never_shown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cases = [
        (OutputConfig("http", settings={"url": "ftp://x"}), "outputs[0].url"),
        (OutputConfig("http", settings={"url": "http://x", "kind": "splunk"}), "outputs[0].kind"),
        (OutputConfig("http", settings={"url": "http://x", "token_env": "NOPE_NOT_SET"}), "outputs[0].token_env"),
        (OutputConfig("syslog", settings={"host": "x", "protocol": "sctp"}), "outputs[0].protocol"),
        (OutputConfig("file", settings={"path": "a", "colour": "red"}), "outputs[0].colour"),
        (OutputConfig("http", settings={"url": "http://x", "headers": {"Authorization": "Bearer x"}}),
         "outputs[0].headers"),
    ]
    for output, where in cases:
        with pytest.raises(SinkConfigError, match=rf"^{where.replace('[', '.').replace(']', '.')}"):
            build_sinks(_config(tmp_path, output))
    monkeypatch.setenv("TOKEN", "top-secret-value")
    (sink,) = build_sinks(_config(tmp_path, OutputConfig("http", settings={"url": "http://x", "token_env": "TOKEN"})))
    assert "top-secret-value" not in repr(sink.transport) + repr(vars(sink))
    sink.close()
