"""Syslog to a real rsyslogd: RFC 5424 over UDP, and over TCP, TLS and RELP with the receiver stopped and
started again while alerts flow -- every alert id arrives, and duplicates never exceed the re-sends the sink
counted."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from sensor.alerts.alert import Alert
from sensor.config import OutputConfig
from sensor.metrics import Metrics
from sensor.outputs.build import build_sinks
from sensor.outputs.sink import SpooledSink
from sensor.outputs.spool import SpoolRecord
from sensor.outputs.syslog import rfc5424
from tests.alertcheck import validate_alert
from tests.waiting import wait_for

from .conftest import Certificates, Loop, config_with, distinct_alerts, metric
from .receivers import Rsyslog


def test_rfc5424_message_shape(real_alerts: list[Alert]) -> None:
    alert = real_alerts[0]
    record = SpoolRecord(1, alert.event_id, 0.5, 4, b'{"a":1}')
    assert rfc5424(record, 16, "host-1", "t1046-sensor") == (
        f'<130>1 1970-01-01T00:00:00.500000Z host-1 t1046-sensor - alert [t1046@32473 event_id="{alert.event_id}"] '
        '{"a":1}').encode()


def _received_ids(receiver: Rsyslog) -> list[str]:
    """Event ids of every message rsyslog wrote, each checked: RFC 5424 fields and a valid alert."""
    ids = []
    for line in receiver.lines():
        version, app, msgid, structured, message = line.split("|", 4)
        assert (version, app, msgid) == ("1", "t1046-sensor", "alert")
        document = validate_alert(json.loads(message))
        assert structured == f'[t1046@32473 event_id="{document["event"]["id"]}"]'
        ids.append(document["event"]["id"])
    return ids


@pytest.fixture
def receivers() -> Iterator[list[Rsyslog]]:
    started: list[Rsyslog] = []
    yield started
    for receiver in started:
        receiver.kill()


def _sink(tmp_path: Path, receiver: Rsyslog, metrics: Metrics, certificates: Certificates) -> SpooledSink:
    settings: dict[str, object] = {"host": "127.0.0.1", "port": receiver.port, "protocol": receiver.protocol,
                                   "batch_size": 5, "retry_max_seconds": 1, "name": "siem"}
    if receiver.tls:
        settings["ca_file"] = str(certificates.ca)
    if receiver.client is not None:
        settings["cert_file"], settings["key_file"] = map(str, receiver.client)
    (sink,) = build_sinks(config_with(tmp_path, OutputConfig("syslog", settings=settings)), metrics=metrics)
    return sink


def test_udp_syslog_reaches_rsyslog(tmp_path: Path, real_alerts: list[Alert], receivers: list[Rsyslog],
                                    loop: Loop, certificates: Certificates) -> None:
    receiver = Rsyslog(tmp_path / "rsyslog", "udp")
    receivers.append(receiver)
    receiver.start()
    metrics = Metrics()
    sink = _sink(tmp_path, receiver, metrics, certificates)
    loop.call(sink.start)
    loop.call(lambda: sink.accept(1, real_alerts, "sensor-test"))
    wait_for(lambda: len(receiver.lines()) >= len(real_alerts), 30, "rsyslog to write every datagram")
    assert sorted(_received_ids(receiver)) == sorted(alert.event_id for alert in real_alerts)
    assert loop.run(sink.drain(10))


@pytest.mark.parametrize(("protocol", "tls"), [("tcp", False), ("tls", True), ("relp", False), ("relp", True)],
                         ids=["tcp", "tls", "relp", "relp-tls"])
def test_every_alert_arrives_across_a_receiver_restart(protocol: str, tls: bool, tmp_path: Path,
                                                        real_alerts: list[Alert], receivers: list[Rsyslog],
                                                        loop: Loop, certificates: Certificates) -> None:
    receiver = Rsyslog(tmp_path / "rsyslog", protocol, certificates if tls else None)
    receivers.append(receiver)
    receiver.start()
    metrics = Metrics()
    sink = _sink(tmp_path, receiver, metrics, certificates)
    alerts = distinct_alerts(real_alerts, 150)
    loop.call(sink.start)

    def hand(first: int, last: int) -> None:
        for seq in range(first, last):
            loop.call(lambda seq=seq: sink.accept(seq + 1, [alerts[seq]], "sensor-test"))

    hand(0, 60)
    wait_for(lambda: len(receiver.lines()) >= 20, 60, "the first alerts to arrive")
    receiver.stop()  # mid-stream: the sink is still delivering the first 60
    hand(60, 100)
    wait_for(lambda: metric(metrics, "t1046_sink_failures_total", "siem") > 0, 60,
             "the sink to notice the receiver is gone")
    receiver.start()
    hand(100, 150)
    wanted = {alert.event_id for alert in alerts}
    wait_for(lambda: wanted <= set(_received_ids(receiver)), 120, "every alert id to arrive after the restart")
    assert loop.run(sink.drain(10))
    received = Counter(_received_ids(receiver))
    assert set(received) == wanted
    duplicates = sum(received.values()) - len(received)
    assert duplicates <= metric(metrics, "t1046_sink_resent_total", "siem")
    assert metric(metrics, "t1046_sink_delivered_total", "siem") == len(alerts)


def _oversized(alerts: list[Alert]) -> list[Alert]:
    """A small alert, one whose document is about 150 KB (a node's 4 KiB payloads, 3 000 Zeek notes: what an
    older version could make, or a large sample_size), then small ones again."""
    small = distinct_alerts(alerts, 3)
    huge = dataclasses.replace(small[1], zeek_notes=tuple(f"{number}::{'x' * 45}" for number in range(3000)))
    return [small[0], huge, small[2]]


@pytest.mark.parametrize("max_message", [None, 8192])
def test_an_alert_too_long_for_a_udp_datagram_is_truncated_and_never_stalls_the_sink(
        tmp_path: Path, real_alerts: list[Alert], receivers: list[Rsyslog], loop: Loop, certificates: Certificates,
        max_message: int | None) -> None:
    receiver = Rsyslog(tmp_path / "rsyslog", "udp", max_message_size=64 * 1024)
    receivers.append(receiver)
    receiver.start()
    metrics = Metrics()
    settings: dict[str, object] = {"host": "127.0.0.1", "port": receiver.port, "protocol": "udp",
                                   "retry_max_seconds": 1, "name": "siem"}
    if max_message is not None:
        settings["max_message"] = max_message
    (sink,) = build_sinks(config_with(tmp_path, OutputConfig("syslog", settings=settings)), metrics=metrics)
    first, huge, last = _oversized(real_alerts)
    whole = len(sink.render(1, huge, "sensor-test").document)
    assert whole > 100_000
    loop.call(sink.start)
    loop.call(lambda: sink.accept(1, [first, huge, last], "sensor-test"))
    later = distinct_alerts(real_alerts, 5)[4]
    wait_for(lambda: len(receiver.lines()) >= 3, 30, "rsyslog to write the three datagrams")
    loop.call(lambda: sink.accept(2, [later], "sensor-test"))
    wait_for(lambda: len(receiver.lines()) >= 4, 30, "a later alert to arrive")
    assert loop.run(sink.drain(10))
    lines = receiver.lines()
    assert len(lines) == 4, "nothing was sent twice"
    fields = [line.split("|", 4) for line in lines]
    assert [json.loads(fields[index][4])["event"]["id"] for index in (0, 2, 3)] == [
        first.event_id, last.event_id, later.event_id]
    assert fields[1][3] == f'[t1046@32473 event_id="{huge.event_id}" truncated="{whole}"]'
    limit = max_message or 65507
    assert len(fields[1][4]) < limit and fields[1][4].startswith('{"@timestamp"')
    dead_letters = (tmp_path / "state" / "dead-letter" / "siem.jsonl").read_text()
    (dead,) = [json.loads(line) for line in dead_letters.splitlines()]
    assert dead["event_id"] == huge.event_id and dead["document"]["t1046"]["zeek"]["notes"] == list(huge.zeek_notes)
    assert "truncated to a" in dead["reason"]
    assert metric(metrics, "t1046_sink_delivered_total", "siem") == 4
