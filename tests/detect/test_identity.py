"""Who the scanner is: the identity table bound to time (leases, answers, logons), its bounds, and the alerts
replay makes of the real identity captures (tests/data/identity/PROVENANCE.md)."""

from __future__ import annotations

import io
import json
from ipaddress import ip_address
from pathlib import Path

import pytest

from sensor.config import DetectionConfig, default_config
from sensor.detect.correlator import Correlator
from sensor.detect.identity import CHANGES_CAP, PER_KIND, Identities
from sensor.observations import ConnAttempt, IdentitySeen, Outcome, Transport, address_key
from sensor.replay import replay
from tests.alertcheck import parse_alerts

DATA = Path(__file__).resolve().parents[1] / "data" / "identity"
ADDRESS = ip_address("10.77.0.136")
KEY = address_key(ADDRESS)


def _replay(path: Path) -> list[dict]:
    out = io.BytesIO()
    replay([path], default_config(), out)
    return parse_alerts(out.getvalue())


def _values(fact_list: tuple) -> set[tuple[str, str]]:
    return {(fact.kind, fact.value) for fact in fact_list}


@pytest.mark.parametrize("flavour", ["zeek", "zeek-json"])
@pytest.mark.parametrize("name", ["wks_scan", "reassigned"])
def test_the_alert_names_the_holder_of_the_address_at_the_time_of_the_scan(name: str, flavour: str) -> None:
    truth = json.loads((DATA / name / "truth.json").read_text())["scanners"][0]
    alerts = _replay(DATA / name / flavour)
    assert {a["source"]["ip"] for a in alerts} == {truth["ip"]}
    assert len({a["t1046"]["incident_id"] for a in alerts}) == 1 and len(alerts) <= 3
    last = alerts[-1]
    expected = truth["identity"]
    assert last["event"]["action"] == truth["actions"]
    assert last["source"]["mac"] == expected["mac"] and last["source"]["domain"] == expected["domain"]
    assert set(expected["hosts"]) <= set(last["related"]["hosts"])
    assert last["related"]["user"] == expected["users"]
    facts = last["t1046"]["identity"]["facts"]
    assert {fact["value"] for fact in facts if fact["kind"] == "software"} == set(expected["software"])
    assert expected["domain"] in last["message"]
    for alert in alerts:
        text = json.dumps(alert)
        for other in truth.get("not", ()):
            assert other not in text, (other, alert["t1046"]["update"])


def test_a_name_learned_after_the_first_alert_is_in_the_next_update() -> None:
    """The NTLM logon came after the scan's first alert (tests/data/identity/wks_scan)."""
    alerts = _replay(DATA / "wks_scan" / "zeek")
    sources = [{fact["source"] for fact in a["t1046"]["identity"]["facts"]} for a in alerts]
    assert "ntlm" not in sources[0]
    assert {"dhcp", "kerberos", "software", "conn", "dns_ptr"} <= sources[0]
    assert {"dns_ptr", "dns_a", "ntlm"} <= sources[-1]
    assert "WKS-17".lower() in alerts[-1]["related"]["hosts"]


def _lease(ts: float, mac: str, host: str, lease: str = "ack") -> IdentitySeen:
    return IdentitySeen(ts, (ADDRESS,), "dhcp", mac=mac, host_name=host if lease == "ack" else "",
                        valid_for=600.0 if lease == "ack" else None, lease=lease)


def test_facts_never_reach_across_a_change_of_hands_whatever_order_they_come_in() -> None:
    seen = [_lease(1000.0, "02:00:00:00:00:01", "first"), IdentitySeen(1001.0, (ADDRESS,), "kerberos", user="a@R"),
            _lease(1100.0, "02:00:00:00:00:01", "", "release"), _lease(1200.0, "02:00:00:00:00:02", "second"),
            IdentitySeen(1300.0, (ADDRESS,), "dns_ptr", domain="second.corp", valid_for=0.0)]
    for order in (seen, seen[::-1]):
        table = Identities(DetectionConfig())
        for item in order:
            table.learn(item)
        assert _values(table.at([KEY], 1010.0, 1020.0, 10)) == {("mac", "02:00:00:00:00:01"),
                                                                ("host_name", "first"), ("user", "a@R")}
        assert _values(table.at([KEY], 1250.0, 1260.0, 10)) == {("mac", "02:00:00:00:00:02"),
                                                                ("host_name", "second"), ("domain", "second.corp")}
        assert table.at([KEY], 1150.0, 1160.0, 10) == (), "between the release and the next grant: nobody's"


def test_a_fact_holds_for_the_hold_either_side_and_a_lease_for_its_time() -> None:
    table = Identities(DetectionConfig(identity_hold=100.0))
    table.learn(_lease(1000.0, "02:00:00:00:00:01", "host"))
    table.learn(IdentitySeen(5000.0, (ADDRESS,), "dns_ptr", domain="late.corp", valid_for=300.0))
    assert _values(table.at([KEY], 1500.0, 1599.0, 10)) == {("mac", "02:00:00:00:00:01"), ("host_name", "host")}
    assert table.at([KEY], 1601.0, 1700.0, 10) == (), "the lease ended at 1600"
    assert _values(table.at([KEY], 4900.0, 4900.0, 10)) == {("domain", "late.corp")}
    assert table.at([KEY], 5301.0, 5400.0, 10) == (), "a TTL of 300 carries it to 5300"
    assert table.at([KEY], 4800.0, 4899.0, 10) == (), "and back by the hold alone"


def test_the_table_is_bounded_in_addresses_facts_and_lease_changes() -> None:
    config = DetectionConfig(max_identities=100)
    table = Identities(config)
    for index in range(1000):
        table.learn(IdentitySeen(float(index), (ip_address(f"10.1.{index // 256}.{index % 256}"),), "software",
                                 software="x" * 255))
    assert len(table) == 100 and table.evicted == 900
    for index in range(200):
        table.learn(IdentitySeen(2000.0 + index, (ADDRESS,), "ntlm", user=f"CORP\\user{index}",
                                 host_name=f"h{index}"))
        table.learn(_lease(2000.0 + index, f"02:00:00:00:00:{index % 256:02x}", f"h{index}"))
    facts = table.at([KEY], 2199.0, 2199.0, 1000)
    assert len([fact for fact in facts if fact.kind == "user"]) <= PER_KIND
    assert len(facts) <= PER_KIND * 5
    assert ("user", "CORP\\user199") in _values(facts), "the newest are kept"
    assert len(table._holders[KEY].changes) == CHANGES_CAP
    table.expire(2199.0 + config.slow_window + config.identity_hold + 1000.0)
    assert len(table) == 0


def test_an_identity_learned_later_makes_the_next_update_material_but_no_update_of_its_own() -> None:
    config = DetectionConfig(final_update_after=30.0)
    correlator = Correlator(config)
    alerts = []
    for port in range(1, 60):
        alerts += correlator.observe(ConnAttempt(100.0 + port / 100, ADDRESS, 40000, ip_address("10.77.0.20"), port,
                                                 Transport.TCP, Outcome.REJECTED), 100.0 + port / 100)
    assert alerts and not alerts[0].identity
    sent = len(alerts)
    assert correlator.observe(IdentitySeen(101.0, (ADDRESS,), "dns_ptr", domain="wks.corp"), 101.0) == []
    final = correlator.tick(200.0)
    assert len(final) == 1 and len(alerts) == sent
    assert _values(final[0].identity) == {("domain", "wks.corp")}
    assert correlator.tick(400.0) == [], "the final extent was sent; nothing new since"
