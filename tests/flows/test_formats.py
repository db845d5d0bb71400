"""Each flow-log format's parser on its provider's documented records, the joins' verdicts, and the parsers'
boundary: arbitrary input never raises past it (hypothesis)."""

from __future__ import annotations

import json
from ipaddress import ip_address
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sensor.config import FlowConfig
from sensor.flows.join import FlowJoin, PacketJoin
from sensor.flows.read import FlowParser, FlowReader, sniff
from sensor.flows.records import RST, SYN, FlowRecord, Verdict
from sensor.observations import ConnAttempt, Outcome, Transport
from sensor.zeek.malformed import MalformedLog

DATA = Path(__file__).resolve().parents[1] / "data" / "flows"


def records(fmt: str, name: str) -> list[FlowRecord]:
    malformed = MalformedLog()
    found = list(FlowParser(fmt, malformed, name, year=2026).lines((DATA / name).read_bytes()))
    assert malformed.total == 0
    return found


def attempts(fmt: str, name: str) -> list[ConnAttempt]:
    blocks = FlowReader(FlowConfig(format=fmt), [DATA / name], MalformedLog()).blocks()
    return [attempt for block in blocks for attempt in block]


@pytest.mark.parametrize(("name", "fmt"), [("aws-docs.log", "aws"), ("aws-docs-v5.log", "aws"),
                                           ("gcp-docs.json", "gcp"), ("azure-nsg-docs.json", "azure"),
                                           ("azure-vnet-docs.json", "azure"),
                                           ("ulogd.json", "ulogd"), ("kern.log", "netfilter")])
def test_each_fixture_is_told_by_its_content(name: str, fmt: str) -> None:
    assert sniff((DATA / name).read_bytes()[:65536]) == fmt


def test_aws_default_records_as_documented() -> None:
    found = records("aws", "aws-docs.log")
    assert [(str(r.source), r.target_port, r.verdict, r.packets, r.bytes, r.ts) for r in found] == [
        ("172.31.16.139", 22, Verdict.ACCEPT, 20, 4249, 1418530010.0),
        ("172.31.9.69", 3389, Verdict.REJECT, 20, 4249, 1418530010.0)]  # NODATA and SKIPDATA carry no flow
    by_port = {attempt.target_port: attempt.outcome for attempt in attempts("aws", "aws-docs.log")}
    assert by_port == {3389: Outcome.UNANSWERED}  # 20 packets one way with no reply: a stream, judged by nothing
    assert all(attempt.via == "aws_vpc_flow" for attempt in attempts("aws", "aws-docs.log"))


def test_aws_custom_format_flags_and_direction() -> None:
    found = records("aws", "aws-docs-v5.log")
    assert [(r.flags, r.origin is not None) for r in found] == [(SYN, False), (18, True)]
    assert found[1].origin is not None and found[1].origin.interface == "eni-1235b8ca123456789"
    (attempt,) = attempts("aws", "aws-docs-v5.log")
    assert (str(attempt.source), attempt.target_port, attempt.outcome) == ("52.213.180.42", 5001, Outcome.ESTABLISHED)


def test_gcp_flow_and_firewall_entries() -> None:
    flow, denied = records("gcp", "gcp-docs.json")
    assert (flow.packets, flow.bytes, flow.reporter) == (12, 3140, "DEST/server-vm")
    assert flow.origin is not None and (flow.origin.account, flow.origin.instance) == ("my-project", "client-vm")
    assert denied.verdict is Verdict.DROP and denied.target_port == 3389
    outcomes = {attempt.target_port: attempt.outcome for attempt in attempts("gcp", "gcp-docs.json")}
    assert outcomes[3389] is Outcome.UNANSWERED


def test_azure_tuples_count_both_directions() -> None:
    allowed, begin = records("azure", "azure-nsg-docs.json")
    assert (allowed.packets, allowed.bytes, allowed.reply_packets, allowed.reply_bytes) == (30, 16978, 24, 14008)
    assert allowed.origin is not None and allowed.origin.interface == "000D3AF87856"
    assert allowed.origin.network == "FABRIAKMVM1-NSG"
    assert begin.verdict is Verdict.DROP
    vnet = records("azure", "azure-vnet-docs.json")
    assert [(r.ts, r.new) for r in vnet] == [(1663146003.599, False), (1663146003.606, True), (1663146004.0, True)]
    outcomes = {attempt.target_port: attempt.outcome for attempt in attempts("azure", "azure-vnet-docs.json")}
    assert outcomes == {443: Outcome.ESTABLISHED, 22: Outcome.UNANSWERED}


