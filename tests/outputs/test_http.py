"""HTTP sinks against a scripted receiver on loopback that answers as Splunk HEC, ``_bulk`` and webhooks do,
failures included: each answer gets the behaviour docs/sinks.md promises, and nothing is lost or stalls."""

from __future__ import annotations

import base64
import json
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sensor.alerts.alert import Alert
from sensor.config import OutputConfig
from sensor.metrics import Metrics
from sensor.outputs.build import build_sinks
from sensor.outputs.sink import SpooledSink
from tests.alertcheck import validate_alert
from tests.waiting import wait_for

from .conftest import Certificates, Loop, config_with, distinct_alerts, metric
from .receivers import Answer, HttpReceiver, Request, Script

HEC_OK: Answer = (200, b'{"text":"Success","code":0}')
HEC_BUSY: Answer = (503, b'{"text":"Server is busy","code":9}')


@pytest.fixture
def receivers() -> Iterator[list[HttpReceiver]]:
    started: list[HttpReceiver] = []
    yield started
    for receiver in started:
        receiver.close()


def _serve(receivers: list[HttpReceiver], answer: Callable[[Request], Answer | None],
           tls: Certificates | None = None) -> HttpReceiver:
    receiver = HttpReceiver(Script(answer), tls)
    receivers.append(receiver)
    return receiver


def _sink(tmp_path: Path, metrics: Metrics, **settings: Any) -> SpooledSink:
    settings = {"name": "siem", "retry_max_seconds": 1, **settings}
    (sink,) = build_sinks(config_with(tmp_path, OutputConfig("http", settings=settings)), metrics=metrics)
    return sink


def _run(loop: Loop, sink: SpooledSink, alerts: list[Alert], per_seq: int = 1) -> None:
    """Hand the alerts over (``per_seq`` per checkpoint) and wait until the sink has settled every one."""
    loop.call(sink.start)
    for seq, start in enumerate(range(0, len(alerts), per_seq), start=1):
        loop.call(lambda seq=seq, start=start: sink.accept(seq, alerts[start:start + per_seq], "sensor-test"))
    wait_for(lambda: sink.delivered + sink.rejected >= len(alerts), 60, "the sink to settle every alert")
    assert loop.run(sink.drain(10))


def _hec_events(request: Request) -> list[dict[str, Any]]:
    """A HEC body: JSON event objects one after the other (newline-joined by us)."""
    return [json.loads(line) for line in request.body.decode().split("\n")]


def _hec_ids(requests: list[Request]) -> Counter[str]:
    return Counter(event["event"]["event"]["id"] for request in requests for event in _hec_events(request))


def _dead_letters(tmp_path: Path) -> list[dict[str, Any]]:
    path = tmp_path / "state" / "dead-letter" / "siem.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_hec_gets_every_alert_once_through_busy_answers_on_kept_connections(
        tmp_path: Path, real_alerts: list[Alert], receivers: list[HttpReceiver], loop: Loop,
        monkeypatch: pytest.MonkeyPatch) -> None:
    answers = iter([HEC_BUSY, HEC_BUSY, (500, b'{"text":"Internal server error","code":8}')])
    receiver = _serve(receivers, lambda request: next(answers, HEC_OK))
    monkeypatch.setenv("HEC_TOKEN", "s3cret-hec-token")
    metrics = Metrics()
    alerts = distinct_alerts(real_alerts, 40)
    sink = _sink(tmp_path, metrics, url=receiver.url, kind="hec", token_env="HEC_TOKEN", index="sec", batch_size=5)
    _run(loop, sink, alerts, per_seq=5)
    accepted = receiver.script.requests[3:]
    for request in receiver.script.requests:
        assert request.path == "/services/collector/event"
        assert request.headers["Authorization"] == "Splunk s3cret-hec-token"
        for event in _hec_events(request):
            assert event["index"] == "sec" and event["sourcetype"] == "t1046:alert" and event["host"] == "sensor-test"
            validate_alert(event["event"])
    assert _hec_ids(accepted) == Counter({alert.event_id: 1 for alert in alerts})
    assert len(receiver.script.requests) == 3 + len(alerts) // 5
    assert receiver.connections < len(receiver.script.requests) / 2, "connections are kept and reused"
    assert metric(metrics, "t1046_sink_failures_total", "siem") == 3
    assert metric(metrics, "t1046_sink_resent_total", "siem") == 0


