"""The package's t1046_mdns.log (every question of an mDNS query) in replay: a many-type browse in one packet
alerts, though dns.log keeps one question of it; one plain question does not."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from sensor.config import default_config
from sensor.observations import MdnsQuery
from sensor.replay import replay
from sensor.zeek import KINDS
from sensor.zeek.follow import LogFollower
from sensor.zeek.malformed import MalformedLog
from sensor.zeek.records import FIELDS
from tests.alertcheck import parse_alerts
from tests.zeek.test_records import as_json, tsv

MDNS_FIELDS = [
    ("ts", "time"), ("uid", "string"), ("id.orig_h", "addr"), ("id.orig_p", "port"), ("id.resp_h", "addr"),
    ("id.resp_p", "port"), ("questions", "count"), ("query", "string"), ("qclass", "count"), ("qtype", "count"),
    ("qtype_name", "string"),
]
"""``T1046::MdnsQuestion`` of zeek_scripts/mdns.zeek, as Zeek's writers give it."""
DNS_FIELDS = [
    ("ts", "time"), ("uid", "string"), ("id.orig_h", "addr"), ("id.orig_p", "port"), ("id.resp_h", "addr"),
    ("id.resp_p", "port"), ("proto", "enum"), ("trans_id", "count"), ("query", "string"), ("qclass", "count"),
    ("qclass_name", "string"), ("qtype", "count"), ("qtype_name", "string"),
]
BROWSED = ["_http._tcp", "_https._tcp", "_mqtt._tcp", "_coap._udp", "_home-assistant._tcp", "_esphomelib._tcp",
           "_hue._tcp", "_elg._tcp", "_axis-video._tcp", "_nut._tcp", "_octoprint._tcp", "_printer._tcp",
           "_ipp._tcp", "_airplay._tcp", "_raop._tcp", "_googlecast._tcp", "_spotify-connect._tcp",
           "_sonos._tcp", "_daap._tcp"]
"""19 service types in one query: 11 unusual ones (each 1/6 of an alert) and 8 everyday ones."""
BROWSER = "10.4.4.4"


def question(ts: str, source: str, name: str, questions: int, port: str = "5353") -> list[str]:
    return [ts, "CMany1", source, port, "224.0.0.251", "5353", str(questions), name, "32769", "12", "PTR"]


def write(directory: Path, flavour: str, logs: dict[str, tuple[list[tuple[str, str]], list[list[str]]]]) -> None:
    for name, (fields, rows) in logs.items():
        (directory / f"{name}.log").write_text(tsv(name, fields, rows) if flavour == "tsv" else as_json(fields, rows))


def replayed(directory: Path) -> list[dict]:
    out = io.BytesIO()
    summary = replay([directory], default_config(), out)
    assert summary.malformed == 0
    return parse_alerts(out.getvalue())


def without_created(alert: dict) -> dict:
    """An alert less ``event.created`` (when replay emitted it)."""
    return {**alert, "event": {k: v for k, v in alert["event"].items() if k != "created"}}


def test_the_package_log_is_a_stream_the_sensor_reads_with_the_columns_it_writes() -> None:
    assert "t1046_mdns" in KINDS
    source = (Path(__file__).resolve().parents[2] / "zeek_scripts" / "mdns.zeek").read_text()
    record = re.search(r"type MdnsQuestion: record \{(.*?)\n\t\};", source, re.DOTALL)
    assert record is not None
    columns = [name for name, _ in re.findall(r"^\t\t(\w+): ([\w ]+?) &log", record.group(1), re.MULTILINE)]
    expanded = [f"id.{end}" for end in ("orig_h", "orig_p", "resp_h", "resp_p")]
    assert [name for column in columns for name in (expanded if column == "id" else [column])] == [
        name for name, _ in MDNS_FIELDS]
    assert set(FIELDS["t1046_mdns"]) <= {name for name, _ in MDNS_FIELDS}


@pytest.mark.parametrize("flavour", ["tsv", "json"])
def test_a_many_type_browse_in_one_packet_alerts_from_the_package_log(tmp_path: Path, flavour: str) -> None:
    rows = [question("1795898300.250000", BROWSER, f"{kind}.local", len(BROWSED)) for kind in BROWSED]
    last = ["1795898300.250000", "CMany1", BROWSER, "5353", "224.0.0.251", "5353", "udp", "0",
            f"{BROWSED[0]}.local", "32769", "C_INTERNET", "12", "PTR"]
    write(tmp_path, flavour, {"dns": (DNS_FIELDS, [last])})
    assert replayed(tmp_path) == [], "dns.log keeps one question: one unusual type is not many"
    write(tmp_path, flavour, {"t1046_mdns": (MDNS_FIELDS, rows)})
    alone = replayed(tmp_path)
    write(tmp_path, flavour, {"dns": (DNS_FIELDS, [last]), "t1046_mdns": (MDNS_FIELDS, rows)})
    alerts = replayed(tmp_path)
    assert [without_created(a) for a in alerts] == [without_created(a) for a in alone], \
        "the question in both logs is one piece of evidence"
    assert {a["source"]["ip"] for a in alerts} == {BROWSER}
    assert len({a["t1046"]["incident_id"] for a in alerts}) == 1
    assert alerts[0]["event"]["action"] == "mdns_service_browse"
    assert alerts[0]["rule"]["id"] == "T1046-MDNS-MANY-TYPES"
    assert alerts[0]["t1046"]["evidence_sources"] == ["zeek"]


@pytest.mark.parametrize("flavour", ["tsv", "json"])
def test_one_plain_question_and_a_routers_habit_do_not_alert(tmp_path: Path, flavour: str) -> None:
    rows = [question("1795898300.000000", "10.4.4.5", "_http._tcp.local", 1)]
    rows += [question(f"{1795898300 + 1200 * n}.000000", "10.4.4.1", "_daap._tcp.local", 1, str(49152 + 17 * n))
             for n in range(8)]
    write(tmp_path, flavour, {"t1046_mdns": (MDNS_FIELDS, rows)})
    assert replayed(tmp_path) == []


def test_the_follower_reads_the_package_log_through_rotation_and_a_restart(tmp_path: Path) -> None:
    rows = [question(f"{1795898300 + n}.000000", BROWSER, f"{kind}.local", len(BROWSED))
            for n, kind in enumerate(BROWSED)]
    text = tsv("t1046_mdns", MDNS_FIELDS, rows).splitlines(keepends=True)
    header, lines = text[:8], text[8:-1]
    live = tmp_path / "t1046_mdns.log"
    live.write_text("".join(header + lines[:5]))
    follower = LogFollower(tmp_path, MalformedLog())
    names = [o.name for o in follower.poll().observations if isinstance(o, MdnsQuery)]
    with live.open("a") as stream:
        stream.write("".join(lines[5:12]))
    restarted = LogFollower(tmp_path, MalformedLog(), streams=follower.streams, done=frozenset(follower.done))
    names += [o.name for o in restarted.poll().observations if isinstance(o, MdnsQuery)]
    with live.open("a") as stream:
        stream.write("".join(lines[12:15]))
    live.rename(tmp_path / "t1046_mdns.2030-01-01-00-00-00.log")
    live.write_text("".join(header + lines[15:]))
    names += [o.name for o in restarted.poll().observations if isinstance(o, MdnsQuery)]
    names += [o.name for o in restarted.poll().observations if isinstance(o, MdnsQuery)]
    assert names == [f"{kind}.local" for kind in BROWSED]
    assert restarted.malformed.total == 0
