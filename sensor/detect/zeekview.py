"""Zeek's own view: what a scan notice (``Scan::*``, simple-scan's, this package's ``T1046::*``) or a
t1046.log line stands for, which rule it counts as, and what it adds to its source's evidence."""

from __future__ import annotations

from sensor.alerts.catalogue import Action
from sensor.detect.evidence import Evidence
from sensor.observations import ZeekDetection, ZeekNotice

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
    "outbound_port_scan": Action.PORT_SCAN,
    "outbound_address_scan": Action.ADDRESS_SCAN,
    "outbound_random_scan": Action.NETWORK_SCAN,
    "outbound_scan": Action.NETWORK_SCAN,
}
"""Notice names (after ``::``, lower case) and t1046.log kinds, to the action (for an outbound scan, the
shape) they report."""


def zeek_report(name: str) -> tuple[Action, bool] | None:
    """What a Zeek notice name (``Scan::Port_Scan``) or t1046.log kind (``port_scan``) stands for: its action
    (an outbound scan's shape) and whether it is an outbound scan (``T1046::Outbound_Scan``,
    ``outbound_port_scan`` …: the package's scanner inside ``Site::local_nets``, its targets outside)."""
    kind = name.rpartition("::")[2].lower()
    action = ZEEK_KINDS.get(kind)
    return None if action is None else (action, kind.startswith("outbound_"))


def notice_shape(notice: ZeekNotice, action: Action) -> Action:
    """The shape of an outbound scan notice (``T1046::Outbound_Scan``), from what the package sets: ``dst`` for a
    port scan, ``p`` alone for an address scan, neither for a random one."""
    if notice.note.rpartition("::")[2].lower() != "outbound_scan":
        return action
    if notice.target is not None:
        return Action.PORT_SCAN
    return Action.ADDRESS_SCAN if notice.target_port is not None else Action.NETWORK_SCAN


def rule_for_zeek(action: Action, scan_rule: str, sensitive: bool = True) -> str:
    """The rule a Zeek report of ``action`` counts as; ``scan_rule`` for scans (notice or t1046.log). An mDNS
    browse is one for remote access when ``sensitive``, else one of many types (the package weighs browses as
    :mod:`sensor.detect.mdns` does, so it notices a browse of many unusual types too)."""
    if action is Action.HONEYPORT_PROBE:
        return "T1046-HONEYPORT"
    if action is Action.MDNS_SERVICE_ENUMERATION:
        return "T1046-MDNS-ENUM"
    if action is Action.MDNS_SERVICE_BROWSE:
        return "T1046-MDNS-SENSITIVE" if sensitive else "T1046-MDNS-MANY-TYPES"
    return scan_rule


ARP_SWEEP = "arp"
"""The ``sub`` of this package's notice of an ARP sweep: the scanner's own ARP requests, on the link Zeek sees,
for addresses that did not answer or whose answer it did not use (docs/zeek.md). A routed sweep's notice
(``arp-routed``: a gateway's requests in vain for the packets it forwarded from the scanner) counts its addresses
as targets only: the scanner asked nothing by ARP, and nothing on the link proves its address."""


def notice_evidence(detail: Evidence, notice: ZeekNotice, action: Action, outbound: bool, sample: int) -> None:
    """What a scan notice adds to its source's evidence: Zeek's word, its uid, its target and port, the count
    it names (ports of a port scan, addresses of a sweep), and whether it proves the source: the scanner's own
    ARP sweep is traffic on the local link; a gateway's ARP requests for the scanner's packets (a routed sweep)
    and any other notice are Zeek's word without the packets."""
    detail.zeek_said(notice.note, action, outbound)
    detail.sample_uids((notice.uid,), sample)
    detail.count(() if notice.target is None else (notice.target,),
                 () if notice.target_port is None else (notice.target_port,), outside=outbound)
    count = notice.count or 0
    targets, ports, probes, failed = detail.reported
    if action is Action.PORT_SCAN:
        detail.reported = (targets, max(ports, count), probes, failed)
    elif action in (Action.ADDRESS_SCAN, Action.NETWORK_SCAN):
        detail.reported = (max(targets, count), ports, probes, failed)
    if notice.sub == ARP_SWEEP:
        detail.arp = max(detail.arp, count)
        detail.proof.setdefault("local_link")
    else:
        detail.doubt.setdefault("zeek_report")


def detection_evidence(detail: Evidence, detection: ZeekDetection, action: Action, outbound: bool,
                       sample: int) -> None:
    """What a t1046.log line adds: Zeek's word, its counts (the largest reported), its sample and uids."""
    detail.zeek_said(f"t1046.log:{detection.kind}", action, outbound)
    old = detail.reported
    detail.reported = (max(old[0], detection.n_targets), max(old[1], detection.n_ports),
                       max(old[2], detection.n_probes), max(old[3], detection.n_failed))
    detail.count(detection.targets, detection.ports, outside=outbound)
    detail.sample_uids(detection.uids, sample)
    detail.doubt.setdefault("zeek_report")
