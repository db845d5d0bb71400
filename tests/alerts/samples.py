"""Alerts built by hand for the rendering tests: shapes the correlator sends, with and without one peer."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import ip_address

from sensor.alerts.alert import Alert, Answered, Touched
from sensor.alerts.catalogue import RULES, Action
from sensor.observations import Touch, Transport

T0 = 1_796_000_000.25
TOUCH = Alert(
    incident_id="0123456789abcdef01234567", update=1, ts=T0 + 2.0, action=Action.HONEYPORT_PROBE,
    rule=RULES["T1046-HONEYPORT"], rules=("T1046-HONEYPORT",), scanner=ip_address("128.232.110.120"),
    first_seen=T0, last_seen=T0, probes=1, failed=1, half_open=0, distinct_targets=1, distinct_ports=1,
    targets=(ip_address("66.35.250.204"),), ports=(80,), evidence_sources=("honeyport",), uids=(),
    honeyport_hits=1, honeyport_profiles=("http",), honeyport_nodes=("sensor-1",),
    honeyport_payloads=(b"GET / HTTP/1.0\r\n\r\n",), mdns_names=(), zeek_notes=(), risk_score=75,
    confidence="high", authorized=None, transports=(Transport.TCP,), source_port=34855,
    proven_by=("tcp_handshake",), honeyports_touched=1, touch_kinds=(Touch.CONNECT,),
    touches=(Touched(T0, ip_address("66.35.250.204"), Transport.TCP, 80, "http", Touch.CONNECT,
                     b"GET / HTTP/1.0\r\n\r\n"),),
)
"""A honeyport touch with one peer: the 5-tuple of the Community ID spec's example flow."""
SCAN = replace(
    TOUCH, update=3, ts=T0 + 45.0, action=Action.NETWORK_SCAN, rule=RULES["T1046-HORIZONTAL"],
    rules=("T1046-TRW", "T1046-HORIZONTAL", "T1046-HONEYPORT"), last_seen=T0 + 40.5, probes=90, failed=88,
    distinct_targets=30, distinct_ports=3, targets=tuple(ip_address(f"10.0.0.{n}") for n in range(1, 11)),
    ports=(22, 53, 80), evidence_sources=("zeek", "honeyport"), transports=(Transport.TCP, Transport.UDP),
    source_port=None, uids=("CbQf3r1o8NoHjvQdWe",), confidence="medium", risk_score=80, proven_by=(),
    unproven=("syn_only", "udp"), services_found=1,
    services=(Answered(ip_address("10.0.0.3"), Transport.TCP, 22, "ssh"),),
)
"""A scan over TCP and UDP with many targets: no single peer, port or transport."""
