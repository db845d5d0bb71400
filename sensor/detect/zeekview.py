"""Zeek's own view: what a scan notice (``Scan::*``, simple-scan's, this package's ``T1046::*``) or a
t1046.log line stands for, and which rule it counts as. Pure mapping; the correlator applies it."""

from __future__ import annotations

from sensor.alerts.catalogue import Action

ZEEK_KINDS = {
    "port_scan": Action.PORT_SCAN,
    "address_scan": Action.ADDRESS_SCAN,
    "random_scan": Action.NETWORK_SCAN,
    "network_scan": Action.NETWORK_SCAN,
    "honeyport_probe": Action.HONEYPORT_PROBE,
    "dark_address_probe": Action.HONEYPORT_PROBE,
    "mdns_service_enumeration": Action.MDNS_SERVICE_ENUMERATION,
    "mdns_service_browse": Action.MDNS_SERVICE_BROWSE,
    "mdns_browse": Action.MDNS_SERVICE_BROWSE,
}
"""Notice names (after ``::``, lower case) and t1046.log kinds, to the action they report."""


def zeek_action(name: str) -> Action | None:
    """The action a Zeek notice name (``Scan::Port_Scan``) or t1046.log kind (``port_scan``) stands for."""
    return ZEEK_KINDS.get(name.rpartition("::")[2].lower())


def rule_for_zeek(action: Action, scan_rule: str) -> str:
    """The rule a Zeek report of ``action`` counts as; ``scan_rule`` for scans (notice or t1046.log)."""
    if action is Action.HONEYPORT_PROBE:
        return "T1046-HONEYPORT"
    if action is Action.MDNS_SERVICE_ENUMERATION:
        return "T1046-MDNS-ENUM"
    if action is Action.MDNS_SERVICE_BROWSE:
        return "T1046-MDNS-SENSITIVE"
    return scan_rule