def test_firewall_lines_and_ulogd_packets() -> None:
    drop, accept, answer, reject = records("netfilter", "kern.log")  # the sshd line is no netfilter line
    assert (drop.verdict, drop.flags, drop.target_port) == (Verdict.DROP, SYN, 9999)
    assert (answer.verdict, answer.flags) == (Verdict.ANSWER, RST | 16)
    assert (reject.transport, reject.verdict, reject.target_port) == (Transport.UDP, Verdict.REJECT, 161)
    assert accept.ts == pytest.approx(1796301382.0)
    by_port = {attempt.target_port: attempt.outcome for attempt in attempts("netfilter", "kern.log")}
    assert by_port == {9999: Outcome.UNANSWERED, 22: Outcome.REJECTED, 161: Outcome.REJECTED}
    (packet,) = records("ulogd", "ulogd.json")
    assert (packet.verdict, packet.flags, packet.ts) == (Verdict.REJECT, SYN, pytest.approx(1796301382.510431))


def _packet(ts: float, source: str, sport: int, target: str, dport: int, flags: int, verdict: Verdict) -> FlowRecord:
    return FlowRecord(ts, Transport.TCP, ip_address(source), sport, ip_address(target), dport, verdict, flags=flags)


def test_an_accepted_syn_waits_for_its_answer_and_state_stays_bounded() -> None:
    made: list[ConnAttempt] = []
    join = PacketJoin("firewall", made.append, answer_wait=5.0, cap=100)
    join.add(_packet(0.0, "10.0.0.1", 40000, "10.0.0.2", 80, SYN, Verdict.ACCEPT))
    join.add(_packet(0.1, "10.0.0.2", 80, "10.0.0.1", 40000, SYN | 16, Verdict.ANSWER))
    join.add(_packet(1.0, "10.0.0.1", 40001, "10.0.0.2", 81, SYN, Verdict.ACCEPT))
    assert [attempt.outcome for attempt in made] == [Outcome.ESTABLISHED]
    join.add(_packet(7.0, "10.0.0.9", 1, "10.0.0.2", 1, 16, Verdict.ANSWER))  # time moves on: 81 went unanswered
    assert [attempt.outcome for attempt in made] == [Outcome.ESTABLISHED, Outcome.UNANSWERED]
    for index in range(10_000):  # a flood of accepted SYNs: the waiting state stays at its cap
        join.add(_packet(8.0, f"10.1.{index // 250}.{index % 250}", 5, "10.0.0.2", 22, SYN, Verdict.ACCEPT))
        assert len(join.waiting) <= 100
    assert join.early == 10_000 - 100


def test_a_flow_join_floods_within_its_cap() -> None:
    made: list[ConnAttempt] = []
    join = FlowJoin("aws_vpc_flow", made.append, pair_within=120.0, cap=50)
    for index in range(5000):
        join.add(_packet(0.0, f"10.2.{index // 250}.{index % 250}", 40000, "10.0.0.2", 22, SYN, Verdict.ACCEPT))
        assert len(join.flows) <= 50
    join.flush()
    assert len(made) == 5000 and {attempt.outcome for attempt in made} == {Outcome.UNANSWERED}


FORMATS = ("netfilter", "ulogd", "aws", "gcp", "azure")


@settings(max_examples=150, deadline=None)
@given(fmt=st.sampled_from(FORMATS), data=st.binary(max_size=600))
def test_arbitrary_bytes_never_raise_past_the_parser(fmt: str, data: bytes) -> None:
    malformed = MalformedLog(warn_first=0)
    parser = FlowParser(fmt, malformed, "fuzz", year=2026)
    list(parser.lines(data))
    parser.finish()


_JSON = st.recursive(st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False)
                     | st.text(max_size=20),
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                                    max_size=5), max_leaves=20)


@settings(max_examples=150, deadline=None)
@given(fmt=st.sampled_from(FORMATS), base=st.sampled_from(["gcp-docs.json", "azure-vnet-docs.json", "ulogd.json",
                                                             "azure-nsg-docs.json"]),
       key=st.text(max_size=12), value=_JSON)
def test_documented_records_with_any_field_replaced_never_raise(fmt: str, base: str, key: str, value: object) -> None:
    """A real record with one field (or a nested one) set to anything: read or counted as malformed, never raised."""
    record = json.loads((DATA / base).read_text().splitlines()[0])
    target = record["records"][0] if "records" in record else record.get("jsonPayload", record)
    target[key if key else next(iter(target))] = value
    parser = FlowParser(fmt, MalformedLog(warn_first=0), "fuzz", year=2026)
    found = list(parser.lines(orjson.dumps(record)))
    join = PacketJoin("firewall", lambda _: None) if fmt in ("netfilter", "ulogd") else FlowJoin("x", lambda _: None)
    for item in found:
        join.add(item)
    join.flush()
