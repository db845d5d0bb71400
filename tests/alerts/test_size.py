"""Every alert has a bounded size: the worst an attacker can make of one incident -- honeyport payloads of a
remote node, mDNS names of control and override characters, thousands of crafted Zeek notice names, long
uids -- renders within the maximum docs/alerts.md gives, in ECS and in OCSF."""

from __future__ import annotations

import re
from ipaddress import ip_address
from pathlib import Path

from sensor.alerts.alert import Alert
from sensor.alerts.render import render_document
from sensor.config import default_config
from sensor.detect.correlator import Correlator
from sensor.observations import HoneyportHit, MdnsQuery, Transport, ZeekDetection, ZeekNotice

DOCS = Path(__file__).resolve().parents[2] / "docs" / "alerts.md"
SCANNER = ip_address("fd00:6666:6666:6666:6666:6666:6666:6666")


def _worst_incident() -> list[Alert]:
    detection = default_config().detection
    correlator = Correlator(detection)
    alerts: list[Alert] = []
    ts = 1795000000.0
    for number in range(40):
        ts += 1.0
        target = ip_address(f"fd00:1111:2222:3333:4444:5555:6666:{number:x}")
        alerts += correlator.observe(HoneyportHit(ts, SCANNER, 65535, target, 60000 + number, Transport.TCP,
                                                  f"{number:02d}" + "x" * 30,
                                                  payload=bytes([0x80 + number]) + b"\xff" * 4095,
                                                  node=f"{'n' * 64}@fd00:9999:9999:9999:9999:9999:9999:{number:x}"), ts)
        alerts += correlator.observe(MdnsQuery(ts, SCANNER, 40000, f"_{number}{chr(0x202E) * 300}._tcp.local", "PTR",
                                               legacy_unicast=True, uid=chr(0x2066) * 300), ts)
    for number in range(3000):
        alerts += correlator.observe(ZeekNotice(ts, f"{number}{chr(0x202E) * 300}::Port_Scan", "m", SCANNER,
                                                uid=f"{chr(0x2066) * 300}{number}"), ts)
    alerts += correlator.observe(ZeekDetection(ts, SCANNER, "port_scan", 10**9, 10**9, 10**9, 10**9,
                                               uids=tuple(f"{n}{chr(0x2069) * 300}" for n in range(100))), ts)
    return alerts + correlator.flush(ts + 1) + correlator.tick(ts + 10**7)


def _documented() -> int:
    found = re.search(r"An alert is at\s+most\s+([\d,]+)\s+bytes", DOCS.read_text())
    assert found, "docs/alerts.md gives the maximum size of an alert"
    return int(found.group(1).replace(",", ""))


def test_the_worst_incident_an_attacker_can_make_renders_within_the_documented_maximum() -> None:
    alerts = _worst_incident()
    sizes = [len(render_document(alert, "s" * 64, fmt)) for alert in alerts for fmt in ("ecs", "ocsf")]
    print(max(sizes))
    assert alerts[-1].honeyport_payloads and len(alerts[-1].zeek_notes) > 1
    assert max(sizes) <= _documented()
