"""The correlator, driven by tables of observations with explicit times (no clock, no sockets)."""

from __future__ import annotations

import dataclasses
import ipaddress
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

import pytest

from sensor.alerts.alert import Alert
from sensor.alerts.catalogue import Action
from sensor.alerts.render import to_ecs
from sensor.config import AllowlistEntry, DetectionConfig
from sensor.daemon.checkpoint import Checkpoint, detection_digest, load_checkpoint, save_checkpoint
from sensor.detect.correlator import Correlator
from sensor.observations import (
    ConnAttempt,
    HoneyportHit,
    MdnsQuery,
    Observation,
    Outcome,
    Touch,
    Transport,
    ZeekDetection,
    ZeekNotice,
)
from tests.alertcheck import validate_alert

ip = ipaddress.ip_address
SCANNER = "10.1.0.66"
OK, REJ, NOREPLY, HALF = Outcome.ESTABLISHED, Outcome.REJECTED, Outcome.UNANSWERED, Outcome.HALF_OPEN


def conn(ts: float, target: str, port: int, outcome: Outcome, source: str = SCANNER,
         transport: Transport = Transport.TCP, tags: Iterable[str] = ()) -> ConnAttempt:
    return ConnAttempt(ts=ts, source=ip(source), source_port=40000, target=ip(target), target_port=port,
                       transport=transport, outcome=outcome, uid=f"C{ts}", zeek_tags=frozenset(tags))


def run(observations: Iterable[Observation], config: DetectionConfig | None = None,
        correlator: Correlator | None = None) -> list[Alert]:
    """Feed observations in order with ``now`` = the latest time seen; check every alert's schema."""
    correlator = correlator or Correlator(config or DetectionConfig())
    alerts: list[Alert] = []
    now = float("-inf")
    for observation in observations:
        now = max(now, observation.ts)
        alerts += correlator.observe(observation, now)
    for alert in alerts:
        validate_alert(to_ecs(alert, "test"))
    return alerts


@pytest.mark.parametrize(("outcomes", "alert_at"), [
    ([REJ] * 3, None),
    ([REJ] * 4, 4),
    ([NOREPLY] * 6, 4),
    ([OK, REJ, REJ, REJ, REJ], None),
    ([OK, REJ, REJ, REJ, REJ, REJ], 6),
    ([OK, OK, REJ, REJ, REJ, REJ, REJ, OK], None),
])
def test_trw_flags_an_all_failing_source_on_its_fourth_failed_first_contact(
        outcomes: list[Outcome], alert_at: int | None) -> None:
    observations = [conn(float(i), f"10.1.1.{i + 1}", 445, outcome) for i, outcome in enumerate(outcomes)]
    correlator = Correlator(DetectionConfig())
    first = None
    for number, observation in enumerate(observations, start=1):
        if correlator.observe(observation, observation.ts) and first is None:
            first = number
    assert first == alert_at


def test_trw_counts_first_contacts_only() -> None:
    retries = [conn(float(i), "10.1.1.1", 445, REJ) for i in range(10)]
    assert run(retries) == []
    alerts = run([*retries, *(conn(20.0 + i, f"10.1.1.{i + 2}", 445, REJ) for i in range(3))])
    assert [a.rule.id for a in alerts] == ["T1046-TRW"]


def test_vertical_scan_fires_at_the_threshold_of_distinct_failed_ports() -> None:
    config = DetectionConfig(port_scan_ports=12)
    eleven = [conn(100 + i * 0.01, "10.1.2.3", 1000 + i, REJ) for i in range(11)]
    assert run(eleven, config) == []
    alerts = run([*eleven, conn(101.0, "10.1.2.3", 2000, REJ)], config)
    assert len(alerts) == 1
    alert = alerts[0]
    assert (alert.action, alert.rule.id, alert.distinct_ports, alert.target) == (
        Action.PORT_SCAN, "T1046-VERTICAL", 12, ip("10.1.2.3"))
    document = to_ecs(alert, "s1")
    assert document["destination"]["ip"] == "10.1.2.3"
    assert document["source"]["ip"] == SCANNER
    assert document["threat"]["technique"]["id"] == ["T1046"]


