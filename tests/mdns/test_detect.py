"""The mDNS detector: what alerts, what is learnt as usual, and its bounds."""

from __future__ import annotations

import dataclasses
import ipaddress

from sensor.alerts.catalogue import Action
from sensor.alerts.render import to_ecs
from sensor.config import DetectionConfig
from sensor.detect.correlator import Correlator
from sensor.detect.mdns import (
    HABIT_SPAN,
    MAX_TYPES_PER_HOST,
    MdnsBrowseDetector,
    service_type,
)
from sensor.observations import MdnsQuery, decoy_host
from tests.alertcheck import validate_alert

SCANNER = "10.20.0.66"


def query(ts: float, name: str, qtype: str = "PTR", source: str = SCANNER, port: int = 5353) -> MdnsQuery:
    return MdnsQuery(ts=ts, source=ipaddress.ip_address(source), source_port=port, name=name, qtype=qtype,
                     legacy_unicast=port != 5353)


def fired(detector: MdnsBrowseDetector, queries: list[MdnsQuery]) -> list[str]:
    rules: list[str] = []
    for item in queries:
        rules += detector.rules_for(item, item.ts)
    return rules


def backoff(start: float, name: str, source: str, until: float) -> list[MdnsQuery]:
    """A continuous browse as mDNS stacks send it: 1 s, then doubling intervals up to an hour (RFC 6762)."""
    queries, ts, interval = [], start, 1.0
    while ts <= until:
        queries.append(query(ts, name, source=source))
        ts += interval
        interval = min(interval * 2, 3600.0)
    return queries


def test_service_type_and_decoy_host_names() -> None:
    assert service_type("_ssh._tcp.local.") == "_ssh._tcp"
    assert service_type("vm._ssh._tcp.local") == "_ssh._tcp"
    assert service_type("printer.local") is None
    assert service_type("_ssh._tcp.example.com") is None
    assert decoy_host("Backup NAS") == "backup-nas.local"
    assert decoy_host("!!!") == "decoy.local"


def test_one_browse_for_a_remote_access_type_alerts_on_its_own() -> None:
    assert fired(MdnsBrowseDetector(DetectionConfig()), [query(1.0, "_ssh._tcp.local")]) == ["T1046-MDNS-SENSITIVE"]


def test_enumeration_alerts_and_a_tool_browsing_a_few_types_alerts() -> None:
    detector = MdnsBrowseDetector(DetectionConfig())
    assert fired(detector, [query(1.0, "_services._dns-sd._udp.local")]) == ["T1046-MDNS-ENUM"]
    assert fired(detector, [query(1.0, "_services._dns-sd._udp.local", source="10.20.0.8", port=40000)]) == [
        "T1046-MDNS-ENUM"]
    tool = [query(1.0 + i, f"_{name}._tcp.local", source="10.20.0.7", port=40000 + i)
            for i, name in enumerate(("http", "https", "mqtt"))]
    assert fired(detector, tool) == ["T1046-MDNS-LEGACY"], "three unusual types, from a tool, alert at the third"
    assert fired(detector, [query(1.0, "_ssh._tcp.local", source="10.20.0.9", port=40000)]) == [
        "T1046-MDNS-LEGACY", "T1046-MDNS-SENSITIVE"], "a tool's browse for a sensitive type alerts at once"


def test_one_tool_question_for_one_ordinary_type_never_alerts_alone() -> None:
    """A home router asking for _daap._tcp from an ephemeral port a few times an hour: weak evidence (one
    question, one type that is not sensitive) that alerts only with corroboration, from the first question on."""
    detector = MdnsBrowseDetector(DetectionConfig())
    router = "10.20.0.1"
    for name in ("_daap._tcp.local", "_http._tcp.local", "_smb._tcp.local"):
        habit = [query(i * 1200.0, name, source=router, port=49152 + 37 * i) for i in range(12)]
        assert fired(detector, habit) == [], name
        assert fired(MdnsBrowseDetector(DetectionConfig()), habit[:1]) == [], f"{name}: its first question"
    corroborated = [query(1.0 + i, name, source="10.20.0.2", port=40000 + i)
                    for i, name in enumerate(("_http._tcp.local", "_webdav._tcp.local", "_nfs._tcp.local"))]
    assert fired(detector, corroborated) == ["T1046-MDNS-LEGACY", "T1046-MDNS-SENSITIVE"]


def test_printers_chromecasts_airplay_and_own_probes_do_not_alert() -> None:
    detector = MdnsBrowseDetector(DetectionConfig())
    chatter = []
    for minute in range(120):
        ts = minute * 60.0
        for name in ("_airplay._tcp.local", "_raop._tcp.local", "_googlecast._tcp.local", "_ipp._tcp.local",
                     "_printer._tcp.local", "_spotify-connect._tcp.local", "_companion-link._tcp.local"):
            chatter.append(query(ts, name, source="10.20.0.5"))
        chatter += [query(ts, "laptop.local", "ANY", source="10.20.0.5"),
                    query(ts, "laptop._ssh._tcp.local", "ANY", source="10.20.0.5"),
                    query(ts, "printer-3.local", "A", source="10.20.0.5")]
    assert fired(detector, chatter) == []


