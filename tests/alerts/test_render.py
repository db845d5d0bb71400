"""Rendering against the SIEM schemas: Alerts built here (one-connection honeyport touches, several
transports, IPv6, authorized scanners, closed incidents) and every alert of a replay of every capture."""

from __future__ import annotations

import io
import re
from dataclasses import replace
from ipaddress import ip_address
from pathlib import Path

import pytest
from ocsf_json_schema import get_packaged_versions

from sensor.alerts.alert import Alert
from sensor.alerts.render import ECS_VERSION, OCSF_VERSION, rfc3339, to_ecs, to_ocsf
from sensor.config import DetectionConfig, default_config
from sensor.detect.correlator import Correlator
from sensor.observations import HoneyportHit, Transport
from sensor.replay import replay
from tests.alertcheck import validate_alert
from tests.alerts.samples import SCAN, T0, TOUCH
from tests.conftest import CAPTURES

DATA = CAPTURES.parent
SCANS = sorted([*CAPTURES.glob("s*/zeek*"), *DATA.glob("package-logs/s*"), *DATA.glob("stealth/*/zeek")])
"""Every recorded scan: both Zeek log flavours, the logs written with this package loaded, the stealth scans."""


def rendered(alert: Alert) -> tuple[dict, dict]:
    """The alert in both formats, each validated against its schema."""
    return validate_alert(to_ecs(alert, "sensor-1")), validate_alert(to_ocsf(alert, "sensor-1"))


@pytest.mark.parametrize(("transport", "scanner", "source_port", "target", "port", "expected"), [
    # Published Community ID values (the spec's baseline, as Elasticsearch's community_id processor tests them).
    (Transport.TCP, "128.232.110.120", 34855, "66.35.250.204", 80, "1:LQU9qZlK+B5F3KDmev6m5PMibrg="),
    (Transport.UDP, "192.168.1.52", 54585, "8.8.8.8", 53, "1:d/FP5EW3wiY1vCndhwleRRKHowQ="),
    (Transport.TCP, "2001:470:e5bf:dead:4957:2174:e82c:4887", 63943, "2607:f8b0:400c:c03::1a", 25,
     "1:/qFaeAR+gFe1KYjMzVDsMv+wgU4="),
])
def test_a_one_connection_touch_carries_its_5_tuple_and_community_id(
        transport: Transport, scanner: str, source_port: int, target: str, port: int, expected: str) -> None:
    alert = replace(TOUCH, transports=(transport,), scanner=ip_address(scanner), source_port=source_port,
                    targets=(ip_address(target),), ports=(port,))
    ecs, ocsf = rendered(alert)
    assert ecs["source"] == {"ip": scanner, "port": source_port}
    assert ecs["destination"] == {"ip": target, "port": port}
    assert ecs["network"] == {"type": f"ipv{ip_address(scanner).version}", "transport": transport.value,
                              "iana_number": {"tcp": "6", "udp": "17"}[transport.value], "community_id": expected}
    assert ecs["related"]["ip"] == [scanner, target]
    (item,) = ocsf["evidences"]
    assert item["src_endpoint"] == {"ip": scanner, "port": source_port}
    assert item["dst_endpoint"] == {"ip": target, "port": port}
    assert item["connection_info"]["protocol_name"] == transport.value
    assert ocsf["unmapped"]["t1046"]["community_id"] == expected
    assert [(o["name"], o["value"]) for o in ocsf["observables"]] == [
        ("evidences[0].src_endpoint.ip", scanner), ("evidences[0].dst_endpoint.ip", target)]


def test_without_the_scanners_port_there_is_no_connection_to_name() -> None:
    """What the correlator sends until it fills ``source_port``/``transports``: valid, and claims nothing."""
    ecs, ocsf = rendered(replace(TOUCH, source_port=None, transports=()))
    assert ecs["source"] == {"ip": "128.232.110.120"}
    assert ecs["destination"] == {"ip": "66.35.250.204", "port": 80}
    assert ecs["network"] == {"type": "ipv4"}
    assert "connection_info" not in ocsf["evidences"][0] and "community_id" not in ocsf["unmapped"]["t1046"]


def test_a_scan_over_two_transports_names_neither_and_lists_both() -> None:
    ecs, ocsf = rendered(SCAN)
    assert ecs["network"] == {"type": "ipv4"}
    assert ecs["t1046"]["transports"] == ["tcp", "udp"]
    assert "destination" not in ecs and ecs["source"] == {"ip": "128.232.110.120"}
    assert ecs["related"]["ip"] == ["128.232.110.120", *(f"10.0.0.{n}" for n in range(1, 11))]
    assert set(ocsf["evidences"][0]) == {"src_endpoint"}
    assert [o["value"] for o in ocsf["observables"]] == ["128.232.110.120"]
    assert [a["uid"] for a in ocsf["finding_info"]["related_analytics"]] == ["T1046-TRW", "T1046-HONEYPORT"]


def test_icmp_over_ipv6_is_ipv6_icmp_and_has_no_community_id_without_type_and_code() -> None:
    alert = replace(TOUCH, scanner=ip_address("fd00::66"), targets=(ip_address("fd00::1"),),
                    transports=(Transport.ICMP,))
    ecs, ocsf = rendered(alert)
    assert ecs["network"] == {"type": "ipv6", "transport": "ipv6-icmp", "iana_number": "58"}
    assert ocsf["evidences"][0]["connection_info"]["protocol_num"] == 58


