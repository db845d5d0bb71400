"""``t1046-sensor test-alert``: one marked test event reaches every configured sink, and the report names
the sinks that did not get it (exit status 1)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from sensor.cli import main
from sensor.outputs.testalert import TEST_REASON
from tests.alertcheck import validate_alert

from .receivers import HttpReceiver, Request, Script


@pytest.fixture
def webhook() -> Iterator[HttpReceiver]:
    receiver = HttpReceiver(Script(lambda request: (200, b"{}")))
    yield receiver
    receiver.close()


@pytest.fixture
def refusing() -> Iterator[HttpReceiver]:
    receiver = HttpReceiver(Script(lambda request: (503, b'{"text":"Server is busy","code":9}')))
    yield receiver
    receiver.close()


def _config(tmp_path: Path, *outputs: str) -> Path:
    path = tmp_path / "sensor.yaml"
    path.write_text(f"sensor: {{name: sensor-test, state_dir: {tmp_path / 'state'}}}\n"
                    "outputs:\n" + "".join(f"  - {output}\n" for output in outputs))
    return path


def _documents(requests: list[Request]) -> list[dict[str, object]]:
    return [document for request in requests for document in json.loads(request.body)]


def test_every_sink_gets_the_marked_test_event(tmp_path: Path, webhook: HttpReceiver,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    config = _config(tmp_path, "{type: file, path: alerts.jsonl, name: local}",
                     f"{{type: http, url: '{webhook.url}/hook', name: siem}}")
    assert main(["test-alert", "--config", str(config)]) == 0
    (line,) = (tmp_path / "state" / "alerts.jsonl").read_text().splitlines()
    document = validate_alert(json.loads(line))
    assert document["event"]["kind"] == "event" and document["t1046"]["authorized"]["reason"] == TEST_REASON
    assert document["source"]["ip"] == "192.0.2.1" and TEST_REASON in document["message"]
    assert _documents(webhook.script.requests) == [document]
    report = capsys.readouterr().out.splitlines()
    assert report == [f"local: OK: delivered (event.id {document['event']['id']})",
                      f"siem: OK: delivered (event.id {document['event']['id']})"]
    assert not (tmp_path / "state" / "spool").exists(), "the daemon's spools are not touched"


def test_a_sink_that_cannot_deliver_is_named_and_fails_the_command(
        tmp_path: Path, webhook: HttpReceiver, refusing: HttpReceiver, capsys: pytest.CaptureFixture[str]) -> None:
    config = _config(tmp_path, f"{{type: http, url: '{webhook.url}', name: good}}",
                     f"{{type: http, url: '{refusing.url}', kind: hec, name: busy}}")
    assert main(["test-alert", "--config", str(config), "--timeout", "2"]) == 1
    good, busy = capsys.readouterr().out.splitlines()
    assert good.startswith("good: OK: delivered")
    assert busy.startswith("busy: FAILED: not delivered within 2s: hec http://127.0.0.1:")
    assert "HTTP 503" in busy
    assert len(_documents(webhook.script.requests)) == 1
    assert refusing.script.requests, "the busy receiver was asked"
