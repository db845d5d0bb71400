"""One host over IPv4 and IPv6 is one scanner: addresses linked by the host's own announcements."""

from __future__ import annotations

from ipaddress import ip_address

from sensor.alerts.catalogue import Action
from sensor.alerts.render import to_ecs
from sensor.config import DetectionConfig
from sensor.detect.correlator import Correlator
from sensor.detect.hosts import HostLinks
from sensor.mdns.watch import MdnsWatcher, hosts_of
from sensor.observations import HoneyportHit, MdnsHost, MdnsQuery, Observation, Transport
from tests.alertcheck import validate_alert

from .packets import address_packet, query_packet

V4, V6 = ip_address("10.40.0.7"), ip_address("fd46:40::7")
GROUP4, GROUP6 = ip_address("224.0.0.251"), ip_address("ff02::fb")


def browse(source: object, ts: float) -> MdnsQuery:
    return MdnsQuery(ts=ts, source=source, source_port=5353, name="_ssh._tcp.local", qtype="PTR",  # type: ignore[arg-type]
                     target=GROUP4 if source == V4 else GROUP6)


def test_an_announcement_of_the_senders_own_addresses_is_an_observation() -> None:
    packet = address_packet("laptop.local.", str(V4), str(V6))
    (host,) = hosts_of(packet, V4, 5353, 5.0)
    assert (host.source, host.name, host.addresses, host.ts) == (V4, "laptop.local", (V4, V6), 5.0)
    assert hosts_of(packet, ip_address("10.40.0.99"), 5353, 5.0) == [], "not the sender's own addresses"
    assert hosts_of(query_packet(("_ssh._tcp.local.", 12)), V4, 5353, 5.0) == []


def test_the_watcher_emits_what_a_response_says_of_its_sender() -> None:
    seen: list[object] = []
    watcher = MdnsWatcher(["lo"], seen.append, clock=lambda: 7.0)
    assert watcher.datagram(address_packet("laptop.local.", str(V4), str(V6)), V6, 5353, GROUP6) == 1
    assert seen == [MdnsHost(ts=7.0, source=V6, name="laptop.local", addresses=(V4, V6))]
    assert watcher.stats.announcements == 1


def feed(observations: list[Observation]) -> list:
    correlator = Correlator(DetectionConfig())
    alerts = []
    for observation in observations:
        alerts += correlator.observe(observation, observation.ts)
    alerts += correlator.flush(100.0)
    for alert in alerts:
        validate_alert(to_ecs(alert, "hosts"))
    return alerts


def test_a_host_seen_over_ipv4_and_ipv6_is_one_incident() -> None:
    announce = [MdnsHost(ts=1.0, source=V4, name="laptop.local", addresses=(V4, V6)),
                MdnsHost(ts=1.1, source=V6, name="laptop.local", addresses=(V6,))]
    touch = HoneyportHit(ts=3.0, source=V6, source_port=4000, target=ip_address("10.40.0.1"), target_port=2222,
                         transport=Transport.TCP, profile="ssh")
    alerts = feed([*announce, browse(V4, 2.0), browse(V6, 2.5), touch])
    assert {a.incident_id for a in alerts} == {alerts[0].incident_id}
    assert {a.scanner for a in alerts} == {V4}
    last = alerts[-1]
    assert (last.aliases, last.honeyport_hits, last.action) == ((V6,), 1, Action.HONEYPORT_PROBE)
    assert set(last.rules) == {"T1046-MDNS-SENSITIVE", "T1046-HONEYPORT"}
    assert to_ecs(last, "hosts")["related"]["ip"][:2] == [str(V4), str(V6)]


def test_without_the_hosts_announcements_the_two_addresses_are_two_scanners() -> None:
    alerts = feed([browse(V4, 2.0), browse(V6, 2.5)])
    assert {a.scanner for a in alerts} == {V4, V6}


def test_one_address_cannot_claim_another_hosts_address() -> None:
    victim = ip_address("10.40.0.8")
    links = HostLinks()
    links.announced(MdnsHost(ts=1.0, source=V6, name="victim.local", addresses=(victim, V6)))
    assert links.canonical(V6) == V6 and links.canonical(victim) == victim, "only one end proved"
    links.announced(MdnsHost(ts=1.2, source=victim, name="victim.local", addresses=(victim,)))
    assert links.canonical(V6) == V6, "the victim's own announcement does not list the claimant"
    links.announced(MdnsHost(ts=1.3, source=V4, name="victim.local", addresses=(V4, V6)))
    assert links.canonical(V6) == V4, "an IPv4 sender vouches for an IPv6 address named after itself"
    assert links.canonical(victim) == victim


def test_links_are_bounded() -> None:
    from sensor.detect import hosts

    links = HostLinks()
    for n in range(hosts.MAX_NAMES + 10):
        a, b = ip_address(f"10.{n // 65536}.{n // 256 % 256}.{n % 256}"), ip_address(f"fd46:41::{n:x}")
        links.announced(MdnsHost(ts=float(n), source=a, name=f"h{n}.local", addresses=(a, b)))
    assert len(links._announced) == hosts.MAX_NAMES