def test_horizontal_sweep_is_an_address_scan() -> None:
    # successes interleaved keep the TRW quiet, so the distinct-target rule has to find it
    observations = []
    for i in range(12):
        observations.append(conn(10 + i, f"10.1.3.{i + 1}", 3389, NOREPLY))
        observations.append(conn(10 + i + 0.5, f"10.1.9.{i + 1}", 443, OK))
        observations.append(conn(10 + i + 0.6, f"10.1.8.{i + 1}", 443, OK))
    alerts = run(observations)
    assert alerts and alerts[0].rule.id == "T1046-HORIZONTAL"
    assert alerts[0].action is Action.ADDRESS_SCAN


def test_a_slow_port_scan_of_16_ports_over_two_hours_is_a_slow_port_scan() -> None:
    config = DetectionConfig()
    slow = [conn(1000.0 + i * 450.0, "10.1.4.4", 1 + i, NOREPLY) for i in range(16)]
    below = slow[:config.slow_port_scan_ports - 1]
    assert run(below, config) == [], "eleven ports in 80 minutes: below the slow threshold"
    alerts = run(slow, config)
    assert [(a.rules, a.action, a.rule.id) for a in alerts][:1] == [(("T1046-SLOW",), Action.PORT_SCAN, "T1046-SLOW")]
    assert alerts[0].distinct_ports == config.slow_port_scan_ports


def test_a_slow_sweep_of_16_hosts_on_one_port_over_a_day_is_a_slow_address_scan() -> None:
    correlator = Correlator(DetectionConfig())
    sweep = [conn(1000.0 + i * 5400.0, f"10.1.4.{10 + i}", 445, NOREPLY) for i in range(16)]
    alerts = run(sweep, correlator=correlator) + correlator.flush(sweep[-1].ts)
    assert "T1046-SLOW" in alerts[-1].rules
    assert (alerts[-1].action, alerts[-1].rule.id, alerts[-1].distinct_targets) == (
        Action.ADDRESS_SCAN, "T1046-SLOW", 16)


def test_a_fast_scan_is_never_called_slow() -> None:
    fast = [conn(1.0 + i * 0.01, "10.1.4.5", 1 + i, REJ) for i in range(100)]
    correlator = Correlator(DetectionConfig())
    alerts = run(fast, correlator=correlator) + correlator.flush(5.0)
    assert "T1046-SLOW" not in alerts[-1].rules and alerts[-1].rule.id == "T1046-VERTICAL"


def test_a_server_going_down_is_an_outage_not_a_scan_while_a_scan_of_its_unused_ports_is() -> None:
    server, ports = "10.1.7.5", (22, 80, 443, 8080, 3389, 5900, 8443)
    working = [conn(10.0 + i, server, port, OK, source=f"10.1.7.{20 + i}") for i, port in enumerate(ports)]
    down = [conn(100.0 + minute * 60 + i, server, port, REJ, source=source)
            for minute in range(10) for source in ("10.1.7.30", "10.1.7.31") for i, port in enumerate(ports)]
    correlator = Correlator(DetectionConfig())
    assert run(working + down, correlator=correlator) == []
    assert correlator.stats.outages == len(down)
    unused = [conn(800.0 + i, server, 9000 + i, REJ) for i in range(6)]
    alerts = run(unused, correlator=correlator)
    assert [(a.action, a.rule.id, a.distinct_ports) for a in alerts] == [(Action.PORT_SCAN, "T1046-VERTICAL", 6)]


def test_a_port_served_long_ago_counts_again() -> None:
    config = DetectionConfig(served_memory=3600.0)
    working = [conn(10.0, "10.1.7.6", 1000 + i, OK, source="10.1.7.40") for i in range(6)]
    later = [conn(10.0 + 7200.0 + i, "10.1.7.6", 1000 + i, REJ) for i in range(6)]
    assert [a.rule.id for a in run(working + later, config)] == ["T1046-VERTICAL"]


def test_the_served_memory_is_bounded() -> None:
    correlator = Correlator(DetectionConfig(max_served=100))
    run([conn(float(i), f"10.2.{i // 250}.{i % 250 + 1}", 80, OK, source="10.1.7.41") for i in range(1000)],
        correlator=correlator)
    assert len(correlator._served) == 100


def test_half_open_probes_reveal_a_syn_scan_of_open_ports() -> None:
    probes = [conn(1.0 + i, "10.1.5.5", port, HALF) for i, port in enumerate((22, 80, 8080))]
    alerts = run(probes)
    assert [a.rule.id for a in alerts] == ["T1046-HALF-OPEN"]
    assert alerts[0].half_open == 3 and alerts[0].failed == 0


