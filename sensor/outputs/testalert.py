"""``t1046-sensor test-alert``: one clearly marked test event sent to every configured sink, and a report
per sink of whether it was delivered -- what a SIEM integration checks first.

The test event is an alert labelled as authorized (``event.kind: event``, tag ``authorized_scanner``) whose
reason says it is a delivery test, between documentation addresses (192.0.2.0/24, RFC 5737) that no real
network uses. The sinks are built from the configuration as ``run`` builds them, but with spools and
dead-letter files in a temporary directory of their own, so a running daemon's spools are never touched.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import tempfile
import time
from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path

from sensor.alerts.alert import Alert
from sensor.alerts.catalogue import RULES, Action
from sensor.config import SensorConfig
from sensor.metrics import Metrics
from sensor.observations import Transport
from sensor.outputs.build import build_sinks

log = logging.getLogger(__name__)

TEST_REASON = "t1046-sensor test-alert: a delivery test, not a detection"
"""The ``authorized`` reason every test event carries (in ``message`` and ``t1046.authorized.reason``)."""


@dataclass(frozen=True, slots=True)
class SinkReport:
    """What became of the test event at one sink."""

    sink: str
    delivered: bool
    detail: str


def test_event(now: float) -> Alert:
    """The test event: a single honeyport touch from 192.0.2.1 to 192.0.2.2:9, labelled as a test."""
    rule = RULES["T1046-HONEYPORT"]
    return Alert(
        incident_id=hashlib.sha256(f"test-alert/{now!r}".encode()).hexdigest()[:24], update=1, ts=now,
        action=Action.HONEYPORT_PROBE, rule=rule, rules=(rule.id,), scanner=IPv4Address("192.0.2.1"),
        first_seen=now, last_seen=now, probes=1, failed=0, half_open=0, distinct_targets=1, distinct_ports=1,
        targets=(IPv4Address("192.0.2.2"),), ports=(9,), evidence_sources=("honeyport",), uids=(),
        honeyport_hits=1, honeyport_profiles=("test-alert",), honeyport_nodes=(), honeyport_payloads=(),
        mdns_names=(), zeek_notes=(), risk_score=rule.risk, confidence="low", authorized=TEST_REASON,
        transports=(Transport.TCP,), created=now)


async def send_test_event(config: SensorConfig, timeout: float) -> list[SinkReport]:
    """Send one test event to every configured sink; wait up to ``timeout`` seconds for each."""
    alert = test_event(time.time())
    with tempfile.TemporaryDirectory(prefix="t1046-test-alert-") as spools:
        sinks = build_sinks(config, metrics=Metrics(), state_dir=Path(spools))
        for sink in sinks:
            sink.start()
            sink.accept(1, [alert], config.name)
        settled = await asyncio.gather(*(sink.settled(1, timeout) for sink in sinks))
        reports = []
        for sink, done in zip(sinks, settled, strict=True):
            if sink.delivered:
                reports.append(SinkReport(sink.name, True, f"delivered (event.id {alert.event_id})"))
            elif sink.rejected:
                reports.append(SinkReport(sink.name, False, "refused by the receiver (see the log)"))
            else:
                why = sink.last_error or ("no answer" if not done else "unknown")
                reports.append(SinkReport(sink.name, False, f"not delivered within {timeout:g}s: {why}"))
        for sink in sinks:
            if sink.delivered:
                await sink.drain(1.0)
            else:  # nothing to keep: its spool is thrown away with the temporary directory
                sink.close()
                await sink.transport.close()
    return reports
