"""Outbound scans (docs/detection.md, "Outbound scans"): an internal source's scans of targets outside
``local_nets`` are their own action with their own severity; the internet's ordinary failures are not."""

from __future__ import annotations

import ipaddress

import pytest

from sensor.alerts.alert import Alert, severity
from sensor.alerts.catalogue import Action
from sensor.alerts.render import to_ecs
from sensor.config import DetectionConfig
from sensor.detect.correlator import Correlator
from sensor.detect.scope import Reach, Scope
from sensor.observations import Transport, ZeekDetection, ZeekNotice, address_key
from tests.detect.test_correlator import HALF, NOREPLY, OK, REJ, conn, run

ip = ipaddress.ip_address
INTERNAL = "10.1.0.66"


def replayed(observations: list, config: DetectionConfig | None = None) -> list[Alert]:
    """:func:`run`, then the updates due at the end of the logs (replay's flush)."""
    correlator = Correlator(config or DetectionConfig())
    alerts = run(observations, correlator=correlator)
    return alerts + correlator.flush(max(o.ts for o in observations))


def sweep(count: int, port: int = 23, source: str = INTERNAL, start: float = 0.0) -> list:
    """A telnet sweep of ``count`` internet addresses, a few answering (half-open), the rest silent."""
    return [conn(start + i * 0.1, f"198.51.{100 + i // 250}.{i % 250 + 1}", port, HALF if i % 40 == 7 else NOREPLY,
                 source=source) for i in range(count)]


def test_a_telnet_sweep_of_the_internet_is_one_outbound_address_scan() -> None:
    alerts = replayed(sweep(128))
    assert alerts and {a.action for a in alerts} == {Action.OUTBOUND_SCAN}
    assert {a.shape for a in alerts} == {Action.ADDRESS_SCAN}
    assert len({a.incident_id for a in alerts}) == 1 and len(alerts) <= 3
    last = alerts[-1]
    assert last.rule.id == "T1046-HORIZONTAL" and "T1046-TRW" not in last.rules
    assert last.severity == 3, "outbound_severity: high by default"
    assert "swept 128 hosts outside the local networks on 1 port" in to_ecs(last, "s")["message"]
    document = to_ecs(last, "s")
    assert document["event"]["action"] == "outbound_scan" and document["t1046"]["scan_shape"] == "address_scan"


def test_a_vertical_scan_of_an_internet_host_is_an_outbound_port_scan() -> None:
    alerts = replayed([conn(i * 0.01, "203.0.113.10", port, REJ) for i, port in enumerate(range(1, 1001))])
    last = alerts[-1]
    assert (last.action, last.shape, last.rule.id) == (Action.OUTBOUND_SCAN, Action.PORT_SCAN, "T1046-VERTICAL")
    assert "scanned 1000 ports on 203.0.113.10 outside the local networks" in to_ecs(last, "s")["message"]


@pytest.mark.parametrize(("name", "band"), [("low", (0, 39)), ("medium", (40, 69)), ("critical", (90, 100))])
def test_the_severity_of_an_outbound_scan_is_configured(name: str, band: tuple[int, int]) -> None:
    alerts = run(sweep(300), DetectionConfig(outbound_severity=name))
    assert alerts and all(band[0] <= a.risk_score <= band[1] for a in alerts)
    assert {severity(a.risk_score) for a in alerts} == {("low", "medium", "high", "critical").index(name) + 1}


def test_one_switch_turns_outbound_scans_off() -> None:
    off = DetectionConfig(outbound_scans=False)
    notice = ZeekNotice(5.0, "T1046::Outbound_Scan", "swept", ip(INTERNAL), None, 23, 64, "C0", "23/tcp")
    detection = ZeekDetection(5.0, ip(INTERNAL), "outbound_address_scan", 64, 1, 64, 64,
                              (ip("198.51.100.1"),), (23,), 0.0, 5.0, ("C1",), "swept")
    assert run([*sweep(128), notice, detection], off) == []
    assert run([notice]) and run([detection]), "on, the package's outbound reports alert"
    assert run([notice])[0].shape is Action.ADDRESS_SCAN and run([detection])[0].action is Action.OUTBOUND_SCAN


def test_scans_between_outside_hosts_are_never_judged() -> None:
    assert run(sweep(128, source="192.0.2.66")) == []


def test_an_inbound_scan_of_local_targets_stays_what_it_was() -> None:
    alerts = run(conn(i * 0.1, f"10.1.1.{i + 1}", 445, NOREPLY, source="203.0.113.9") for i in range(30))
    assert alerts and {a.action for a in alerts} == {Action.ADDRESS_SCAN} and alerts[-1].shape is None


def test_a_client_on_the_internet_fails_a_few_first_contacts_and_is_no_scanner() -> None:
    """Failed first contacts out (a dead server, an absent time server, a blocked port) among working ones:
    the random walk would flag four in a row inside the site; out, neither it nor the slow rules judge."""
    day = [conn(i * 7.0, f"203.0.113.{i % 200 + 1}", 443, OK, source="10.1.0.30") for i in range(400)]
    day += [conn(3000.0 + i, f"198.51.100.{i + 1}", 443, NOREPLY, source="10.1.0.30") for i in range(5)]
    day += [conn(3010.0 + i * 500, f"198.51.100.{i + 50}", 123, NOREPLY, source="10.1.0.30",
                 transport=Transport.UDP) for i in range(14)]
    assert run(sorted(day, key=lambda c: c.ts)) == []