def test_a_busy_benign_client_is_not_a_scanner_though_the_seed_analytic_says_so() -> None:
    """dc(dest_port) by src_ip > 5 flags a workstation using several services; the correlator must not."""
    services = [("10.1.6.10", 445), ("10.1.6.10", 135), ("10.1.6.11", 88), ("10.1.6.11", 389),
                ("10.1.6.11", 636), ("10.1.6.12", 443), ("10.1.6.13", 3268), ("10.1.6.14", 1433),
                ("10.1.6.15", 5985), ("10.1.6.16", 8443)]
    day = []
    for hour in range(8):
        for n, (target, port) in enumerate(services):
            day.append(conn(hour * 3600 + n * 7.0, target, port, OK, source="10.1.6.50"))
        day.append(conn(hour * 3600 + 90.0, "10.1.6.99", 9100, NOREPLY, source="10.1.6.50"))  # dead printer
        day.append(conn(hour * 3600 + 95.0, "10.1.6.16", 8444, REJ, source="10.1.6.50"))  # typo'd port
    ports_by_source: dict[str, set[int]] = defaultdict(set)
    for observation in day:
        ports_by_source[str(observation.source)].add(observation.target_port)
    seed_flagged = {source for source, ports in ports_by_source.items() if len(ports) > 5}
    assert seed_flagged == {"10.1.6.50"}
    assert run(day) == []


@pytest.mark.parametrize("target", ["224.0.0.251", "255.255.255.255", "10.255.255.255", "ff02::fb"])
def test_multicast_and_broadcast_targets_are_not_scan_targets(target: str) -> None:
    assert run(conn(float(i), target, 5353 + i, NOREPLY, transport=Transport.UDP) for i in range(40)) == []


def test_allowlisted_scanner_is_labelled_not_dropped() -> None:
    config = DetectionConfig(allowlist=(AllowlistEntry(ip_network("10.1.0.66/32"), "Nessus"),))
    alerts = run((conn(float(i), f"10.1.7.{i + 1}", 22, REJ) for i in range(5)), config)
    assert alerts and all(a.authorized == "Nessus" for a in alerts)
    document = to_ecs(alerts[0], "s1")
    assert document["event"]["kind"] == "event"
    assert "authorized_scanner" in document["tags"]
    assert document["t1046"]["authorized"]["reason"] == "Nessus"


def test_suppressed_allowlisted_scanner_is_counted() -> None:
    config = DetectionConfig(allowlist=(AllowlistEntry(ip_network("10.1.0.0/24"), "Qualys"),),
                             allowlist_mode="suppress")
    correlator = Correlator(config)
    assert run((conn(float(i), f"10.1.7.{i + 1}", 22, REJ) for i in range(5)), correlator=correlator) == []
    assert correlator.stats.suppressed == 1


def test_allowlist_limited_to_ports_and_hours_does_not_cover_other_probes() -> None:
    entry = AllowlistEntry(ip_network("10.1.0.66/32"), "nightly scan", ports=frozenset({22}), schedule=(60, 300))
    config = DetectionConfig(allowlist=(entry,))
    night = 86400 * 10 + 3600  # 01:00 UTC
    inside = run((conn(night + i, f"10.1.7.{i + 1}", 22, REJ) for i in range(5)), config)
    assert inside and inside[0].authorized == "nightly scan"
    other_port = run((conn(night + i, f"10.1.7.{i + 1}", 23, REJ) for i in range(5)), config)
    assert other_port and other_port[0].authorized is None
    daytime = run((conn(night + 6 * 3600 + i, f"10.1.7.{i + 1}", 22, REJ) for i in range(5)), config)
    assert daytime and daytime[0].authorized is None


def test_spoofed_source_flood_cannot_grow_state_beyond_the_cap_and_a_real_scanner_is_still_caught() -> None:
    config = DetectionConfig(max_sources=1000)
    correlator = Correlator(config)
    flood = (conn(i * 0.001, "10.2.0.1", 80, NOREPLY, source=str(ip("10.100.0.0") + i)) for i in range(20000))
    assert run(flood, correlator=correlator) == []
    assert correlator.tracked_sources <= 1000
    assert correlator.stats.evicted_sources >= 19000
    scan = [conn(30.0 + i, f"10.2.1.{i + 1}", 445, REJ) for i in range(4)]
    assert [a.scanner for a in run(scan, correlator=correlator)] == [ip(SCANNER)]


