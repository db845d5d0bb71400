"""Sinks: spools that lose nothing and repeat nothing, HTTP (HEC, _bulk) through refusals, rsyslog over TCP/TLS."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from sensor.alerts.alert import Alert
from sensor.config import OutputConfig, SensorConfig
from sensor.metrics import Metrics
from sensor.outputs.sinks import SinkConfigError, SpooledSink, SpoolRecord, build_sinks, rfc5424
from tests.alertcheck import validate_alert
from tests.waiting import wait_for

from .conftest import Certificates, Rsyslog, start_rsyslog


def _config(tmp_path: Path, *outputs: OutputConfig) -> SensorConfig:
    return SensorConfig(name="sensor-test", state_dir=tmp_path / "state", outputs=outputs)


async def _deliver(sinks: list[SpooledSink], alerts: list[Alert], *, batches: int = 3, timeout: float = 30) -> None:
    for sink in sinks:
        sink.start()
    step = max(1, len(alerts) // batches)
    for seq, start in enumerate(range(0, len(alerts), step), start=1):
        for sink in sinks:
            sink.accept(seq, alerts[start:start + step], "sensor-test")
    deadline = asyncio.get_running_loop().time() + timeout
    while any(sink.spool.pending_bytes for sink in sinks):
        assert asyncio.get_running_loop().time() < deadline, "sinks did not deliver in time"
        await asyncio.sleep(0.02)
    for sink in sinks:
        assert await sink.drain(5)


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


class _Receiver(BaseHTTPRequestHandler):
    """Refuses the first ``refuse`` requests with 503, then accepts and records the bodies."""

    server: _Server

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with self.server.lock:
            self.server.requests += 1
            refuse = self.server.requests <= self.server.refuse
            if not refuse:
                self.server.bodies.append((self.path, dict(self.headers), body))
        if refuse:
            self.send_response(503)
            self.end_headers()
            return
        answer = b'{"text":"Success","code":0}'
        if self.path.endswith("/_bulk"):
            items = [{"create": {"status": 201}} for line in body.splitlines()[::2]]
            answer = json.dumps({"errors": False, "items": items}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


class _Server(ThreadingHTTPServer):
    def __init__(self, refuse: int) -> None:
        super().__init__(("127.0.0.1", 0), _Receiver)
        self.lock = threading.Lock()
        self.refuse = refuse
        self.requests = 0
        self.bodies: list[tuple[str, dict[str, str], bytes]] = []


@pytest.fixture
def receiver() -> Iterator[_Server]:
    server = _Server(refuse=3)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_hec_receives_every_alert_exactly_once_after_refusals(tmp_path: Path, real_alerts: list[Alert],
                                                             receiver: _Server,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEC_TOKEN", "s3cret-hec-token")
    url = f"http://127.0.0.1:{receiver.server_port}"
    output = OutputConfig("http", settings={"url": url, "kind": "hec", "token_env": "HEC_TOKEN", "index": "sec",
                                            "batch_size": 5, "retry_max_seconds": 1})
    asyncio.run(_deliver(build_sinks(_config(tmp_path, output)), real_alerts))
    assert receiver.requests > receiver.refuse
    ids = []
    for path, headers, body in receiver.bodies:
        assert path == "/services/collector/event"
        assert headers["Authorization"] == "Splunk s3cret-hec-token"
        for event in body.decode().split("\n"):
            document = json.loads(event)
            assert document["index"] == "sec" and document["sourcetype"] == "t1046:alert"
            ids.append(validate_alert(document["event"])["event"]["id"])
    assert sorted(ids) == sorted(alert.event_id for alert in real_alerts)
    assert len(set(ids)) == len(ids)


def test_bulk_receives_every_alert_exactly_once_after_refusals(tmp_path: Path, real_alerts: list[Alert],
                                                              receiver: _Server) -> None:
    secret = tmp_path / "es.key"
    secret.write_text("api-key-from-file\n")
    url = f"http://127.0.0.1:{receiver.server_port}/alerts-t1046"
    output = OutputConfig("http", settings={"url": url, "kind": "bulk", "token_file": str(secret),
                                            "batch_size": 7, "retry_max_seconds": 1})
    asyncio.run(_deliver(build_sinks(_config(tmp_path, output)), real_alerts))
    ids = []
    for path, headers, body in receiver.bodies:
        assert path == "/alerts-t1046/_bulk"
        assert headers["Authorization"] == "ApiKey api-key-from-file"
        assert headers["Content-Type"] == "application/x-ndjson"
        lines = body.decode().splitlines()
        for action, document in zip(lines[::2], lines[1::2], strict=True):
            assert json.loads(action)["create"]["_id"] == json.loads(document)["event"]["id"]
            ids.append(validate_alert(json.loads(document))["event"]["id"])
    assert sorted(ids) == sorted(alert.event_id for alert in real_alerts)
    assert len(set(ids)) == len(ids)


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


def test_rfc5424_message_shape(real_alerts: list[Alert]) -> None:
    alert = real_alerts[0]
    record = SpoolRecord(1, alert.event_id, 0.5, 4, b'{"a":1}')
    assert rfc5424(record, 16, "host-1", "t1046-sensor") == (
        f'<130>1 1970-01-01T00:00:00.500000Z host-1 t1046-sensor - alert [t1046@32473 event_id="{alert.event_id}"] '
        '{"a":1}').encode()


@pytest.fixture
def rsyslog_tcp(tmp_path: Path) -> Iterator[Rsyslog]:
    yield from start_rsyslog(tmp_path / "rsyslog-tcp", None)


@pytest.fixture
def rsyslog_tls(tmp_path: Path, certificates: Certificates) -> Iterator[Rsyslog]:
    yield from start_rsyslog(tmp_path / "rsyslog-tls", certificates)


def _check_rsyslog(received: Rsyslog, alerts: list[Alert]) -> None:
    wait_for(lambda: received.output.exists() and len(received.output.read_text().splitlines()) >= len(alerts),
             20, "rsyslog to write every message")
    ids = []
    for line in received.output.read_text().splitlines():
        version, app, msgid, structured, message = line.split("|", 4)
        assert (version, app, msgid) == ("1", "t1046-sensor", "alert")
        document = validate_alert(json.loads(message))
        assert structured == f'[t1046@32473 event_id="{document["event"]["id"]}"]'
        ids.append(document["event"]["id"])
    assert sorted(ids) == sorted(alert.event_id for alert in alerts)


def test_rsyslog_receives_rfc5424_over_tcp(tmp_path: Path, real_alerts: list[Alert], rsyslog_tcp: Rsyslog) -> None:
    output = OutputConfig("syslog", settings={"host": "127.0.0.1", "port": rsyslog_tcp.port, "protocol": "tcp"})
    asyncio.run(_deliver(build_sinks(_config(tmp_path, output)), real_alerts))
    _check_rsyslog(rsyslog_tcp, real_alerts)


def test_rsyslog_receives_rfc5424_over_tls(tmp_path: Path, real_alerts: list[Alert], rsyslog_tls: Rsyslog,
                                          certificates: Certificates) -> None:
    output = OutputConfig("syslog", settings={"host": "127.0.0.1", "port": rsyslog_tls.port, "protocol": "tls",
                                              "ca_file": str(certificates.ca)})
    asyncio.run(_deliver(build_sinks(_config(tmp_path, output)), real_alerts))
    _check_rsyslog(rsyslog_tls, real_alerts)
