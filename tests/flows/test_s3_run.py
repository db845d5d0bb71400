"""The real ``t1046-sensor run`` following an S3 prefix on a local S3-compatible server (moto's, on loopback:
tests/flows/s3store.py) while flow logs derived from the project's captures are delivered into it: killed with
SIGKILL and started again, fed a malformed object, left without its store for a while (its honeyports go on
alerting), it delivers every alert once and ends with the incidents ``replay`` finds in the same files.

Each kill comes at an observable point: once the checkpoint holds an object read and judged (its key in the ledger,
the correlator's observation count grown by its attempts); the next object is delivered while the daemon is down.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from sensor.config import load_config
from sensor.daemon.checkpoint import load_checkpoint
from sensor.flows.bucket import Ledger
from sensor.flows.read import FlowReader
from sensor.zeek.malformed import MalformedLog
from tests.alertcheck import validate_alert
from tests.flows.derive import write_all
from tests.flows.s3store import Store, bucket_name, store, store_env
from tests.waiting import reported_port, wait_for

__all__ = ["store"]
TRACES = Path(__file__).resolve().parents[2] / "zeek_scripts" / "testing" / "Traces"
DAY = "AWSLogs/123456789010/vpcflowlogs/eu-west-1/2026/11/28/"
KEYS = ("distinct_hosts", "distinct_ports", "probes", "failed")
SCANNER = "10.200.0.10"


def _final(alerts: list[dict[str, Any]]) -> dict[str, tuple[object, ...]]:
    return {a["source"]["ip"]: (a["event"]["action"], tuple(sorted(a["t1046"]["rules"])),
                                tuple(a["t1046"]["counts"][k] for k in KEYS)) for a in alerts}


def _delivered_all(state: Path) -> bool:
    """The file sink delivered everything it spooled and counted it (its cursor at its spool's end, the file's
    size in it): a kill now cannot catch a delivery in flight. (A first batch written and not yet counted is
    written again after a crash, as its cursor has no size to trim the file back to.)"""
    for cursor_file in state.glob("spool/*/cursor.json"):
        cursor = json.loads(cursor_file.read_text())
        alerts = state / "alerts.jsonl"
        if cursor.get("offset") != (cursor_file.parent / "spool.log").stat().st_size or (
                alerts.exists() and cursor.get("extra", {}).get("size") != alerts.stat().st_size):
            return False
    return True


class _Daemon:
    """``t1046-sensor run`` and its stderr, one file per start."""

    def __init__(self, config: Path, env: dict[str, str]) -> None:
        self.config = config
        self.env = env
        self.starts = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.stderr = config.parent / "stderr-0"

    def start(self) -> None:
        self.starts += 1
        self.stderr = self.config.parent / f"stderr-{self.starts}"
        with self.stderr.open("wb") as stderr:
            self.process = subprocess.Popen([sys.executable, "-m", "sensor", "run", "--config", str(self.config)],
                                            stdout=subprocess.DEVNULL, stderr=stderr, env=self.env)

    def said(self, text: str) -> bool:
        return text in self.stderr.read_text(errors="replace")

    def kill(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        assert self.process.wait(10) == -signal.SIGKILL

    def stop(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(30)

    def end(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(10)


def test_run_follows_an_s3_prefix_through_kills_a_bad_object_and_an_outage(store: Store, tmp_path: Path) -> None:
    bucket = store.bucket(bucket_name())
    url = f"s3://{bucket}/AWSLogs/"
    config_path = tmp_path / "sensor.yaml"
    config_path.write_text(f"""
sensor: {{name: s3-test, state_dir: {tmp_path / 'state'}}}
honeyports: {{listen: [127.0.0.1], tcp: '0'}}
flows:
  - {{format: aws, path: '{url}', endpoint_url: '{store.url}', poll: 0.2, pair_within: 1, name: vpc}}
outputs:
  - {{type: file, path: alerts.jsonl}}