def test_open_incidents_are_capped_and_closed_with_a_final_update() -> None:
    correlator = Correlator(DetectionConfig(max_incidents=5))
    alerts = []
    for s in range(8):
        for i in range(4):
            alerts += correlator.observe(conn(s * 10 + i, f"10.3.0.{i + 1}", 22, REJ, source=f"10.4.0.{s + 1}"),
                                         s * 10 + i)
    assert correlator.open_incidents == 5
    assert len({a.incident_id for a in alerts}) == 8


def test_a_quiet_incident_gets_its_final_extent_then_closes_when_its_evidence_no_longer_counts() -> None:
    correlator = Correlator(DetectionConfig(idle_timeout=600, final_update_after=30))
    alerts = run((conn(float(i), f"10.5.0.{i + 1}", 22, REJ) for i in range(5)), correlator=correlator)
    assert [(a.probes, a.update, a.closed) for a in alerts] == [(4, 1, False)]
    assert correlator.tick(33.0) == [], "the scanner's last probe (at 4) is not 30 s behind the clock yet"
    final = correlator.tick(34.0)
    assert [(a.closed, a.probes, a.update, a.last_seen) for a in final] == [(False, 5, 2, 4.0)]
    assert correlator.tick(300.0) == [], "nothing new: no update"
    assert correlator.tick(605.0) == [], "idle, but its failed contacts count for the long window: still open"
    assert correlator.open_incidents == 1 and correlator.tracked_sources == 1
    closed = correlator.tick(4.0 + 86400 + 20)
    assert [(a.closed, a.probes, a.update) for a in closed] == [(True, 5, 3)]
    assert correlator.open_incidents == 0 and correlator.tracked_sources == 0


def test_an_incident_without_failed_contacts_closes_after_idle_timeout() -> None:
    correlator = Correlator(DetectionConfig(idle_timeout=600, final_update_after=30))
    touch = HoneyportHit(ts=1.0, source=ip(SCANNER), source_port=5000, target=ip("10.8.0.1"), target_port=2222,
                         transport=Transport.TCP, profile="ssh")
    assert [a.update for a in run([touch], correlator=correlator)] == [1]
    assert correlator.tick(600.0) == []
    assert [(a.closed, a.update) for a in correlator.tick(612.0)] == [(True, 2)]
    assert correlator.open_incidents == 0 and correlator.tracked_sources == 0


def test_growth_updates_double_and_are_spaced_by_update_every() -> None:
    slow = [conn(i * 10.0, "10.6.0.1", 1 + i, REJ) for i in range(100)]
    first, second = run(slow), run(slow)
    assert [a.event_id for a in first] == [a.event_id for a in second]
    assert len({a.incident_id for a in first}) == 1
    assert len({a.event_id for a in first}) == len(first) > 1
    assert [a.distinct_ports for a in first] == [6, 12, 24, 48, 96]
    correlator = Correlator(DetectionConfig(update_every=60, final_update_after=30))
    fast = run([conn(i * 0.1, "10.6.0.2", 1 + i, REJ) for i in range(100)], correlator=correlator)
    assert [a.distinct_ports for a in fast] == [6], "100 ports in 10 s: one update while the scan runs"
    assert [a.distinct_ports for a in correlator.tick(40.0)] == [100], "then its final extent"


def test_the_final_extent_does_not_depend_on_how_often_the_caller_ticks() -> None:
    probes = [conn(i * 7.0, f"10.6.1.{1 + i % 50}", 22 + i % 3, NOREPLY) for i in range(300)]
    finals = []
    for every in (1, 13, 1000):
        correlator = Correlator(DetectionConfig())
        alerts: list[Alert] = []
        for n, probe in enumerate(probes):
            alerts += correlator.observe(probe, probe.ts)
            if n % every == 0:
                alerts += correlator.tick(probe.ts)
        alerts += correlator.flush(probes[-1].ts)
        finals.append((alerts[-1].distinct_targets, alerts[-1].distinct_ports, alerts[-1].probes, alerts[-1].rules))
    assert finals[0] == finals[1] == finals[2] == (50, 3, 300, finals[0][3])