def test_hec_invalid_event_is_dead_lettered_and_the_rest_is_indexed(
        tmp_path: Path, real_alerts: list[Alert], receivers: list[HttpReceiver], loop: Loop) -> None:
    alerts = distinct_alerts(real_alerts, 10)
    poison = alerts[3].event_id
    indexed: list[str] = []

    def hec(request: Request) -> Answer:
        """Splunk indexes the events before an invalid one and names it; the rest is not indexed."""
        for number, event in enumerate(_hec_events(request)):
            if event["event"]["event"]["id"] == poison:
                return 400, json.dumps({"text": "Invalid data format", "code": 6,
                                        "invalid-event-number": number}).encode()
            indexed.append(event["event"]["event"]["id"])
        return HEC_OK

    receiver = _serve(receivers, hec)
    metrics = Metrics()
    sink = _sink(tmp_path, metrics, url=receiver.url, kind="hec", batch_size=10)
    _run(loop, sink, alerts, per_seq=10)
    assert Counter(indexed) == Counter({alert.event_id: 1 for alert in alerts if alert.event_id != poison})
    (dead,) = _dead_letters(tmp_path)
    assert dead["event_id"] == poison and dead["document"]["event"]["id"] == poison
    assert dead["sink"] == "siem" and "Invalid data format" in dead["reason"]
    assert metric(metrics, "t1046_sink_dead_letters_total", "siem") == 1
    assert metric(metrics, "t1046_sink_delivered_total", "siem") == 9
    assert len(receiver.script.requests) == 2, "the batch, then the events after the invalid one"


def test_a_webhook_refusing_a_batch_finds_the_poison_alert_alone(
        tmp_path: Path, real_alerts: list[Alert], receivers: list[HttpReceiver], loop: Loop) -> None:
    alerts = distinct_alerts(real_alerts, 8)
    poison = alerts[5].event_id
    stored: list[str] = []

    def webhook(request: Request) -> Answer:
        documents = json.loads(request.body)
        ids = [document["event"]["id"] for document in documents]
        if poison in ids:
            return 400, b'{"error":"field t1046.targets: too many values"}'
        stored.extend(ids)
        return 204, b""

    receiver = _serve(receivers, webhook)
    metrics = Metrics()
    sink = _sink(tmp_path, metrics, url=receiver.url + "/hook", batch_size=8, username="sensor",
                 password_env="HOOK_PASSWORD")
    _run(loop, sink, alerts, per_seq=8)
    assert Counter(stored) == Counter({alert.event_id: 1 for alert in alerts if alert.event_id != poison})
    assert [dead["event_id"] for dead in _dead_letters(tmp_path)] == [poison]
    assert metric(metrics, "t1046_sink_dead_letters_total", "siem") == 1
    request = receiver.script.requests[0]
    assert request.path == "/hook" and request.headers["Content-Type"] == "application/json"
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(b"sensor:hook-pass").decode()


@pytest.fixture(autouse=True)
def _hook_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOK_PASSWORD", "hook-pass")


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 401, 404])
def test_not_now_and_setup_answers_are_retried_until_accepted(
        status: int, tmp_path: Path, real_alerts: list[Alert], receivers: list[HttpReceiver], loop: Loop) -> None:
    answers = iter([(status, b'{"error":"not now"}')] * 3)
    stored: list[str] = []

    def webhook(request: Request) -> Answer:
        answer = next(answers, None)
        if answer is not None:
            return answer
        stored.extend(document["event"]["id"] for document in json.loads(request.body))
        return 200, b"{}"

    receiver = _serve(receivers, webhook)
    metrics = Metrics()
    alerts = distinct_alerts(real_alerts, 6)
    sink = _sink(tmp_path, metrics, url=receiver.url, batch_size=6)
    _run(loop, sink, alerts, per_seq=6)
    assert Counter(stored) == Counter({alert.event_id: 1 for alert in alerts})
    assert metric(metrics, "t1046_sink_failures_total", "siem") == 3
    assert _dead_letters(tmp_path) == []


def test_a_request_that_times_out_is_sent_again_and_counted_as_possibly_duplicate(
        tmp_path: Path, real_alerts: list[Alert], receivers: list[HttpReceiver], loop: Loop) -> None:
    held = iter([True])

    def slow(request: Request) -> Answer | None:
        return None if next(held, False) else HEC_OK

    receiver = _serve(receivers, slow)
    metrics = Metrics()
    alerts = distinct_alerts(real_alerts, 5)
    sink = _sink(tmp_path, metrics, url=receiver.url, kind="hec", batch_size=5, timeout=0.5)
    _run(loop, sink, alerts, per_seq=5)
    received = _hec_ids(receiver.script.requests)
    assert set(received) == {alert.event_id for alert in alerts}
    duplicates = sum(received.values()) - len(received)
    assert duplicates == 5 == metric(metrics, "t1046_sink_resent_total", "siem")
    assert metric(metrics, "t1046_sink_delivered_total", "siem") == 5


def _bulk_ids(request: Request) -> list[str]:
    lines = request.body.decode().splitlines()
    for action, document in zip(lines[::2], lines[1::2], strict=True):
        assert json.loads(action)["create"]["_id"] == validate_alert(json.loads(document))["event"]["id"]
    return [json.loads(action)["create"]["_id"] for action in lines[::2]]