""")
    config = load_config(config_path)
    local = tmp_path / "delivered"
    local.mkdir()
    objects = []
    for number, (capture, fmt) in enumerate((("s1_vertical_syn", "aws-v5"), ("s2_horizontal_syn", "aws-v2"),
                                             ("s6_udp_scan", "aws-v5"), ("s4_version_scan", "aws-v2"))):
        derived = write_all(TRACES / f"{capture}.pcap", tmp_path / capture)[fmt]
        objects.append((f"{DAY}{number}-{capture}{''.join(derived.suffixes)}", derived))
    damaged = (f"{DAY}2-damaged.log.gz", b"\x1f\x8b\x08\x00" + bytes(range(256)) * 4)  # gzip's magic, then no gzip
    copies: list[Path] = []

    def deliver(key: str, body: bytes) -> None:
        store.put(bucket, key, body)
        copy = local / key.rsplit("/", 1)[1]
        copy.write_bytes(body)
        os.utime(copy, (len(copies) + 1e9, len(copies) + 1e9))  # replay reads them in the order delivered
        copies.append(copy)

    expected = 0

    def holds(key: str, observations: int | None) -> bool:
        """The checkpoint has ``key`` read and (``observations``) exactly that many observations judged."""
        checkpoint = load_checkpoint(config.state_dir / "checkpoint", config.detection)
        ledger = Ledger.find(checkpoint.done, url) if checkpoint is not None else None
        return ledger is not None and key in ledger.read and (
            observations is None or checkpoint.correlator.stats.observations == observations)  # type: ignore[union-attr]

    def delivered_and_judged(key: str, path: Path) -> None:
        nonlocal expected
        expected += sum(len(rows) for rows in FlowReader(config.flows[0], [path], MalformedLog()).blocks())
        wait_for(lambda: holds(key, expected), 60, f"the checkpoint to hold {key} and its attempts")

    daemon = _Daemon(config_path, {**os.environ, **store_env(tmp_path)})
    daemon.start()
    try:
        wait_for(lambda: daemon.said(f"flows: following {url}"), 60, "the daemon following the prefix")
        wait_for((config.state_dir / "checkpoint").exists, 60, "the first checkpoint")
        deliver(objects[0][0], objects[0][1].read_bytes())
        delivered_and_judged(*objects[0])
        wait_for(lambda: _delivered_all(config.state_dir), 30, "the file sink to deliver what was committed")
        daemon.kill()  # with the first object committed
        deliver(objects[1][0], objects[1][1].read_bytes())  # while the daemon is down
        daemon.start()
        delivered_and_judged(*objects[1])
        wait_for(lambda: _delivered_all(config.state_dir), 30, "the file sink to deliver what was committed")
        daemon.kill()
        daemon.start()
        deliver(*damaged)
        deliver(objects[2][0], objects[2][1].read_bytes())
        wait_for(lambda: holds(damaged[0], None), 60, "the damaged object passed")
        wait_for(lambda: daemon.said(f"s3://{bucket}/{damaged[0]}:0: skipped malformed line: cannot read on "
                                     "after byte"), 30, "the damaged object's line")
        wait_for(lambda: holds(objects[2][0], None), 60, "the object after the damaged one")

        port = reported_port(daemon.stderr, 30)
        store.stop()
        wait_for(lambda: daemon.said(f"cannot list {url}"), 60, "the daemon saying the store is down")
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
        alerts = config.state_dir / "alerts.jsonl"
        wait_for(lambda: alerts.exists() and '"honeyport_probe"' in alerts.read_text(), 60,
                 "the honeyport's alert while the store is down")
        store.start()
        deliver(objects[3][0], objects[3][1].read_bytes())
        wait_for(lambda: holds(objects[3][0], None), 60, "the object delivered once the store is back")
        assert daemon.said(f"{url}: reachable again; following it")
        assert daemon.stop() == 0
    finally:
        daemon.end()
    assert daemon.starts == 3
    lines = (config.state_dir / "alerts.jsonl").read_text().splitlines()
    delivered = [validate_alert(json.loads(line)) for line in lines]
    ids = [alert["event"]["id"] for alert in delivered]
    assert len(ids) == len(set(ids)), "an alert was delivered twice"
    replayed = subprocess.run([sys.executable, "-m", "sensor", "replay", "--config", str(config_path), str(local)],
                              capture_output=True, timeout=120, check=True)
    assert b"from 4 files, 0 malformed" in replayed.stderr, replayed.stderr  # the damaged one is no flow log to it
    expected_alerts = [validate_alert(json.loads(line)) for line in replayed.stdout.splitlines()]
    flows = [alert for alert in delivered if alert["source"]["ip"] != "127.0.0.1"]
    assert set(_final(expected_alerts)) == {SCANNER}
    assert _final(flows) == _final(expected_alerts), "the daemon ends with replay's incidents"
    assert {alert["source"]["ip"] for alert in delivered} == {SCANNER, "127.0.0.1"}