@pytest.mark.parametrize("order", ["in order", "reversed", "shuffled"])
def test_out_of_order_records_reach_the_same_verdict(order: str) -> None:
    probes = [conn(100.0 + i * 20.0, "10.6.2.1", 1000 + i, REJ) for i in range(14)]
    if order == "reversed":
        probes.reverse()
    elif order == "shuffled":
        probes = probes[5:] + probes[:5][::-1]
    correlator = Correlator(DetectionConfig())
    alerts: list[Alert] = []
    now = float("-inf")
    for probe in probes:
        now = max(now, probe.ts - 15.0)
        alerts += correlator.observe(probe, now)
    alerts += correlator.flush(now)
    assert "T1046-VERTICAL" in alerts[-1].rules, "12 of 14 ports fall within one 300 s window, in any order"
    assert (alerts[-1].distinct_ports, alerts[-1].first_seen, alerts[-1].last_seen) == (14, 100.0, 360.0)


def test_a_probe_read_long_after_the_clock_passed_it_is_judged_at_its_own_time() -> None:
    correlator = Correlator(DetectionConfig())
    late_clock = 10 * 86400.0
    alerts: list[Alert] = []
    for i in range(12):
        alerts += correlator.observe(conn(1000.0 + i, "10.6.3.1", 2000 + i, REJ), late_clock)
    assert [a.rule.id for a in alerts if "T1046-VERTICAL" in a.rules][:1] == ["T1046-VERTICAL"]
    assert "T1046-SLOW" not in alerts[-1].rules, "a 12 s scan read ten days late is not a slow scan"


def test_the_main_finding_names_the_strongest_rule_not_the_latest() -> None:
    probes = [conn(i * 0.01, "10.6.4.1", 1 + i, REJ) for i in range(200)]
    probes += [conn(3.0 + i * 0.01, "10.6.4.1", 500 + i, HALF) for i in range(3)]
    correlator = Correlator(DetectionConfig())
    alerts = run(probes, correlator=correlator) + correlator.flush(10.0)
    assert alerts[-1].rules[-1] == "T1046-HALF-OPEN", "the half-open rule fired last"
    assert (alerts[-1].action, alerts[-1].rule.id) == (Action.PORT_SCAN, "T1046-VERTICAL")


def test_out_of_order_log_times_are_tolerated() -> None:
    times = [5.0, 1.0, 4.0, 2.0, 3.0]
    alerts = run(conn(t, f"10.7.0.{n + 1}", 22, REJ) for n, t in enumerate(times))
    assert len(alerts) == 1
    assert (alerts[0].first_seen, alerts[0].last_seen) == (1.0, 5.0)


def test_a_honeyport_hit_alerts_at_once_and_a_burst_of_hits_escalates_once() -> None:
    def hit(ts: float, port: int) -> HoneyportHit:
        return HoneyportHit(ts=ts, source=ip(SCANNER), source_port=5000, target=ip("10.8.0.1"), target_port=port,
                            transport=Transport.TCP, profile="ssh", node="n1")

    alerts = run([hit(1.0, 2222)])
    assert [(a.action, a.rule.id, a.severity) for a in alerts] == [(Action.HONEYPORT_PROBE, "T1046-HONEYPORT", 3)]
    assert alerts[0].honeyport_nodes == ("n1",)
    correlator = Correlator(DetectionConfig(escalation_every=10.0))
    many = run([hit(1.0 + i * 0.01, 2000 + i) for i in range(20)], correlator=correlator)
    assert [a.action for a in many] == [Action.HONEYPORT_PROBE], "the burst's escalation waits for its spacing"
    assert correlator.tick(10.9) == []
    escalated = correlator.tick(11.0)
    assert [(a.action, a.rule.id, a.update) for a in escalated] == [(Action.PORT_SCAN, "T1046-HONEYPORTS", 2)]
    assert escalated[0].honeyports_touched == 20 and escalated[0].failed == 0, "touches of decoys, not failures"
    assert correlator.flush(15.0) == [], "the escalation carried the whole burst"
    closed = correlator.tick(11.0 + 3600 + 10)
    assert [(a.honeyport_hits, a.distinct_ports, a.closed) for a in closed] == [(20, 20, True)]


def test_honeyport_tag_from_zeek_makes_one_touch_significant() -> None:
    alerts = run([conn(1.0, "10.9.0.1", 2323, REJ, tags={"honeyport", "rejected"})])
    assert [a.action for a in alerts] == [Action.HONEYPORT_PROBE]


