"""The one human sentence of an alert (``message``): the words of its main finding (``rule``), true to the
evidence -- honeyport touches as touches of named decoys, a scan's extent with what failed and what
answered, an ARP sweep by the addresses Zeek saw it ask for -- and never a count of nothing. It renders only
what the Alert says (docs/alerts.md)."""

from __future__ import annotations

from sensor.alerts.alert import Alert
from sensor.alerts.identity import named
from sensor.observations import Touch


def _count(number: int, noun: str, plural: str = "") -> str:
    return f"{number} {noun if number == 1 else plural or noun + 's'}"


_TOUCH_WORDS = {Touch.HALF_OPEN: "half-open SYN probes", Touch.CONNECT: "TCP connections",
                Touch.DATAGRAM: "UDP datagrams", Touch.SYN: "SYNs left unanswered",
                Touch.UNKNOWN: "TCP touches of unknown kind"}
_SCAN_VERBS = {"port_scan": "scanned", "address_scan": "swept", "network_scan": "probed"}
_HONEYPORT_RULES = ("T1046-HONEYPORT", "T1046-HONEYPORTS", "T1046-HONEYPORT-MANY-SOURCES")


def _where(alert: Alert) -> str:
    return str(alert.target) if alert.target is not None else _count(alert.distinct_targets, "host")


def _touched(alert: Alert, who: str) -> str:
    """The words of an incident named by its honeyport touches: touches of named decoys."""
    touched = alert.honeyports_touched or alert.honeyport_hits
    profiles = ", ".join(alert.honeyport_profiles[:8])
    kinds = ", ".join(_TOUCH_WORDS[touch] for touch in alert.touch_kinds)
    what = f"{who} touched {_count(touched, 'honeyport')} on {_where(alert)}"
    if profiles:
        what += f": {profiles}"
    if kinds:
        what += f"; {kinds}"
    if alert.scanner is None:
        what += "; none of these proves its source address: one sender could have forged them all"
    if alert.failed:
        what += f"; {alert.failed} of {alert.probes} probes failed elsewhere"
    return what


def _scanned(alert: Alert, who: str) -> str:
    """The words of a scan: its shape and extent (an outbound scan's targets outside the local networks), what
    failed, what answered."""
    shape = (alert.shape or alert.action).value
    out = " outside the local networks" if alert.shape is not None else ""
    verb = _SCAN_VERBS.get(shape, "probed")
    if alert.rule.id == "T1046-STEALTH":
        verb = "sent probes without a handshake (FIN, NULL, Xmas, ACK) to"
    elif alert.rule.id == "T1046-SLOW":
        verb = f"slowly {verb}"
    targets, ports = alert.distinct_targets, alert.distinct_ports
    if not ports and alert.arp_asked:
        return f"{who} asked by ARP for {_count(alert.arp_asked, 'address', 'addresses')} (an ARP sweep)"
    if not ports and not targets:
        kind = alert.action.value.replace("_", " ")
        return f"{who} was reported by Zeek for a {kind} ({', '.join(alert.zeek_notes)})"
    if shape == "port_scan" or not targets:
        what = f"{who} {verb} {_count(ports, 'port')}" + (f" on {_where(alert)}{out}" if targets else out)
    else:
        what = f"{who} {verb} {_count(targets, 'host')}{out}" + (f" on {_count(ports, 'port')}" if ports else "")
    details = []
    if alert.failed:
        details.append(f"{alert.failed} of {alert.probes} probes failed")
    if alert.half_open:
        details.append(f"{alert.half_open} half-open")
    if alert.honeyports_touched:
        details.append(f"touched {_count(alert.honeyports_touched, 'honeyport')}")
    if details:
        what += ": " + ", ".join(details)
    if alert.probes:
        found = alert.services_found
        what += f"; found {_count(found, 'open service') if found else 'no open service'}"
    elif alert.zeek_notes:
        what += " (as Zeek reported it)"
    return what


def message(alert: Alert) -> str:
    """One human sentence about the incident, in the words of its main finding (``rule``)."""
    who = named(alert) if alert.scanner is not None else _count(alert.sources, "source")
    rule = alert.rule.id
    if rule in _HONEYPORT_RULES:
        what = _touched(alert, who)
    elif alert.action.value == "mdns_service_enumeration":
        what = f"{who} enumerated the service types advertised over mDNS"
    elif alert.action.value == "mdns_service_browse":
        what = f"{who} browsed mDNS for {', '.join(alert.mdns_names[:3]) or 'services'}"
    elif alert.action.value == "mdns_decoy_lookup":
        what = f"{who} looked up mDNS decoy {', '.join(alert.mdns_names[:1])}"
    else:
        what = _scanned(alert, who)
    if alert.lockstep:
        others = ", ".join(map(str, alert.lockstep[:3])) + (", …" if len(alert.lockstep) > 3 else "")
        what += (f"; in lockstep with {_count(len(alert.lockstep), 'other source')} ({others}): decoys, as nmap -D "
                 "sends, or their sender")
    authorized = f" (authorized: {alert.authorized})" if alert.authorized else ""
    return f"{what}{authorized}."
