"""The catalogue of every ``event.action`` and ``rule.id`` the sensor emits (docs/alerts.md documents each)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Action(StrEnum):
    """``event.action``: what the scanner did, in the analyst's words."""

    PORT_SCAN = "port_scan"
    """Vertical: many ports of one target."""
    ADDRESS_SCAN = "address_scan"
    """Horizontal: one or a few ports across many targets."""
    NETWORK_SCAN = "network_scan"
    """Many targets and many ports, or failed first contacts with no dominant shape."""
    OUTBOUND_SCAN = "outbound_scan"
    """A host inside ``local_nets`` scanned targets outside them (its shape: ``t1046.scan_shape``)."""
    HONEYPORT_PROBE = "honeyport_probe"
    """Honeyports were touched, and the touches form no scan shape (or come from many unproven sources)."""
    MDNS_SERVICE_ENUMERATION = "mdns_service_enumeration"
    """A query for ``_services._dns-sd._udp.local``: a list of every service type on the link."""
    MDNS_SERVICE_BROWSE = "mdns_service_browse"
    """Browsing for remote-access or file-sharing services, or for many service types."""
    MDNS_DECOY_LOOKUP = "mdns_decoy_lookup"
    """A lookup of a decoy service instance that only a browsing scanner knows of."""


@dataclass(frozen=True, slots=True)
class Rule:
    """A detection rule: ``rule.id``, ``rule.name`` and the risk it carries on its own."""

    id: str
    name: str
    risk: int
    """0-100, ``event.risk_score`` when this rule alone fired."""
    description: str


RULES: dict[str, Rule] = {
    rule.id: rule
    for rule in (
        Rule("T1046-TRW", "Failed first contacts (threshold random walk)", 50,
             "Sequential hypothesis test on the outcome of first contacts to new targets (Jung et al. 2004)."),
        Rule("T1046-VERTICAL", "Many closed ports on one target", 55,
             "Distinct failed ports on one target within the short window reached the threshold."),
        Rule("T1046-HORIZONTAL", "One port probed across many targets", 55,
             "Distinct failed targets on one port within the short window reached the threshold."),
        Rule("T1046-HALF-OPEN", "Stealth SYN probes (half-open connections)", 60,
             "Connections SYN-ACKed by the target and reset by the originator before the handshake completed."),
        Rule("T1046-STEALTH", "Stealth TCP probes without a handshake", 65,
             "TCP segments without a SYN (FIN, NULL, Xmas, ACK, Maimon) answered by a reset or not at all."),
        Rule("T1046-SLOW", "Slow scan over a long window", 45,
             "Distinct failed (target, port) pairs within the long window reached the threshold."),
        Rule("T1046-ZEEK-NOTICE", "Zeek scan notice", 50,
             "A scan notice raised by Zeek (Scan::*, simple-scan or this package's T1046::*)."),
        Rule("T1046-ZEEK-DETECTION", "Zeek t1046 package detection", 55,
             "A line of the t1046.log written by this project's Zeek package."),
        Rule("T1046-HONEYPORT", "Honeyport touched", 75,
             "A port or address that no legitimate client uses was touched."),
        Rule("T1046-HONEYPORTS", "Several honeyports touched", 85,
             "Distinct honeyports (target, port) touched by one source within the short window reached the "
             "threshold."),
        Rule("T1046-HONEYPORT-MANY-SOURCES", "Honeyports touched from many unproven sources", 60,
             "Many distinct sources touched honeyports within a short window with packets that prove nothing of "
             "their address (UDP datagrams, half-open SYNs): one sender may have forged them all."),
        Rule("T1046-MDNS-ENUM", "mDNS service type enumeration", 40,
             "A query for _services._dns-sd._udp.local, which lists every service type on the link."),
        Rule("T1046-MDNS-SENSITIVE", "mDNS browse for remote-access services", 40,
             "A PTR browse for a remote-access or file-sharing service type (_ssh._tcp, _smb._tcp, ...)."),
        Rule("T1046-MDNS-MANY-TYPES", "mDNS browse for many service types", 45,
             "One host browsed many distinct service types within the short window."),
        Rule("T1046-MDNS-LEGACY", "Legacy unicast mDNS browse", 45,
             "mDNS browses sent from a port other than 5353, as dig and nmap's scripts do (mDNS stacks of "
             "ordinary hosts send from 5353), brought one host's browsing to the alert level: a sensitive "
             "type, or several unusual types within the short window."),
        Rule("T1046-MDNS-DECOY", "mDNS decoy looked up", 80,
             "A decoy service instance that is only advertised as bait was resolved."),
    )
}