def test_zeek_scan_notices_become_incidents_and_other_notices_do_not() -> None:
    notices = [
        ZeekNotice(ts=1.0, note="CaptureLoss::Too_Little_Traffic", message="", source=ip("10.0.0.9")),
        ZeekNotice(ts=2.0, note="Scan::Port_Scan", message="10.1.0.66 scanned at least 15 unique ports",
                   source=ip(SCANNER), target=ip("10.10.0.1"), count=15),
    ]
    alerts = run(notices)
    assert [(str(a.scanner), a.action, a.rule.id) for a in alerts] == [
        (SCANNER, Action.PORT_SCAN, "T1046-ZEEK-NOTICE")]


@pytest.mark.parametrize(("sub", "asked", "proven"), [("arp", 40, ("local_link",)), ("arp-routed", 0, ())])
def test_an_arp_sweep_proves_its_source_only_when_the_requests_were_its_own(sub: str, asked: int,
                                                                           proven: tuple[str, ...]) -> None:
    """The package's ARP sweep notice (sub ``arp``) is the scanner's own requests on the link; a routed one
    (``arp-routed``) is a gateway's requests in vain for the scanner's packets: the scanner asked nothing by ARP
    and its address is Zeek's inference."""
    notice = ZeekNotice(ts=5.0, note="T1046::Address_Scan", message="ARP sweep", source=ip(SCANNER), count=40,
                        sub=sub)
    [alert] = run([notice])
    assert (alert.action, alert.arp_asked, alert.distinct_targets, alert.proven_by) == (
        Action.ADDRESS_SCAN, asked, 40, proven)


def test_t1046_log_detection_brings_zeeks_counts() -> None:
    detection = ZeekDetection(ts=10.0, scanner=ip(SCANNER), kind="address_scan", n_targets=80, n_ports=2,
                              n_probes=160, n_failed=158, targets=(ip("10.11.0.1"), ip("10.11.0.2")),
                              ports=(22, 445), first_seen=1.0, last_seen=10.0, uids=("Cabc",))
    alerts = run([detection])
    assert len(alerts) == 1
    alert = alerts[0]
    assert (alert.action, alert.distinct_targets, alert.distinct_ports, alert.probes, alert.first_seen) == (
        Action.ADDRESS_SCAN, 80, 2, 160, 1.0)
    assert alert.uids == ("Cabc",)


def mdns(ts: float, name: str, qtype: str = "PTR", port: int = 5353, source: str = "10.12.0.5") -> MdnsQuery:
    return MdnsQuery(ts=ts, source=ip(source), source_port=port, name=name, qtype=qtype,
                     legacy_unicast=port != 5353)


def test_mdns_enumeration_and_sensitive_browse_alert_but_ordinary_chatter_does_not() -> None:
    chatter = [mdns(float(i), name) for i, name in enumerate(
        ["_airplay._tcp.local", "_raop._tcp.local", "_googlecast._tcp.local", "_ipp._tcp.local",
         "printer-3.local"])]
    assert run(chatter) == []
    alerts = run([*chatter, mdns(10.0, "_services._dns-sd._udp.local")])
    assert [a.action for a in alerts] == [Action.MDNS_SERVICE_ENUMERATION]
    browse = run([mdns(1.0, "_ssh._tcp.local", port=51000)])
    assert [a.action for a in browse] == [Action.MDNS_SERVICE_BROWSE]
    assert browse[0].mdns_names == ("_ssh._tcp.local",)


def test_decoy_lookup_then_honeyport_touch_is_one_high_severity_incident() -> None:
    config = DetectionConfig(mdns_decoy_names=("backup-nas._smb._tcp.local",))
    touch = HoneyportHit(ts=2.0, source=ip("10.12.0.7"), source_port=5000, target=ip("10.12.0.1"),
                         target_port=4445, transport=Transport.TCP, profile="smb")
    correlator = Correlator(config)
    alerts = run([mdns(1.0, "backup-nas._smb._tcp.local", "SRV", source="10.12.0.7"), touch], correlator=correlator)
    alerts += correlator.tick(12.0)
    assert len({a.incident_id for a in alerts}) == 1
    assert alerts[-1].severity >= 3 and alerts[-1].confidence == "high"
    assert set(alerts[-1].evidence_sources) == {"mdns", "honeyport"}


def ip_network(text: str) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(text)


def test_config_thresholds_are_respected() -> None:
    config = dataclasses.replace(DetectionConfig(), port_scan_ports=40, slow_port_scan_ports=50)
    observations = [conn(i * 0.1, "10.13.0.1", 1 + i, REJ) for i in range(40)]
    assert run(observations[:39], config) == []
    assert [(a.rule.id, a.distinct_ports) for a in run(observations, config)] == [("T1046-VERTICAL", 40)]


