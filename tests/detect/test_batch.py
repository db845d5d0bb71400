"""The batch path judges as the one-record path does: ``observe_many`` over blocks of conn records against
``observe`` on each record in turn, over generated hard cases, with the same alerts and the same state.

The generated streams mix what the batch path takes inline (working first contacts of sources with no
evidence yet, new sources among them) with everything it must hand on: failed, half-open and stealth
contacts, UDP and ICMP, records the Zeek package tagged, targets outside ``local_nets`` (outbound contacts of
internal sources among them), broadcast and multicast targets, times out of order and gaps past
``idle_timeout`` (expiry, dormant tracks revived), IPv6,
and, in some configurations, tiny caps (eviction everywhere), an allowlist and mDNS-linked addresses (which
turn the inline path off). The watermark of a block (``Watermark.logged_many``) is held to ``logged``.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
from collections.abc import Sequence

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sensor.alerts.render import render_line
from sensor.config import AllowlistEntry, DetectionConfig
from sensor.detect.correlator import Correlator
from sensor.detect.evidence import Evidence, Track
from sensor.detect.watermark import Watermark
from sensor.observations import ConnAttempt, ConnRows, MdnsHost, Observation, Outcome, Transport

ip = ipaddress.ip_address
SOURCES = [ip(f"10.0.0.{n}") for n in range(1, 7)] + [ip("fd00::7"), ip("192.168.9.9"), ip("10.0.1.7")]
TARGETS = [ip(f"10.0.1.{n}") for n in range(1, 9)] + [ip("10.0.1.255"), ip("8.8.8.8"), ip("224.0.0.251"),
                                                       ip("fd00::1:1")]
PORTS = [22, 80, 443, 8, 0, 5353]
CONFIGS = {
    "default": DetectionConfig(local_nets=(ipaddress.ip_network("10.0.1.0/24"), ipaddress.ip_network("fd00::/8"))),
    "tiny caps": DetectionConfig(local_nets=(ipaddress.ip_network("10.0.1.0/24"), ipaddress.ip_network("fd00::/8")),
                                 max_sources=3, max_served=4, max_pairs_per_source=2, max_incidents=2,
                                 idle_timeout=120.0, final_update_after=5.0, update_every=3.0, served_memory=40.0,
                                 window=30.0, slow_window=400.0, port_scan_ports=3, address_scan_targets=3),
    "allowlist": DetectionConfig(local_nets=(ipaddress.ip_network("10.0.1.0/24"),),
                                 allowlist=(AllowlistEntry(ipaddress.ip_network("10.0.0.0/30"), "scanner team",
                                                           frozenset({22})),)),
}


@st.composite
def conn_records(draw: st.DrawFn) -> ConnAttempt:
    transport = draw(st.sampled_from([Transport.TCP] * 4 + [Transport.UDP, Transport.ICMP]))
    outcome = draw(st.sampled_from([Outcome.ESTABLISHED] * 6 + list(Outcome)))
    tags = draw(st.sampled_from([frozenset()] * 8 + [frozenset({"scan"}), frozenset({"honeyport"})]))
    return ConnAttempt(0.0, draw(st.sampled_from(SOURCES)), draw(st.sampled_from([40000, 8, 0])),
                       draw(st.sampled_from(TARGETS)), draw(st.sampled_from(PORTS)), transport, outcome,
                       f"C{draw(st.integers(0, 999))}", draw(st.sampled_from(["", "ssh"])), tags)


@st.composite
def streams(draw: st.DrawFn, links: bool) -> list[Observation]:
    """Records with times that mostly move forward, sometimes back (out of order) or far ahead (expiry)."""
    found: list[Observation] = []
    ts = 1_795_000_000.0
    for _ in range(draw(st.integers(1, 160))):
        ts += draw(st.sampled_from([0.0, 0.5, 1.0, 3.0, 7.0, -20.0, -0.25, 150.0, 500.0]))
        if links and draw(st.integers(0, 30)) == 0:
            found.append(MdnsHost(ts, SOURCES[0], "laptop.local", (SOURCES[0], SOURCES[6])))
        else:
            found.append(draw(conn_records())._replace(ts=ts))
    return found


def one_by_one(config: DetectionConfig, stream: Sequence[Observation]) -> tuple[list[bytes], Correlator]:
    correlator, watermark = Correlator(config), Watermark(config.lateness)
    alerts = [alert for observation in stream
              for alert in correlator.observe(observation, watermark.logged(observation.ts))]
    alerts += correlator.flush(watermark.now)
    return [render_line(alert, "t", "ecs") for alert in alerts], correlator


def in_blocks(config: DetectionConfig, stream: Sequence[Observation], cuts: list[int]) -> tuple[list[bytes],
                                                                                                  Correlator]:
    """The same stream, its conn records handed on in blocks (cut at ``cuts``), anything else one by one."""
    correlator, watermark = Correlator(config), Watermark(config.lateness)
    alerts = []
    block: list[ConnAttempt] = []

    def hand_on() -> None:
        if block:
            rows = ConnRows.of(block)
            alerts.extend(correlator.observe_many(rows, watermark.logged_many(rows.ts)))
            block.clear()

    for index, observation in enumerate(stream):
        if index in cuts:
            hand_on()
        if isinstance(observation, ConnAttempt):
            block.append(observation)
        else:
            hand_on()
            alerts.extend(correlator.observe(observation, watermark.logged(observation.ts)))
    hand_on()
    alerts += correlator.flush(watermark.now)
    return [render_line(alert, "t", "ecs") for alert in alerts], correlator


def state(correlator: Correlator) -> object:
    """Everything the correlator keeps, in order, as plain values."""

    def track(item: tuple[object, Track]) -> tuple[object, ...]:
        key, found = item
        detail = found.detail
        return (key, found.source, found.first_seen, found.last_seen, found.llr, found.probes, found.outbound_failed,
                list(found.contacted), found.aliases,
                None if detail is None else tuple(getattr(detail, name) for name in Evidence.__slots__))

    sources = correlator._sources
    return ([track(item) for item in sources.live.items()], [track(item) for item in sources.dormant.items()],
            list(correlator._served.latest.items()), list(correlator._targets.items()),
            list(correlator._incidents._open), list(correlator._incidents._wake_at.items()),
            dataclasses.astuple(correlator.stats), correlator._next_housekeeping, correlator._next_prune)


def assert_same(config: DetectionConfig, stream: list[Observation], cuts: list[int]) -> None:
    expected, reference = one_by_one(config, stream)
    found, batched = in_blocks(config, stream, cuts)
    assert found == expected
    assert state(batched) == state(reference)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stream=streams(links=False), cuts=st.lists(st.integers(0, 160), max_size=12),
       name=st.sampled_from(sorted(CONFIGS)))
def test_blocks_judge_as_records_one_by_one(stream: list[Observation], cuts: list[int], name: str) -> None:
    assert_same(CONFIGS[name], stream, cuts)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stream=streams(links=True), cuts=st.lists(st.integers(0, 160), max_size=12))
def test_blocks_judge_as_records_one_by_one_with_linked_addresses(stream: list[Observation], cuts: list[int]) -> None:
    assert_same(CONFIGS["default"], stream, cuts)


def test_a_long_benign_day_then_a_scan_in_one_block() -> None:
    """Many working connections from many sources (the inline path), new sources past ``max_sources``,
    then a vertical scan: one block of everything and one record at a time agree."""
    config = dataclasses.replace(CONFIGS["tiny caps"], max_sources=50, max_pairs_per_source=3)
    stream: list[Observation] = []
    for n in range(2000):
        stream.append(ConnAttempt(1_795_000_000.0 + n * 0.05, ip(f"10.0.{n % 97}.{n % 13 + 1}"), 40000,
                                  TARGETS[n % 8], PORTS[n % 3], Transport.TCP, Outcome.ESTABLISHED))
    for port in range(1, 40):
        stream.append(ConnAttempt(1_795_000_100.0 + port, ip("10.0.0.66"), 40000, TARGETS[0], port, Transport.TCP,
                                  Outcome.REJECTED, f"S{port}"))
    expected, _ = one_by_one(config, stream)
    assert any(b'"port_scan"' in line for line in expected), "the scan is found"
    assert_same(config, stream, [])


@settings(max_examples=300, deadline=None)
@given(times=st.lists(st.one_of(st.floats(1e9, 2e9), st.sampled_from([math.nan, math.inf, -math.inf, 5.0])),
                      max_size=30),
       lateness=st.sampled_from([0.0, 15.0, 300.0]), start=st.sampled_from([-math.inf, 1.5e9, 1e9 + 0.1]),
       wall=st.sampled_from([None, 1.5e9]))
def test_the_watermark_of_a_block_is_that_of_its_records_one_by_one(times: list[float], lateness: float, start: float,
                                                                   wall: float | None) -> None:
    one, block = Watermark(lateness, start=start), Watermark(lateness, start=start)
    expected = [one.logged(ts, wall) for ts in times]
    assert [repr(now) for now in block.logged_many(times, wall)] == [repr(now) for now in expected]
    assert (repr(block.now), repr(block.logged(2e9))) == (repr(one.now), repr(one.logged(2e9)))