def test_finder_smb_and_afp_browsing_with_backoff_is_learnt_and_never_alerts() -> None:
    detector = MdnsBrowseDetector(DetectionConfig())
    mac = "10.20.0.9"
    series = backoff(0.0, "_smb._tcp.local", mac, 6 * 3600) + backoff(0.2, "_afpovertcp._tcp.local", mac, 6 * 3600)
    series += backoff(0.4, "_adisk._tcp.local", mac, 6 * 3600)
    assert fired(detector, sorted(series, key=lambda q: q.ts)) == []


def test_a_habitual_question_stops_counting_but_a_new_sensitive_one_still_alerts() -> None:
    detector = MdnsBrowseDetector(DetectionConfig())
    monitor = "10.20.0.11"
    checks = [query(i * 300.0, "_ssh._tcp.local", source=monitor, port=50000 + i) for i in range(12)]
    rules = fired(detector, checks)
    assert rules.count("T1046-MDNS-SENSITIVE") == 3, "a sensitive type alerts until the periodic check is learnt"
    assert fired(detector, [query(3700.0, "_ssh._tcp.local", source=monitor, port=40000)]) == []
    assert fired(detector, [query(3701.0, "_rfb._tcp.local", source=monitor)]) == ["T1046-MDNS-SENSITIVE"]


def test_many_unusual_types_from_one_host_alert_but_spread_over_time_do_not() -> None:
    config = DetectionConfig()
    names = [f"_app{i}._tcp.local" for i in range(config.mdns_distinct_types)]
    burst = fired(MdnsBrowseDetector(config), [query(1.0 + i, n) for i, n in enumerate(names)])
    assert burst == ["T1046-MDNS-MANY-TYPES"]
    spread = [query(i * (config.window + 1), n) for i, n in enumerate(names)]
    assert fired(MdnsBrowseDetector(config), spread) == []


def test_file_sharing_types_need_several_but_together_alert() -> None:
    detector = MdnsBrowseDetector(DetectionConfig())
    names = ["_smb._tcp.local", "_afpovertcp._tcp.local", "_nfs._tcp.local", "_webdav._tcp.local"]
    assert fired(detector, [query(1.0 + i, n) for i, n in enumerate(names)]) == ["T1046-MDNS-SENSITIVE"]


def test_a_type_habitual_on_many_hosts_weighs_half() -> None:
    detector = MdnsBrowseDetector(DetectionConfig())
    for host in range(3):
        fired(detector, backoff(0.0, "_ssh._tcp.local", f"10.20.1.{host}", HABIT_SPAN * 2))
    newcomer = ipaddress.ip_address("10.20.2.1")
    assert detector.weight(newcomer, "_ssh._tcp") == 0.5
    assert fired(detector, [query(HABIT_SPAN * 2, "_ssh._tcp.local", source="10.20.2.1")]) == []


def test_decoy_lookups_alert_for_instance_and_host_names() -> None:
    config = DetectionConfig(mdns_decoy_names=("backup-nas._smb._tcp.local",))
    detector = MdnsBrowseDetector(config)
    for qtype in ("SRV", "TXT", "ANY"):
        assert fired(detector, [query(1.0, "Backup-NAS._smb._tcp.local.", qtype)]) == ["T1046-MDNS-DECOY"]
    assert fired(detector, [query(1.0, "backup-nas.local", "A")]) == ["T1046-MDNS-DECOY"]
    assert fired(detector, [query(1.0, "backup-nas._smb._tcp.local", "PTR")]) == []


def test_state_is_bounded_and_expires() -> None:
    config = dataclasses.replace(DetectionConfig(), max_sources=50)
    detector = MdnsBrowseDetector(config)
    for i in range(500):
        detector.rules_for(query(float(i), f"_t{i}._tcp.local", source=f"10.30.{i // 250}.{i % 250}"), float(i))
    assert detector.tracked_hosts == 50
    for i in range(MAX_TYPES_PER_HOST * 4):
        detector.rules_for(query(1000.0 + i, f"_t{i}._tcp.local"), 1000.0 + i)
    detector.expire(1000.0 + config.slow_window + MAX_TYPES_PER_HOST * 4 + 1)
    assert detector.tracked_hosts == 0


def test_through_the_correlator_browse_and_enumeration_are_one_incident() -> None:
    correlator = Correlator(DetectionConfig())
    alerts = []
    for item in [query(1.0, "_services._dns-sd._udp.local"), query(2.0, "_ssh._tcp.local"),
                 query(3.0, "_rfb._tcp.local")]:
        alerts += correlator.observe(item, item.ts)
    alerts += correlator.tick(11.0)
    assert len({a.incident_id for a in alerts}) == 1
    assert alerts[0].action is Action.MDNS_SERVICE_ENUMERATION
    assert alerts[-1].action is Action.MDNS_SERVICE_BROWSE
    for alert in alerts:
        validate_alert(to_ecs(alert, "test"))