def test_a_touch_carries_its_first_bytes_and_a_late_follow_up_waits_for_the_next_update() -> None:
    touch = HoneyportHit(ts=1.0, source=ip(SCANNER), source_port=5000, target=ip("10.8.0.1"), target_port=8081,
                         transport=Transport.TCP, profile="http", payload=b"GET / HTTP/1.0\r\n\r\n")
    (alert,) = run([touch])
    assert (alert.update, alert.honeyport_payloads) == (1, (b"GET / HTTP/1.0\r\n\r\n",))
    document = to_ecs(alert, "n")["t1046"]
    assert document["sample"]["honeyport_payloads"] == ["GET / HTTP/1.0\\x0d\\x0a\\x0d\\x0a"]
    assert [(t["port"], t["profile"], t["touch"], t["payload"]) for t in document["sample"]["honeyport_touches"]] == [
        (8081, "http", "connect", "GET / HTTP/1.0\\x0d\\x0a\\x0d\\x0a")], "the payload is tied to its port"
    assert (alert.source_port, alert.transports) == (5000, (Transport.TCP,)), "one connection"
    silent = dataclasses.replace(touch, payload=b"")
    late = dataclasses.replace(touch, ts=6.0, follow_up=True, payload=b"HELP\r\n")
    correlator = Correlator(DetectionConfig())
    assert [a.honeyport_payloads for a in run([silent, late], correlator=correlator)] == [()]
    (flushed,) = correlator.flush(60.0)
    assert (flushed.update, flushed.honeyport_hits, flushed.probes) == (2, 1, 1), "the follow-up is no second touch"
    assert [(t.port, t.payload) for t in flushed.touches] == [(8081, b"HELP\r\n")]
    assert correlator.flush(60.0) == [], "nothing left unsent"


STEALTH = Outcome.STEALTH


def test_probes_without_a_handshake_are_their_own_rule_and_not_first_contacts() -> None:
    config = DetectionConfig(stealth_probes=6)
    five = [conn(1.0 + i, "10.14.0.1", 20 + i, STEALTH) for i in range(5)]
    assert run(five, config) == []
    alerts = run([*five, conn(7.0, "10.14.0.1", 99, STEALTH)], config)
    assert [a.rule.id for a in alerts] == ["T1046-STEALTH"]
    assert alerts[0].failed == 6 and alerts[0].action is Action.PORT_SCAN
    sweep = [conn(1.0 + i, f"10.14.1.{i + 1}", 80, STEALTH) for i in range(5)]
    assert run(sweep, config) == [], "five stealth probes of new hosts do not move the random walk"


@pytest.mark.parametrize(("state", "history", "resp_pkts", "missed", "outcome"), [
    ("RSTR", "Fr", 1, 0, Outcome.STEALTH),
    ("SH", "F", 0, 0, Outcome.STEALTH),  # FIN, Xmas or Maimon to a silent target
    ("OTH", "A", 0, 0, Outcome.STEALTH),  # ACK to a silent target
    ("RSTRH", "r", 1, 0, Outcome.STEALTH),
    ("RSTRH", "Ar", 1, 0, Outcome.STEALTH),
    ("OTH", "^Fr", 1, 0, Outcome.STEALTH),
    ("OTH", "", 0, 0, Outcome.STEALTH),  # NULL, CWR, ECE, PSH or URG only to a silent target: no letter
    ("OTH", "", 1, 0, Outcome.OTHER),  # no letter, yet an answer: not a probe's
    ("OTH", "^", 1, 0, Outcome.OTHER),  # flipped: the "originator" sent nothing
    ("OTH", "Dd", 2, 0, Outcome.OTHER),
    ("OTH", "Ad", 2, 0, Outcome.OTHER),
    ("OTH", "Da", 2, 0, Outcome.OTHER),
    ("OTH", "D", 0, 0, Outcome.OTHER),  # a payload is no stealth probe
    ("SH", "SF", 0, 0, Outcome.UNANSWERED),
    ("S0", "S", 0, 0, Outcome.UNANSWERED),
    ("S0", "SAD", 0, 0, Outcome.OTHER),  # the originator acknowledged an answer the capture missed (one way seen)
    ("SH", "SADF", 0, 0, Outcome.OTHER),
    ("REJ", "Sr", 1, 0, Outcome.REJECTED),
    ("RSTO", "ShR", 1, 0, Outcome.HALF_OPEN),  # nmap -sS to an open port
    ("RSTO", "ShR", 1, 100, Outcome.OTHER),  # ... but the capture lost bytes of it
    ("RSTO", "ShGR", 1, 0, Outcome.OTHER),
    ("S1", "Sh", 1, 0, Outcome.OTHER),  # the client's ACK missing from the capture: no probe
    ("S1", "Sh", 3, 0, Outcome.OTHER),
    ("SHR", "Shr", 2, 0, Outcome.OTHER),
    ("S1", "Shadf", 5, 0, Outcome.ESTABLISHED),  # the server went on: the capture lost the client's packets
    ("SF", "ShADadFf", 4, 0, Outcome.ESTABLISHED),
])
def test_tcp_outcomes_from_conn_state_and_history(state: str, history: str, resp_pkts: int, missed: int,
                                                  outcome: Outcome) -> None:
    from sensor.zeek.records import conn_outcome, verdict

    assert conn_outcome("tcp", state, history, resp_pkts, frozenset(), missed > 0) is outcome
    assert verdict(("tcp", state, history, resp_pkts > 0, missed > 0)) == (Transport.TCP, outcome)