def test_bulk_items_are_judged_one_by_one(tmp_path: Path, real_alerts: list[Alert],
                                          receivers: list[HttpReceiver], loop: Loop) -> None:
    """201 indexed, 409 already there (a duplicate), 400 mapping error (dead letter), 429 retried alone."""
    alerts = distinct_alerts(real_alerts, 12)
    mapping_error = alerts[2].event_id
    retried = {alerts[7].event_id, alerts[9].event_id}
    busy_once = set(retried)
    index: Counter[str] = Counter()
    index[alerts[0].event_id] = 1  # indexed by an earlier run

    def bulk(request: Request) -> Answer:
        items = []
        for event_id in _bulk_ids(request):
            if event_id == mapping_error:
                items.append({"create": {"_id": event_id, "status": 400, "error": {
                    "type": "document_parsing_exception", "reason": "failed to parse field [source.ip]"}}})
            elif event_id in busy_once:
                busy_once.discard(event_id)
                items.append({"create": {"_id": event_id, "status": 429, "error": {
                    "type": "es_rejected_execution_exception", "reason": "rejected execution"}}})
            elif index[event_id]:
                items.append({"create": {"_id": event_id, "status": 409, "error": {
                    "type": "version_conflict_engine_exception", "reason": "document already exists"}}})
            else:
                index[event_id] += 1
                items.append({"create": {"_id": event_id, "status": 201, "result": "created"}})
        errors = any(item["create"]["status"] >= 300 for item in items)
        return 200, json.dumps({"took": 3, "errors": errors, "items": items}).encode()

    receiver = _serve(receivers, bulk)
    metrics = Metrics()
    sink = _sink(tmp_path, metrics, url=receiver.url + "/alerts-t1046", kind="bulk", batch_size=12)
    _run(loop, sink, alerts, per_seq=12)
    assert set(index) == {alert.event_id for alert in alerts} - {mapping_error}
    assert all(count == 1 for count in index.values())
    first, second = receiver.script.requests
    assert first.path == second.path == "/alerts-t1046/_bulk"
    assert first.headers["Content-Type"] == "application/x-ndjson"
    assert sorted(_bulk_ids(second)) == sorted(retried), "only the items answered 429 are sent again"
    assert metric(metrics, "t1046_sink_duplicates_total", "siem") == 1
    assert metric(metrics, "t1046_sink_dead_letters_total", "siem") == 1
    assert metric(metrics, "t1046_sink_delivered_total", "siem") == 11
    (dead,) = _dead_letters(tmp_path)
    assert dead["event_id"] == mapping_error and "document_parsing_exception" in dead["reason"]


def test_bulk_batch_sent_twice_is_indexed_once(tmp_path: Path, real_alerts: list[Alert],
                                               receivers: list[HttpReceiver], loop: Loop) -> None:
    """The answer to the first request is lost (the connection drops): the batch is sent again, and every
    alert, now already there, answers 409 -- delivered, counted as duplicates and as re-sent."""
    index: set[str] = set()
    dropped = iter([True])

    def bulk(request: Request) -> Answer | None:
        items = []
        for event_id in _bulk_ids(request):
            status = 409 if event_id in index else 201
            index.add(event_id)
            items.append({"create": {"_id": event_id, "status": status}})
        if next(dropped, False):
            return None
        return 200, json.dumps({"errors": any(i["create"]["status"] == 409 for i in items), "items": items}).encode()

    receiver = _serve(receivers, bulk)
    metrics = Metrics()
    alerts = distinct_alerts(real_alerts, 4)
    sink = _sink(tmp_path, metrics, url=receiver.url, kind="bulk", batch_size=4, timeout=0.5)
    _run(loop, sink, alerts, per_seq=4)
    assert index == {alert.event_id for alert in alerts}
    assert metric(metrics, "t1046_sink_duplicates_total", "siem") == 4
    assert metric(metrics, "t1046_sink_resent_total", "siem") == 4
    assert metric(metrics, "t1046_sink_delivered_total", "siem") == 4


def test_hec_over_https_checks_the_receivers_certificate(tmp_path: Path, real_alerts: list[Alert],
                                                        receivers: list[HttpReceiver], loop: Loop,
                                                        certificates: Certificates) -> None:
    receiver = _serve(receivers, lambda request: HEC_OK, certificates)
    metrics = Metrics()
    alerts = distinct_alerts(real_alerts, 10)
    sink = _sink(tmp_path, metrics, url=receiver.url, kind="hec", batch_size=2, ca_file=str(certificates.ca))
    _run(loop, sink, alerts, per_seq=2)
    assert _hec_ids(receiver.script.requests) == Counter({alert.event_id: 1 for alert in alerts})
    assert receiver.connections == 1, "one TLS handshake for every batch"

    untrusted = _sink(tmp_path / "untrusted", metrics, url=receiver.url, kind="hec", name="untrusted")
    loop.call(untrusted.start)
    loop.call(lambda: untrusted.accept(1, alerts[:1], "sensor-test"))
    wait_for(lambda: untrusted.failures > 0, 60, "the untrusted sink to fail")
    assert "certificate verify failed" in (untrusted.last_error or "")
    assert untrusted.delivered == 0
    assert not loop.run(untrusted.drain(1))


