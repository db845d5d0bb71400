"""Zeek's logs of who holds an address (dhcp, dns answers, ntlm, kerberos, software, conn's orig_l2_addr) →
IdentitySeen: the real captures' records, hostile values, and -- when ``zeek`` is on PATH -- Zeek run again
over the captures' pcaps writes the records committed in tests/data/identity."""

from __future__ import annotations

import shutil
import subprocess
from ipaddress import ip_address
from pathlib import Path

import pytest

from sensor.observations import ConnRows, IdentitySeen
from sensor.zeek.identity import VALUE_CAP, claimed, dns_answer, reversed_address
from sensor.zeek.logs import MalformedLog, ZeekLog
from sensor.zeek.records import observations, to_observation, wanted_fields

DATA = Path(__file__).resolve().parents[1] / "data" / "identity"


def _seen(directory: Path) -> list[IdentitySeen]:
    found: list[IdentitySeen] = []
    for path in sorted(directory.glob("*.log")):
        log = ZeekLog(path, MalformedLog())
        for batch in log.batches(wanted_fields):
            made = observations(log, batch)
            if not isinstance(made, ConnRows):
                found += [item for item in made if isinstance(item, IdentitySeen)]
    return sorted(found, key=lambda item: (item.ts, item.via))


@pytest.mark.parametrize("flavour", ["zeek", "zeek-json"])
def test_the_real_logs_say_who_held_the_address(flavour: str) -> None:
    seen = _seen(DATA / "wks_scan" / flavour)
    address = ip_address("10.77.0.136")
    assert [(item.via, item.mac or item.host_name or item.domain or item.user or item.software) for item in seen] == [
        ("dhcp", "02:77:00:00:00:17"), ("software", "curl/7.88.1"), ("kerberos", "alice@CORP.TEST"),
        ("kerberos", "alice@CORP.TEST"), ("dns_ptr", "wks-17.corp.test"), ("dns_a", "wks-17.corp.test"),
        ("ntlm", "WKS-17")]
    dhcp = seen[0]
    assert dhcp.addresses == (address,) and dhcp.host_name == "wks-17" and dhcp.domain == "wks-17.corp.test"
    assert dhcp.valid_for == 600.0 and dhcp.lease == "ack"
    assert seen[-1].user == "CORP\\alice"
    assert all(item.addresses == (address,) for item in seen)
    log = ZeekLog(DATA / "wks_scan" / flavour / "conn.log", MalformedLog())
    macs = {(str(row.source), row.source_mac) for batch in log.batches(wanted_fields)
            for row in observations(log, batch) if isinstance(batch, object)}
    assert ("10.77.0.136", "02:77:00:00:00:17") in macs


def test_a_release_and_a_grant_to_another_mac() -> None:
    seen = [item for item in _seen(DATA / "reassigned" / "zeek") if item.via == "dhcp"]
    assert [(item.lease, item.mac, item.host_name) for item in seen] == [
        ("ack", "02:77:00:00:00:17", "wks-17"), ("release", "02:77:00:00:00:17", "wks-17"),
        ("ack", "02:77:00:00:00:18", "lap-03")]


def test_hostile_values_are_stripped_capped_or_dropped() -> None:
    assert claimed("evil\x1b[31m\nname.") == "evil[31mname"
    assert len(claimed("a" * 5000)) == VALUE_CAP
    assert claimed(None) == "" and claimed(7) == ""
    record = {"ts": 1.0, "client_addr": "10.0.0.5", "assigned_addr": "10.0.0.5", "mac": "not-a-mac",
              "host_name": "\x00\x07", "msg_types": ["REQUEST", "ACK"], "lease_time": 60.0}
    seen = to_observation("dhcp", record)
    assert isinstance(seen, IdentitySeen) and seen.mac == "" and seen.host_name == ""
    assert to_observation("dhcp", {**record, "msg_types": ["DISCOVER", "OFFER"]}) is None
    assert to_observation("ntlm", {"ts": 1.0, "id.orig_h": "10.0.0.5", "username": "x", "success": False}) is None
    assert to_observation("kerberos", {"ts": 1.0, "id.orig_h": "10.0.0.5", "client": "x/R", "success": False}) is None
    assert to_observation("software", {"ts": 1.0, "host": "10.0.0.5", "host_p": 80, "name": "nginx"}) is None
    with pytest.raises(ValueError):
        to_observation("software", {"ts": 1.0, "host": "not an address", "name": "curl"})


def test_dns_answers_name_the_address_asked_about() -> None:
    assert reversed_address("136.0.77.10.in-addr.arpa") == ip_address("10.77.0.136")
    nibbles = ".".join(reversed(f"{int(ip_address('fd77::17')):032x}")) + ".ip6.arpa"
    assert reversed_address(nibbles) == ip_address("fd77::17")
    assert reversed_address("999.0.77.10.in-addr.arpa") is None and reversed_address("example.com") is None
    answer = dns_answer({"ts": 1.0, "query": "nas.corp", "qtype_name": "AAAA", "answers": ["fd77::20", "fd77::21"],
                         "TTLs": [300.0, 60.0]})
    assert answer is not None and answer.addresses == (ip_address("fd77::20"), ip_address("fd77::21"))
    assert answer.domain == "nas.corp" and answer.valid_for == 60.0 and answer.via == "dns_a"
    assert dns_answer({"ts": 1.0, "query": "x.corp", "qtype_name": "A", "answers": ["alias.corp"]}) is None
    assert dns_answer({"ts": 1.0, "query": "x.corp", "qtype_name": "TXT", "answers": ["10.0.0.1"]}) is None


IDENTITY_LOGS = ("dhcp.log", "dns.log", "ntlm.log", "kerberos.log", "software.log")


def _records(path: Path) -> list[tuple[str, ...]]:
    """A TSV log's records without Zeek's uids (random in every run), sorted (the order of a run's writes varies)."""
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    fields = next(line for line in lines if line.startswith("#fields")).split("\t")[1:]
    kept = [index for index, name in enumerate(fields) if name not in ("uid", "uids")]
    return sorted(tuple(line.split("\t")[index] for index in kept) for line in lines if not line.startswith("#"))


@pytest.mark.skipif(shutil.which("zeek") is None, reason="zeek is not on PATH")
@pytest.mark.parametrize("name", ["wks_scan", "reassigned"])
def test_zeek_writes_the_committed_records_again(name: str, tmp_path: Path) -> None:
    subprocess.run(["zeek", "-C", "-r", str(DATA / name / "capture.pcap"), "local",
                    "policy/protocols/conn/mac-logging", "Site::local_nets += {10.0.0.0/8}"], cwd=tmp_path,
                   check=True, timeout=120, capture_output=True)
    for log in IDENTITY_LOGS:
        assert _records(tmp_path / log) == _records(DATA / name / "zeek" / log), log