def test_a_scanner_that_resumes_after_its_final_extent_gets_an_update_at_once_across_a_restart(
        tmp_path: Path) -> None:
    config = DetectionConfig()
    correlator = Correlator(config)
    alerts = run([conn(float(i), "10.15.0.1", 100 + i, REJ) for i in range(8)], correlator=correlator)
    assert [a.update for a in alerts] == [1]
    settled = correlator.tick(60.0)
    assert [(a.update, a.distinct_ports) for a in settled] == [(2, 8)], "the final extent once it is quiet"
    path = tmp_path / "checkpoint"
    save_checkpoint(path, Checkpoint(seq=1, detection=detection_digest(config), streams={}, done=frozenset(),
                                     correlator=correlator, clock=60.0))
    restored = load_checkpoint(path, config)
    assert restored is not None
    again = restored.correlator.observe(conn(600.0, "10.15.0.1", 999, REJ), 600.0)
    assert [(a.update, a.distinct_ports, a.incident_id) for a in again] == [(3, 9, alerts[0].incident_id)], \
        "the rescan is news: at once, in the same incident"
    assert restored.correlator.observe(conn(601.0, "10.15.0.1", 1000, REJ), 601.0) == [], \
        "and the scan that goes on coalesces again"


def test_a_flagged_hosts_working_connections_after_its_scan_settled_make_no_update() -> None:
    correlator = Correlator(DetectionConfig())
    run([conn(float(i), "10.15.1.1", 100 + i, REJ) for i in range(8)], correlator=correlator)
    assert len(correlator.tick(60.0)) == 1
    benign = [conn(100.0 + i * 40, f"10.15.2.{i + 1}", 443, OK) for i in range(20)]
    assert run(benign, correlator=correlator) == []
    assert correlator.tick(2000.0) == [], "a workstation that scanned once is not re-reported for browsing"


def test_an_escalation_held_by_its_spacing_is_not_lost_at_the_end() -> None:
    """A SYN scan of honeyports, then a connection to one of them: the handshake proves the source (the
    severity rises) without growing the incident; held by escalation_every, it still goes out at shutdown."""
    correlator = Correlator(DetectionConfig(escalation_every=10.0))
    hits = [HoneyportHit(ts=1.0 + i * 0.01, source=ip(SCANNER), source_port=5000 + i, target=ip("10.8.0.1"),
                         target_port=2000 + i, transport=Transport.TCP, profile="ssh", touch=Touch.HALF_OPEN)
            for i in range(20)]
    alerts = run(hits, correlator=correlator) + correlator.tick(12.0)
    assert [(a.update, a.honeyports_touched, a.proven_by) for a in alerts] == [(1, 1, ()), (2, 20, ())]
    connect = dataclasses.replace(hits[0], ts=13.0, source_port=6000, touch=Touch.CONNECT)
    assert correlator.observe(connect, 13.0) == [], "the escalation is held by its spacing"
    (last,) = correlator.flush(14.0)
    assert (last.update, last.probes, last.proven_by) == (3, 21, ("tcp_handshake",)), "not growth, but news"
    assert last.severity > alerts[-1].severity
