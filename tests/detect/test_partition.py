"""Judged in parts by source, a stream gives what one correlator gives: the same alert lines in the same order.

Generated streams that hit every rule whose state crosses sources: outages (a service one client was served by,
then failed contacts to it from others), lockstep (unproven probes of one service from several sources within
half a second), host links (an IPv4 host announcing its IPv6 address, and the IPv6 address itself), identities
(DHCP leases, DNS answers naming several addresses, MACs), mDNS browsing (the link-wide habits), and time's own
work over all of them: times out of order by more than ``idle_timeout`` (a track touched late, whose evidence is
old, waits behind tracks touched before it, in whichever part they are), gaps that close, put to sleep and
forget tracks, and instants where several incidents fall due at once. With tiny caps the parts must say so
when together they may have reached one; below them, they agree.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import itertools
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sensor.alerts.render import render_line
from sensor.config import AllowlistEntry, DetectionConfig
from sensor.detect.correlator import Correlator
from sensor.detect.partition import Unpartable, part_of
from sensor.detect.parts import judge_in_parts
from sensor.detect.watermark import Watermark
from sensor.observations import (
    ConnAttempt,
    ConnRows,
    HoneyportHit,
    IdentitySeen,
    Intake,
    MdnsHost,
    MdnsQuery,
    Outcome,
    Touch,
    Transport,
)

ip = ipaddress.ip_address
SOURCES = [ip(f"10.0.0.{n}") for n in range(1, 9)] + [ip("fd00::7"), ip("fd00::8")]
TARGETS = [ip(f"10.0.1.{n}") for n in range(1, 7)] + [ip("10.0.1.255"), ip("8.8.8.8")]
PORTS = [22, 80, 443, 8, 5353]
NETS = (ipaddress.ip_network("10.0.1.0/24"), ipaddress.ip_network("fd00::/8"))
CONFIGS = {
    "default": DetectionConfig(local_nets=NETS),
    "quick": DetectionConfig(local_nets=NETS, idle_timeout=60.0, final_update_after=5.0, update_every=3.0,
                             escalation_every=2.0, served_memory=40.0, window=30.0, slow_window=300.0,
                             port_scan_ports=3, address_scan_targets=3, identity_hold=30.0),
    "allowlist": DetectionConfig(local_nets=NETS, idle_timeout=60.0, final_update_after=5.0, slow_window=300.0,
                                 allowlist=(AllowlistEntry(ipaddress.ip_network("10.0.0.0/30"), "scanner team",
                                                           frozenset({22})),)),
    "outbound": DetectionConfig(local_nets=(ipaddress.ip_network("10.0.0.0/23"), ipaddress.ip_network("fd00::/8")),
                                idle_timeout=60.0, final_update_after=5.0, window=30.0, port_scan_ports=3,
                                address_scan_targets=3),
}
"""``outbound``: the sources are inside ``local_nets``, so 8.8.8.8 is an outbound target (and 10.0.1.255 the
broadcast address of their network)."""
TINY = dataclasses.replace(CONFIGS["quick"], max_sources=4, max_incidents=3, max_profiles=4, max_identities=4)
STEPS = [0.0, 0.0, 0.1, 0.3, 1.0, 3.0, 7.0, -0.2, -20.0, -90.0, 45.0, 70.0, 150.0, 400.0]


@st.composite
def observations(draw: st.DrawFn, ts: float, columnar: bool) -> Intake:
    """One observation; ``columnar``: none that keeps the reader from deciding a block a column at a time (host
    announcements, IPv6 sources)."""
    kinds = ["conn"] * 12 + ["identity", "lease", "answer", "mdns", "decoys"] + ["decoys"] * 3
    kind = draw(st.sampled_from(kinds if columnar else [*kinds, "host"]))
    source = draw(st.sampled_from(SOURCES[:8] if columnar else SOURCES))
    if kind == "decoys":
        port = draw(st.sampled_from(PORTS))
        return ConnRows.of([ConnAttempt(ts + 0.001 * n, decoy, 40000, TARGETS[0], port, Transport.TCP,
                                        Outcome.UNANSWERED) for n, decoy in enumerate(SOURCES[2:5])])
    if kind == "identity":
        return IdentitySeen(ts, (source,), draw(st.sampled_from(["conn", "ntlm", "software"])),
                            mac=draw(st.sampled_from(["", "02:00:00:00:00:01"])), user=draw(st.sampled_from(["", "a"])))
    if kind == "lease":
        mac = draw(st.sampled_from(["02:00:00:00:00:01", "02:00:00:00:00:02"]))
        return IdentitySeen(ts, (source,), "dhcp", mac=mac, host_name="pc",
                            valid_for=draw(st.sampled_from([None, 50.0, 500.0])),
                            lease=draw(st.sampled_from(["ack", "release"])))
    if kind == "answer":
        return IdentitySeen(ts, tuple(draw(st.lists(st.sampled_from(SOURCES), min_size=1, max_size=4, unique=True))),
                            "dns_a", domain="host.corp", valid_for=draw(st.sampled_from([None, 10.0, 900.0])))
    if kind == "host":
        v4, v6 = draw(st.sampled_from([(SOURCES[0], SOURCES[8]), (SOURCES[1], SOURCES[9])]))
        sender = draw(st.sampled_from([v4, v6]))
        return MdnsHost(ts, sender, f"h{v4.packed[-1]}.local", (v4, v6))
    if kind == "mdns":
        return MdnsQuery(ts, source, draw(st.sampled_from([5353, 40000])),
                         draw(st.sampled_from(["_ssh._tcp.local", "_ipp._tcp.local", "_services._dns-sd._udp.local",
                                               "_smb._tcp.local", "_rare._tcp.local"])), "PTR",
                         mac=draw(st.sampled_from(["", "02:00:00:00:00:03"])))
    transport = draw(st.sampled_from([Transport.TCP] * 4 + [Transport.UDP, Transport.ICMP]))
    outcome = draw(st.sampled_from([Outcome.ESTABLISHED] * 4 + [Outcome.REJECTED, Outcome.UNANSWERED] * 2
                                   + list(Outcome)))
    tags = draw(st.sampled_from([frozenset()] * 10 + [frozenset({"scan"}), frozenset({"honeyport"})]))
    return ConnAttempt(ts, source, 40000, draw(st.sampled_from(TARGETS)), draw(st.sampled_from(PORTS)), transport,
                       outcome, f"C{draw(st.integers(0, 99))}", "", tags,
                       source_mac=draw(st.sampled_from(["", "02:aa"])))


@st.composite
def streams(draw: st.DrawFn, columnar: bool = False) -> list[Intake]:
    """Observations mostly in time order, some late, some far ahead; a run of conn records sometimes one block."""
    found: list[Intake] = []
    ts = 1_795_000_000.0
    block: list[ConnAttempt] = []
    for _ in range(draw(st.integers(1, 120))):
        ts += draw(st.sampled_from(STEPS))
        item = draw(observations(ts, columnar))
        if isinstance(item, ConnAttempt) and draw(st.booleans()):
            block.append(item)
            continue
        if block:
            found.append(ConnRows.of(block))
            block = []
        found.append(item)
    if block:
        found.append(ConnRows.of(block))
    return found


def one_correlator(stream: list[Intake], config: DetectionConfig) -> list[bytes]:
    correlator, watermark = Correlator(config), Watermark(config.lateness)
    alerts = [alert for item in stream for alert in correlator.observe_read(item, watermark)]
    if correlator.stats.observations:
        alerts += correlator.flush(watermark.now)
    return [render_line(alert, "t", "ecs") for alert in alerts]


def in_parts(stream: list[Intake], config: DetectionConfig, parts: int, batch: int = 1,
             columnar: bool = False) -> tuple[list[bytes], str | None]:
    """Judged in ``parts`` parts, ``batch`` items a batch (a tick a part holds until its records reach it, or the
    batch ends); ``columnar``: every block decided a column at a time where it can be."""
    alerts, cap = judge_in_parts(stream, config, config.lateness, parts, batch, 1 if columnar else 10**9)
    return [render_line(alert, "t", "ecs") for alert in alerts], cap


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stream=streams(), name=st.sampled_from(sorted(CONFIGS)), parts=st.sampled_from([2, 3]),
       batch=st.sampled_from([1, 4, 1000]))
def test_parts_say_what_one_correlator_says(stream: list[Intake], name: str, parts: int, batch: int) -> None:
    expected = one_correlator(stream, CONFIGS[name])
    found, cap = in_parts(stream, CONFIGS[name], parts, batch)
    assert cap is None
    assert found == expected


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stream=streams(columnar=True), name=st.sampled_from(["default", "quick"]), parts=st.sampled_from([2, 3]),
       batch=st.sampled_from([1, 4, 1000]))
def test_parts_say_what_one_correlator_says_of_blocks_decided_a_column_at_a_time(stream: list[Intake], name: str,
                                                                                 parts: int, batch: int) -> None:
    expected = one_correlator(stream, CONFIGS[name])
    assert in_parts(stream, CONFIGS[name], parts, batch, columnar=True) == (expected, None)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stream=streams(), parts=st.sampled_from([2, 3]))
def test_parts_agree_below_the_caps_and_say_when_they_may_have_reached_one(stream: list[Intake], parts: int) -> None:
    found, cap = in_parts(stream, TINY, parts)
    if cap is None:
        assert found == one_correlator(stream, TINY)


def _apart(parts: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """``parts`` sources, each judged in a part of its own among ``parts``."""
    found: dict[int, ipaddress.IPv4Address | ipaddress.IPv6Address] = {}
    for source in SOURCES[:8]:
        found.setdefault(part_of(int(source), parts), source)
    assert len(found) == parts
    return list(found.values())


def test_a_late_track_waits_behind_an_earlier_one_in_another_part() -> None:
    """The source touched first still counts at the pass of time, so another, touched after it by a record that
    came late (its evidence old), is not closed then -- as one correlator's walk over its least recently active
    tracks stops at the first that still counts, in whichever part that one is judged."""
    config = CONFIGS["quick"]
    early, late = _apart(2)
    other = next(source for source in SOURCES if source not in (early, late))
    t = 1_795_000_000.0
    scan = frozenset({"scan"})
    stream: list[Intake] = [ConnAttempt(t + 1, late, 40000, TARGETS[0], 22, Transport.TCP, Outcome.ESTABLISHED,
                                        zeek_tags=scan),
                            ConnAttempt(t + 50, early, 40000, TARGETS[1], 80, Transport.TCP, Outcome.ESTABLISHED),
                            ConnAttempt(t + 5, late, 40000, TARGETS[0], 22, Transport.TCP, Outcome.ESTABLISHED,
                                        zeek_tags=scan)]
    stream += [ConnAttempt(t + 95 + n, other, 40000, TARGETS[2], 80, Transport.TCP, Outcome.ESTABLISHED)
               for n in range(0, 100, 5)]
    expected = one_correlator(stream, config)
    closed = [line for line in expected if b'"closed":true' in line]
    assert len(closed) == 1
    assert json.loads(closed[0])["event"]["created"] >= "2026-11-18T11:08:30", "closed once the early source went"
    assert in_parts(stream, config, 2) == (expected, None)
    assert in_parts(stream, config, 3) == (expected, None)


def test_decoys_in_other_parts_are_each_others_lockstep() -> None:
    """nmap -D: every probe from the scanner and its decoys, microseconds apart; judged in different parts, each
    incident still names the others as its lockstep partners."""
    sources = next(list(three) for three in itertools.combinations(SOURCES[:8], 3)
                   if len({part_of(int(source), 3) for source in three}) == 3
                   and len({part_of(int(source), 2) for source in three}) == 2)
    t = 1_795_000_000.0
    stream: list[Intake] = [ConnAttempt(t + port + 0.001 * n, source, 40000, TARGETS[0], port, Transport.TCP,
                                        Outcome.UNANSWERED)
                            for port in range(1, 30) for n, source in enumerate(sources)]
    expected = one_correlator(stream, CONFIGS["default"])
    assert any(b'"lockstep"' in line for line in expected)
    assert in_parts(stream, CONFIGS["default"], 2) == (expected, None)
    assert in_parts(stream, CONFIGS["default"], 3) == (expected, None)


def test_honeyport_touches_are_not_parted() -> None:
    hit = HoneyportHit(1.0, SOURCES[0], 4000, TARGETS[0], 2222, Transport.TCP, "ssh", touch=Touch.SYN)
    with pytest.raises(Unpartable):
        judge_in_parts([hit], CONFIGS["default"], 15.0, 2)
