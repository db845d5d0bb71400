"""Honeyport touches from many unproven sources: one aggregate incident, bounded, never of high confidence;
a source that proves itself, or that is alone, keeps its own incident."""

from __future__ import annotations

from ipaddress import IPv4Address, ip_address

from sensor.alerts.headline import message
from sensor.alerts.render import to_ecs
from sensor.config import DetectionConfig
from sensor.detect.correlator import Correlator
from sensor.detect.spray import MAX_MEMBERS, RECENT_SOURCES
from sensor.observations import HoneyportHit, Touch, Transport
from tests.alertcheck import validate_alert

TARGET = ip_address("10.20.0.5")


def datagram(ts: float, source: IPv4Address | str, port: int = 161) -> HoneyportHit:
    return HoneyportHit(ts=ts, source=ip_address(source), source_port=40000, target=TARGET, target_port=port,
                        transport=Transport.UDP, profile="snmp", payload=b"\x30\x26", touch=Touch.DATAGRAM)


def test_three_hundred_forged_sources_are_three_alerts_and_one_aggregate() -> None:
    correlator = Correlator(DetectionConfig())
    alerts = []
    for n in range(300):
        hit = datagram(1000.0 + n * 0.01, f"172.30.{n // 250}.{n % 250 + 1}")
        alerts += correlator.observe(hit, hit.ts)
    alerts += correlator.tick(1200.0)
    for alert in alerts:
        validate_alert(to_ecs(alert, "t"))
    singles = [a for a in alerts if a.scanner is not None]
    aggregates = [a for a in alerts if a.scanner is None]
    assert [str(a.scanner) for a in singles] == ["172.30.0.1", "172.30.0.2", "172.30.0.3"]
    assert [(a.update, a.sources, a.rule.id) for a in aggregates] == [
        (1, 4, "T1046-HONEYPORT-MANY-SOURCES"), (2, 300, "T1046-HONEYPORT-MANY-SOURCES")]
    assert len(alerts) <= 10 and not [a for a in alerts if a.confidence == "high"]
    assert correlator.tracked_sources == 4, "no per-source state for the folded-in sources"
    assert message(aggregates[-1]).startswith("300 sources touched 1 honeyport on 10.20.0.5: snmp; UDP datagrams")


def test_a_source_that_proves_itself_keeps_an_incident_of_its_own() -> None:
    correlator = Correlator(DetectionConfig())
    for n in range(20):
        hit = datagram(1000.0 + n * 0.01, f"172.30.0.{n + 1}")
        correlator.observe(hit, hit.ts)
    connect = HoneyportHit(ts=1000.5, source=ip_address("172.30.0.10"), source_port=40001, target=TARGET,
                           target_port=2222, transport=Transport.TCP, profile="ssh", touch=Touch.CONNECT)
    (own,) = correlator.observe(connect, connect.ts)
    assert str(own.scanner) == "172.30.0.10" and own.proven_by == ("tcp_handshake",)
    assert own.confidence == "high"


def test_unproven_sources_apart_in_time_are_each_their_own_incident() -> None:
    correlator = Correlator(DetectionConfig(spray_window=60.0))
    alerts = []
    for n in range(6):
        hit = datagram(1000.0 + n * 120.0, f"172.30.0.{n + 1}")
        alerts += correlator.observe(hit, hit.ts)
    assert [str(a.scanner) for a in alerts] == [f"172.30.0.{n + 1}" for n in range(6)]
    assert all(a.proven_by == () and a.unproven == ("udp",) for a in alerts)


def test_the_aggregates_state_is_bounded_under_a_flood_of_forged_sources() -> None:
    correlator = Correlator(DetectionConfig())
    first = int(IPv4Address("172.16.0.1"))
    for n in range(MAX_MEMBERS + 5000):
        hit = datagram(1000.0 + n * 1e-4, IPv4Address(first + n))
        correlator.observe(hit, hit.ts)
    (final,) = correlator.flush(2000.0)
    assert final.sources == MAX_MEMBERS, "counted up to the cap"
    assert len(correlator._touches._spray._recent) == RECENT_SOURCES
    assert correlator.tracked_sources == 4