def test_timestamps_are_evidence_time_and_created_is_emission_time() -> None:
    live = replace(SCAN, created=T0 + 3600.0)
    held_back = replace(SCAN, ts=SCAN.last_seen - 15.0)
    """A replayed update emitted while the watermark stays ``lateness`` behind its newest evidence."""
    for alert, created in ((SCAN, SCAN.ts), (live, T0 + 3600.0), (held_back, SCAN.last_seen)):
        ecs, ocsf = rendered(alert)
        assert ecs["@timestamp"] == rfc3339(SCAN.last_seen) == ecs["event"]["end"]
        assert ecs["event"]["start"] == rfc3339(SCAN.first_seen)
        assert ecs["event"]["created"] == rfc3339(created)
        assert (ocsf["time"], ocsf["start_time"], ocsf["end_time"]) == (
            round(SCAN.last_seen * 1000), round(SCAN.first_seen * 1000), round(SCAN.last_seen * 1000))
        assert ocsf["metadata"]["logged_time"] == round(created * 1000)


def test_versions_are_declared_and_lifecycle_maps_to_ocsf_activity() -> None:
    assert [rendered(alert)[1]["activity_name"] for alert in (TOUCH, SCAN, replace(SCAN, closed=True))] == [
        "Create", "Update", "Close"]
    ecs, ocsf = rendered(SCAN)
    assert ecs["ecs"]["version"] == ECS_VERSION and ocsf["metadata"]["version"] == OCSF_VERSION
    assert ocsf["type_uid"] == 200402 and ocsf["status"] == "New"


def test_an_authorized_scanner_is_an_event_in_ecs_and_suppressed_in_ocsf() -> None:
    ecs, ocsf = rendered(replace(SCAN, authorized="vulnerability scanner"))
    assert ecs["event"]["kind"] == "event" and "authorized_scanner" in ecs["tags"]
    assert ocsf["status_id"] == 3 and ocsf["unmapped"]["t1046"]["authorized"] == {"reason": "vulnerability scanner"}


def _replayed(path: Path) -> list[Alert]:
    alerts: list[Alert] = []
    replay([path], default_config(), io.BytesIO(), on_alert=alerts.append)
    return alerts


@pytest.mark.parametrize("path", SCANS, ids=lambda path: str(path.relative_to(DATA)))
def test_every_replayed_alert_is_valid_ecs_and_ocsf(path: Path) -> None:
    alerts = _replayed(path)
    assert alerts, "every recorded scan alerts"
    for alert in alerts:
        ecs, ocsf = rendered(alert)
        assert ecs["source"]["ip"] in ecs["related"]["ip"]
        assert ocsf["evidences"][0]["src_endpoint"]["ip"] == ecs["source"]["ip"]
        assert ocsf["observables"][0]["value"] == ecs["source"]["ip"]
        assert ecs["event"]["start"] <= ecs["@timestamp"] == ecs["event"]["end"] <= ecs["event"]["created"]
        assert ocsf["time"] <= ocsf["metadata"]["logged_time"]
        if "network" in ecs and "community_id" in ecs["network"]:
            assert re.fullmatch(r"1:[A-Za-z0-9+/]{27}=", ecs["network"]["community_id"])


def _release(version: str) -> tuple[int, ...]:
    return tuple(map(int, version.split(".")))


LATER_OCSF = sorted((v for v in get_packaged_versions() if re.fullmatch(r"\d+\.\d+\.\d+", v)
                     and _release(v) > _release(OCSF_VERSION)), key=_release)


@pytest.mark.parametrize("version", LATER_OCSF)
def test_the_ocsf_findings_are_also_valid_in_every_later_ocsf_version(version: str) -> None:
    """A receiver on a newer OCSF accepts them unchanged (docs/alerts.md says so): relabel and validate."""
    alerts = [TOUCH, SCAN, replace(SCAN, closed=True, authorized="scanner"),
              *_replayed(CAPTURES / "s2_horizontal_syn_routed" / "zeek")]
    for alert in alerts:
        document = to_ocsf(alert, "sensor-1")
        document["metadata"]["version"] = version
        assert validate_alert(document)["metadata"]["version"] == version


@pytest.mark.parametrize("transport", [Transport.TCP, Transport.UDP])
def test_the_correlators_honeyport_touch_renders_what_the_alert_names(transport: Transport) -> None:
    """A real correlator's alert for one touch: valid in both formats whatever it fills in, and the
    one-connection fields appear exactly when the Alert carries the scanner's port and the transport."""
    touch = HoneyportHit(ts=T0, source=ip_address("10.12.0.7"), source_port=40312, target=ip_address("10.12.0.1"),
                         target_port=2222, transport=transport, profile="ssh", node="sensor-1")
    (alert, *_) = Correlator(DetectionConfig()).observe(touch, T0)
    ecs, ocsf = rendered(alert)
    assert (ecs["source"], ecs["destination"]) == (
        {"ip": "10.12.0.7", **({"port": 40312} if alert.source_port is not None else {})},
        {"ip": "10.12.0.1", "port": 2222})
    assert ("community_id" in ecs["network"]) == (alert.source_port is not None and alert.transports == (transport,))
    assert ecs["network"].get("transport", transport.value) == transport.value
    assert ecs["@timestamp"] == rfc3339(T0) and ocsf["time"] == round(T0 * 1000)