def test_hec_indexer_acknowledgement_is_awaited_and_a_lost_batch_sent_again(
        tmp_path: Path, real_alerts: list[Alert], receivers: list[HttpReceiver], loop: Loop) -> None:
    """A HEC token with useACK, as Splunk documents it: no channel -> 400 code 10; with a channel each
    request gets an ackId, and /services/collector/ack says which are indexed. The indexer here loses
    the second batch (its ackId never turns true): that batch is sent again and counted."""
    indexed: Counter[str] = Counter()
    pending: dict[tuple[str, int], list[str]] = {}
    polled: Counter[tuple[str, int]] = Counter()
    next_ack: Counter[str] = Counter()
    channels: set[str] = set()

    def hec(request: Request) -> Answer:
        channel = request.headers.get("X-Splunk-Request-Channel")
        if channel is None:
            return 400, b'{"text":"Data channel is missing","code":10}'
        channels.add(channel)
        if request.path == "/services/collector/ack":
            acks = {}
            for ack_id in json.loads(request.body)["acks"]:
                polled[channel, ack_id] += 1
                done = ack_id != 1 and polled[channel, ack_id] >= 2  # indexed by the second query
                if done and (channel, ack_id) in pending:
                    indexed.update(pending.pop((channel, ack_id)))
                acks[str(ack_id)] = done
            return 200, json.dumps({"acks": acks}).encode()
        ack_id = next_ack[channel]
        next_ack[channel] += 1
        pending[channel, ack_id] = [event["event"]["event"]["id"] for event in _hec_events(request)]
        return 200, json.dumps({"text": "Success", "code": 0, "ackId": ack_id}).encode()

    receiver = _serve(receivers, hec)
    metrics = Metrics()
    alerts = distinct_alerts(real_alerts, 15)
    sink = _sink(tmp_path, metrics, url=receiver.url, kind="hec", batch_size=5, timeout=1)
    _run(loop, sink, alerts, per_seq=5)
    assert indexed == Counter({alert.event_id: 1 for alert in alerts})
    assert "X-Splunk-Request-Channel" not in receiver.script.requests[0].headers
    assert len(channels) == 1
    lost = pending.pop((next(iter(channels)), 1))
    assert len(lost) == 5 and not pending
    assert metric(metrics, "t1046_sink_resent_total", "siem") == 5
    assert metric(metrics, "t1046_sink_delivered_total", "siem") == 15


def test_credentials_in_the_url_are_sent_as_basic_auth_or_give_way_to_a_token_and_are_never_logged(
        tmp_path: Path, real_alerts: list[Alert], receivers: list[HttpReceiver], loop: Loop,
        caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    """A URL with user:password (and a secret in its query) is a common way to write a webhook; beside a HEC
    token it made the HTTP client refuse the request at every delivery."""
    monkeypatch.setenv("HEC_TOKEN", "t0ken")
    alerts = distinct_alerts(real_alerts, 2)
    receiver = _serve(receivers, lambda request: (200, b'{"text":"Success","code":0}'))
    with_userinfo = receiver.url.replace("://", "://sensor:s3cret@")
    _run(loop, _sink(tmp_path / "a", Metrics(), url=with_userinfo, kind="hec", token_env="HEC_TOKEN"), alerts)
    _run(loop, _sink(tmp_path / "b", Metrics(), url=with_userinfo + "/hook?key=qs3cret", batch_size=2), alerts)
    first, second = receiver.script.requests[0], receiver.script.requests[-1]
    assert first.headers["Authorization"] == "Splunk t0ken", "the configured token wins"
    assert second.headers["Authorization"] == "Basic " + base64.b64encode(b"sensor:s3cret").decode()
    assert second.path == "/hook?key=qs3cret"
    broken = _serve(receivers, lambda request: (503, b"busy"))
    sink = _sink(tmp_path / "c", Metrics(), url=broken.url.replace("://", "://sensor:s3cret@") + "/h?key=qs3cret")
    with caplog.at_level("WARNING"):
        loop.call(sink.start)
        loop.call(lambda: sink.accept(1, alerts[:1], "sensor-test"))
        wait_for(lambda: "delivery failed" in caplog.text, 60, "a failed delivery to be logged")
        loop.run(sink.drain(1))
    assert "s3cret" not in caplog.text and "qs3cret" not in caplog.text, caplog.text
