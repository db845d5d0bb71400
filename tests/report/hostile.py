"""Alerts whose attacker-controlled fields (honeyport payload, mDNS name) hold markup and mathtext."""

from __future__ import annotations

from ipaddress import ip_address
from pathlib import Path

from sensor.alerts.render import render_line
from sensor.config import default_config
from sensor.detect.correlator import Correlator
from sensor.observations import HoneyportHit, MdnsQuery, Transport

SCANNER = "10.66.0.5"
PAYLOAD = b"<script>alert(1)</script>$\\frac{$"
MDNS_NAME = "_<img src=x onerror=alert(2)>$\\bad{._tcp.local"


def hostile_alerts(path: Path) -> Path:
    """Write, with the real correlator and renderer, the ECS alerts of a scanner that touched a honeyport
    with ``PAYLOAD`` and browsed mDNS for ``MDNS_NAME`` among other types."""
    correlator = Correlator(default_config().detection)
    scanner = ip_address(SCANNER)
    alerts = correlator.observe(HoneyportHit(1000.0, scanner, 40001, ip_address("10.66.0.1"), 2222, Transport.TCP,
                                             "ssh", payload=PAYLOAD), 1000.0)
    # One question for one ordinary type is weak evidence (docs/mdns.md): the hostile name is one of three
    # unusual types, which together make a browse.
    for offset, name in enumerate((MDNS_NAME, "_t1046a._tcp.local", "_t1046b._tcp.local")):
        alerts += correlator.observe(MdnsQuery(1001.0 + offset, scanner, 40000, name, "PTR", legacy_unicast=True),
                                     1001.0 + offset)
    alerts += correlator.flush(1002.0)
    path.write_bytes(b"".join(render_line(alert, "sensor-test") for alert in alerts))
    return path