def test_a_busy_resolver_whose_lame_servers_fail_is_no_scanner() -> None:
    """Many distinct authoritative servers that never answer, among very many that do: failures do not
    dominate the source's contacts."""
    queries = [conn(i * 0.05, f"203.0.{113 + i % 3}.{i % 250 + 1}", 53, OK, source="10.1.0.53",
                    transport=Transport.UDP) for i in range(3000)]
    lame = [conn(i * 5.0 + 0.01, f"198.51.100.{i + 1}", 53, NOREPLY, source="10.1.0.53", transport=Transport.UDP)
            for i in range(30)]
    assert run(sorted(queries + lame, key=lambda c: c.ts)) == []


def test_an_internal_scanner_that_browses_keeps_its_internal_action() -> None:
    browsing = [conn(i * 0.5 + 0.25, f"203.0.113.{i + 1}", 443, OK) for i in range(40)]
    scan = [conn(i * 0.5, f"10.1.1.{i + 1}", 445, REJ) for i in range(40)]
    alerts = replayed(sorted(browsing + scan, key=lambda c: c.ts))
    assert alerts and alerts[-1].action is Action.ADDRESS_SCAN and alerts[-1].distinct_targets == 40


def test_the_scope_of_a_contact() -> None:
    scope = Scope(DetectionConfig())

    def contact(source: str, target: str) -> Reach:
        return scope.contact(ip(source), address_key(ip(source)), ip(target), address_key(ip(target)))

    assert contact("10.1.0.66", "10.1.0.1") is Reach.INSIDE
    assert contact("203.0.113.9", "10.1.0.1") is Reach.INSIDE
    assert contact("10.1.0.66", "203.0.113.9") is Reach.OUTSIDE
    assert contact("fd00::66", "2001:db8::1") is Reach.OUTSIDE
    assert contact("192.0.2.1", "203.0.113.9") is Reach.NONE
    for nowhere in ("127.0.0.1", "169.254.1.1", "0.1.2.3", "240.0.0.1", "fe80::1", "::1", "224.0.0.251"):
        assert contact("10.1.0.66", nowhere) is Reach.NONE, nowhere
    off = Scope(DetectionConfig(outbound_scans=False))
    assert off.contact(ip("10.1.0.66"), 1, ip("203.0.113.9"), 2) is Reach.NONE


def test_outbound_batches_judge_as_records_one_by_one() -> None:
    """The batch path's inline working connection out (a track with no evidence) and the full way agree."""
    from tests.detect.test_batch import assert_same

    stream = [conn(i * 0.3, f"203.0.113.{i % 30 + 1}", 443, OK, source=f"10.1.0.{i % 3 + 1}") for i in range(90)]
    stream += sweep(60, source="10.1.0.2", start=30.0)
    assert_same(DetectionConfig(), sorted(stream, key=lambda c: c.ts), [17, 45, 100])


def test_correlator_keeps_one_incident_across_inside_and_outside_targets() -> None:
    correlator = Correlator(DetectionConfig())
    internal = [conn(i * 0.1, f"10.1.1.{i + 1}", 23, NOREPLY) for i in range(10)]
    alerts = run([*internal, *sweep(100, start=2.0)], correlator=correlator)
    assert len({a.incident_id for a in alerts}) == 1
    assert alerts[0].action is Action.ADDRESS_SCAN and alerts[-1].action is Action.OUTBOUND_SCAN
    assert alerts[-1].severity == 3


def test_an_appliance_whose_time_servers_never_answer_is_no_slow_scanner() -> None:
    """Failures dominate (the firewall drops NTP) but come an hour apart: the slow rules and the random walk,
    which would call twenty failed first contacts on 123/udp a slow sweep, do not judge outbound contacts."""
    updates = [conn(i * 7200.0, "203.0.113.80", 80, OK, source="10.1.0.77") for i in range(5)]
    ntp = [conn(600.0 + i * 3600.0, f"198.51.100.{i + 1}", 123, NOREPLY, source="10.1.0.77",
                transport=Transport.UDP) for i in range(20)]
    assert run(sorted(updates + ntp, key=lambda c: c.ts)) == []


def test_the_internets_failures_do_not_complete_a_sweep_with_an_internal_one() -> None:
    """Five failed contacts out on 443 among a hundred working ones, then one failed contact inside on 443: six
    distinct failed targets on one port, but the five are the internet's ordinary failures, no evidence."""
    day = [conn(i * 1.0, f"203.0.113.{i % 90 + 1}", 443, OK, source="10.1.0.31") for i in range(100)]
    day += [conn(20.5 + i * 10, f"198.51.100.{i + 1}", 443, NOREPLY, source="10.1.0.31") for i in range(5)]
    day.append(conn(99.5, "10.1.2.3", 443, NOREPLY, source="10.1.0.31"))
    assert run(sorted(day, key=lambda c: c.ts)) == []
