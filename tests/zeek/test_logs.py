"""The Zeek log reader: header-driven TSV, JSON, gzip, rotation names, and bad input of every kind."""

from __future__ import annotations

import datetime
import gzip
import io
import ipaddress
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sensor.config import default_config
from sensor.daemon.stateform import Decoder, Encoder
from sensor.errors import LogReadError
from sensor.observations import ConnAttempt, Outcome, Transport
from sensor.replay import replay
from sensor.zeek import records as zeek_records
from sensor.zeek.logs import ZeekLog, discover, log_kind
from sensor.zeek.malformed import MalformedLog
from sensor.zeek.records import address, to_observation, wanted_fields
from tests.alertcheck import parse_alerts
from tests.conftest import CAPTURES

S1_CONN = CAPTURES / "s1_vertical_syn" / "zeek" / "conn.log"
HEADER = (
    "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tconn\n"
    "#open\t2026-11-28-10-00-00\n"
)


def tsv(fields: list[str], types: list[str], rows: list[list[str]], close: bool = True) -> str:
    text = HEADER + "#fields\t" + "\t".join(fields) + "\n#types\t" + "\t".join(types) + "\n"
    text += "".join("\t".join(row) + "\n" for row in rows)
    return text + ("#close\t2026-11-28-11-00-00\n" if close else "")


def observations(path: Path) -> tuple[list[ConnAttempt], MalformedLog]:
    malformed = MalformedLog()
    found = []
    for kind, record in ZeekLog(path, malformed).records(wanted_fields):
        observation = to_observation(kind, record)
        if isinstance(observation, ConnAttempt):
            found.append(observation)
    return found, malformed


def replay_alerts(*paths: Path) -> list[dict]:
    out = io.BytesIO()
    replay(list(paths), default_config(), out)
    return parse_alerts(out.getvalue())


def test_columns_are_found_by_name_in_any_order_with_extra_and_new_columns(tmp_path: Path) -> None:
    fields = ["ip_proto", "id.resp_p", "my_package_field", "history", "id.resp_h", "uid", "conn_state", "proto",
              "id.orig_p", "id.orig_h", "ts", "t1046_tags", "resp_pkts"]
    types = ["count", "port", "vector[string]", "string", "addr", "string", "string", "enum", "port", "addr",
             "time", "set[string]", "count"]
    rows = [["6", "22", "a,b", "ShR", "10.0.0.2", "Cx1", "RSTO", "tcp", "4000", "10.0.0.1", "100.5", "half_open",
             "1"],
            ["17", "53", "(empty)", "D", "fd00::2", "Cx2", "S0", "udp", "4001", "fd00::1", "101.0", "-", "0"]]
    path = tmp_path / "conn.log"
    path.write_text(tsv(fields, types, rows))
    found, malformed = observations(path)
    assert malformed.total == 0
    assert [(str(o.source), o.target_port, o.transport, o.outcome, o.zeek_tags) for o in found] == [
        ("10.0.0.1", 22, Transport.TCP, Outcome.HALF_OPEN, frozenset({"half_open"})),
        ("fd00::1", 53, Transport.UDP, Outcome.UNANSWERED, frozenset()),
    ]


def test_escapes_unset_and_empty_values(tmp_path: Path) -> None:
    fields = ["ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "proto", "note", "msg", "src", "p",
              "n", "actions"]
    types = ["time", "string", "addr", "port", "addr", "port", "enum", "enum", "string", "addr", "port", "count",
             "set[enum]"]
    row = ["5.0", "-", "-", "-", "-", "-", "-", "Scan::Address_Scan", "tab\\x09here \\x5cx", "10.0.0.7", "445/tcp",
           "-", "(empty)"]
    path = tmp_path / "notice.log"
    path.write_text(tsv(fields, types, [row]).replace("#path\tconn", "#path\tnotice").replace("445/tcp", "445"))
    malformed = MalformedLog()
    records = list(ZeekLog(path, malformed).records(lambda kind: ("msg", "src", "p", "n", "uid", "note")))
    assert records == [("notice", {"msg": "tab\there \\x", "src": "10.0.0.7", "p": 445,
                                   "note": "Scan::Address_Scan"})]


@pytest.mark.parametrize(("name", "kind"), [
    ("conn.log", "conn"),
    ("conn.log.gz", "conn"),
    ("conn.2026-11-28-10-00-00.log", "conn"),
    ("conn.10:00:00-11:00:00.log.gz", "conn"),
    ("conn__2026-11-28-10-00-00__2026-11-28-11-00-00__.log", "conn"),
    ("notice.09:00:00-10:00:00.log.gz", "notice"),
    ("dns.log", "dns"),
    ("t1046.log", "t1046"),
    ("conn.log.1", "conn"),
    ("README.md", None),
    ("conn-summary.log.txt", None),
])
def test_rotated_file_names(name: str, kind: str | None) -> None:
    assert log_kind(name) == kind


def test_a_directory_of_rotated_gzipped_logs_replays_like_the_live_file(tmp_path: Path) -> None:
    lines = S1_CONN.read_text().splitlines(keepends=True)
    header = [line for line in lines if line.startswith("#") and not line.startswith("#close")]
    data = [line for line in lines if not line.startswith("#")]
    parts = [data[:300], data[300:600], data[600:]]
    (tmp_path / "log-queue").mkdir()
    with gzip.open(tmp_path / "conn.10:00:00-11:00:00.log.gz", "wt") as stream:
        stream.writelines(header + parts[0])
    (tmp_path / "log-queue" / "conn__2026-11-28-11-00-00__2026-11-28-12-00-00__.log").write_text(
        "".join(header + parts[1]))
    (tmp_path / "conn.log").write_text("".join(header + parts[2]))
    (tmp_path / "http.log").write_text("not read")
    streams = discover([tmp_path])
    assert [(kind, [p.name for p in files]) for kind, files in streams] == [
        ("conn", ["conn.10:00:00-11:00:00.log.gz", "conn__2026-11-28-11-00-00__2026-11-28-12-00-00__.log",
                  "conn.log"])]
    rotated = replay_alerts(tmp_path)
    whole = replay_alerts(S1_CONN)
    assert rotated[-1]["t1046"]["counts"] == whole[-1]["t1046"]["counts"]
    assert rotated[-1]["t1046"]["counts"]["distinct_ports"] == 1000


@pytest.mark.parametrize("oldest_first", [
    ["conn.log.10", "conn.log.9.gz", "conn.log.2", "conn.log.1", "conn.log"],
    ["conn.2026-11-28-08-00-00.log", "conn.2026-11-28-09-00-00.log.gz", "conn.2026-11-28-10-00-00.log", "conn.log"],
    ["log-queue/conn__2026-11-28-09-00-00__2026-11-28-10-00-00__.log",
     "log-queue/conn__2026-11-28-10-00-00__2026-11-28-11-00-00__.log", "conn.log"],
    ["2026-11-28/conn.08:00:00-09:00:00.log.gz", "2026-11-28/conn.09:00:00-10:00:00.log.gz",
     "2026-11-29/conn.08:00:00-09:00:00.log.gz", "2026-11-29/conn.23:00:00-00:00:00.log.gz"],
], ids=["numbered", "dated", "log-queue", "zeekctl-days"])
def test_rotated_files_are_read_oldest_first_by_the_age_their_names_give(tmp_path: Path,
                                                                         oldest_first: list[str]) -> None:
    header = "".join(line for line in S1_CONN.read_text().splitlines(keepends=True) if line.startswith("#"))
    for age, name in enumerate(reversed(oldest_first)):  # modification times contradict the names
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(header)
        os.utime(path, (1_800_000_000 + 3600 * age,) * 2)
    given = sorted({tmp_path / name.split("/")[0] if "/" in name and "log-queue" not in name else tmp_path
                    for name in oldest_first})
    ((kind, files),) = discover(given)
    assert kind == "conn"
    assert [str(path.relative_to(tmp_path)) for path in files] == oldest_first


def test_rotated_files_without_a_time_or_number_in_their_names_are_read_by_modification_time(
        tmp_path: Path) -> None:
    for age, name in enumerate(["conn.before-upgrade.log", "conn.archive.log", "conn.log"]):
        (tmp_path / name).write_text("")
        os.utime(tmp_path / name, (1_800_000_000 + 60 * age,) * 2)
    ((_, files),) = discover([tmp_path])
    assert [path.name for path in files] == ["conn.before-upgrade.log", "conn.archive.log", "conn.log"]


def _retimed(lines: list[str], start: float, scanner: str) -> list[str]:
    """Capture lines of one scanner moved to start at ``start`` and to come from ``scanner``."""
    first = min(float(line.split("\t", 1)[0]) for line in lines)
    moved = []
    for line in lines:
        ts, uid, _orig, rest = line.split("\t", 3)
        moved.append(f"{float(ts) - first + start:.6f}\t{uid}\t{scanner}\t{rest}")
    return moved


def test_replay_of_several_zeekctl_day_directories_reads_their_hours_in_time_order(tmp_path: Path) -> None:
    """zeekctl archives one directory per day; replaying two days must not interleave their hours."""
    text = S1_CONN.read_text().splitlines(keepends=True)
    header = [line for line in text if line.startswith("#") and not line.startswith("#close")]
    data = [line for line in text if not line.startswith("#")][:200]
    hours = [("2026-11-28", 8), ("2026-11-28", 9), ("2026-11-29", 8), ("2026-11-29", 9)]
    for number, (day, hour) in enumerate(hours, start=1):
        start = datetime.datetime.fromisoformat(f"{day}T{hour:02d}:00:05+00:00").timestamp()
        directory = tmp_path / day
        directory.mkdir(exist_ok=True)
        with gzip.open(directory / f"conn.{hour:02d}:00:00-{hour + 1:02d}:00:00.log.gz", "wt") as stream:
            stream.writelines(header + _retimed(data, start, f"10.9.0.{number}"))
    alerts = replay_alerts(tmp_path / "2026-11-29", tmp_path / "2026-11-28")
    first_alerts = list(dict.fromkeys(alert["source"]["ip"] for alert in alerts))
    assert first_alerts == ["10.9.0.1", "10.9.0.2", "10.9.0.3", "10.9.0.4"], "scanners met in time order"
    for source in first_alerts:
        stamps = [alert["@timestamp"] for alert in alerts if alert["source"]["ip"] == source]
        assert stamps == sorted(stamps), f"{source}: its updates follow its evidence"
    opened = [alert["@timestamp"] for alert in alerts if alert["t1046"]["update"] == 1]
    assert opened == sorted(opened), "incidents open in the logs' time order"
    alone = replay_alerts(tmp_path / "2026-11-28" / "conn.08:00:00-09:00:00.log.gz")[-1]["t1046"]["counts"]
    for scanner in first_alerts:
        last = [alert for alert in alerts if alert["source"]["ip"] == scanner][-1]
        assert last["t1046"]["counts"] == alone, f"{scanner}: every probe of its hour counted"


def test_garbage_lines_are_skipped_and_counted_and_good_lines_still_count(tmp_path: Path) -> None:
    lines = S1_CONN.read_bytes().splitlines(keepends=True)
    junk = [b"garbage without tabs\n", b"1.0\t2.0\n", b"\x00\xff\xfe binary \x80\x81\n",
            b"\t".join([b"1795898115.4"] + [b"x"] * 20) + b"\n"]
    bad_ip = lines[8].replace(b"10.200.0.10", b"10.200.0.999")
    mixed = lines[:8] + junk + [bad_ip] + lines[8:] + [b"1795898115.5\tCtrunc\t10.200"]
    path = tmp_path / "conn.log"
    path.write_bytes(b"".join(mixed))
    out = io.BytesIO()
    summary = replay([path], default_config(), out)
    assert summary.malformed == len(junk) + 2  # + the bad address, + the truncated last line
    assert parse_alerts(out.getvalue())[-1]["t1046"]["counts"]["distinct_ports"] == 1000


def test_a_ten_megabyte_line_is_skipped_without_losing_its_neighbours(tmp_path: Path) -> None:
    lines = S1_CONN.read_bytes().splitlines(keepends=True)
    huge = b"1795898115.0\t" + b"A" * (10 << 20) + b"\n"
    path = tmp_path / "conn.log"
    path.write_bytes(b"".join([*lines[:100], huge, *lines[100:]]))
    found, malformed = observations(path)
    assert malformed.total == 1
    assert len(found) == 1000


def test_binary_junk_file_is_a_clear_error_with_non_zero_exit(tmp_path: Path) -> None:
    junk = tmp_path / "conn.log"
    junk.write_bytes(bytes(range(256)) * 64)
    with pytest.raises(LogReadError, match=r"neither a Zeek log .* nor a flow log"):
        replay([junk], default_config(), io.BytesIO())
    result = subprocess.run([sys.executable, "-m", "sensor", "replay", str(junk)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 1
    assert "neither a Zeek log" in result.stderr and result.stdout == ""


def test_missing_and_unreadable_inputs_exit_non_zero(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "sensor", "replay", str(tmp_path / "nope.log")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "no such file" in result.stderr
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    result = subprocess.run([sys.executable, "-m", "sensor", "replay", str(empty_dir)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 1
    assert "no conn, notice, dns, t1046, t1046_mdns, dhcp, ntlm, kerberos or software logs" in result.stderr


def test_truncated_gzip_keeps_what_was_readable(tmp_path: Path) -> None:
    packed = gzip.compress(S1_CONN.read_bytes())
    path = tmp_path / "conn.log.gz"
    path.write_bytes(packed[: len(packed) * 2 // 3])
    found, malformed = observations(path)
    assert 300 < len(found) < 1000
    assert malformed.total >= 1


def test_json_logs_with_iso_times_absent_fields_and_bad_lines(tmp_path: Path) -> None:
    source = CAPTURES / "s2_horizontal_syn_routed" / "zeek-json" / "conn.log"
    out_lines = []
    for number, line in enumerate(source.read_text().splitlines()):
        record = json.loads(line)
        record.pop("history", None) if number % 2 else None
        record.pop("service", None)
        if number % 3 == 0:
            from datetime import UTC, datetime

            record["ts"] = datetime.fromtimestamp(record["ts"], UTC).isoformat().replace("+00:00", "Z")
        out_lines.append(json.dumps(record))
    out_lines[5:5] = ["{not json", "[1, 2]", '{"ts": 1.0}']
    path = tmp_path / "conn.json"
    path.write_text("\n".join(out_lines) + "\n")
    out = io.BytesIO()
    summary = replay([path], default_config(), out)
    assert summary.malformed == 3
    alerts = parse_alerts(out.getvalue())
    assert {a["source"]["ip"] for a in alerts} == {"10.201.0.10"}
    assert alerts[-1]["t1046"]["counts"]["distinct_hosts"] == 80


def test_malformed_warnings_cannot_flood_stderr(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    lines = S1_CONN.read_text().splitlines(keepends=True)
    path = tmp_path / "conn.log"
    path.write_text("".join(lines[:8] + ["bad line\n"] * 5000 + lines[8:]))
    with caplog.at_level(logging.WARNING):
        summary = replay([path], default_config(), io.BytesIO())
    assert summary.malformed == 5000
    assert len(caplog.records) <= 4
    assert "5000 malformed lines" in caplog.records[-1].getMessage()


def test_gzipped_copy_of_every_capture_gives_the_same_alerts(tmp_path: Path) -> None:
    for name in ("s1_vertical_syn", "s6_udp_scan", "s8_mdns_browse"):
        target = tmp_path / name
        target.mkdir()
        for log in (CAPTURES / name / "zeek").glob("*.log"):
            with log.open("rb") as plain, gzip.open(target / (log.name + ".gz"), "wb") as packed:
                shutil.copyfileobj(plain, packed)
        assert replay_alerts(target) == replay_alerts(CAPTURES / name / "zeek")


@pytest.mark.parametrize("text", ["10.1.2.3", "fe80::1", "2001:db8::1:0:0:1", "::ffff:192.0.2.9", "fe80::1%eth0"])
def test_parsed_addresses_equal_and_hash_like_ipaddress_also_after_a_checkpoint(text: str) -> None:
    stock = ipaddress.ip_address(text)
    parsed = address(text)
    restored = Decoder([], lambda kind: ()).unpack(Encoder().pack(parsed))  # as a checkpoint holds it
    for candidate in (parsed, restored):
        assert candidate == stock
        assert hash(candidate) == hash(stock)
        assert {stock: "found"}[candidate] == "found"
    assert type(restored) is type(parsed)


class _Reports(MalformedLog):
    """Keeps every report, to compare two readings of the same file."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, int, str]] = []

    def report(self, source: str, line_number: int, reason: str) -> None:
        super().report(source, line_number, reason)
        self.seen.append((source, line_number, reason))


def _read_both_ways(path: Path) -> None:
    """The columnar reading and the line-by-line one give the same observations, counts and reports."""
    results = []
    for columnar in (True, False):
        reports = _Reports()
        log = ZeekLog(path, reports, columnar=columnar)
        found = [obs for batch in log.batches(wanted_fields) for obs in zeek_records.observations(log, batch)]
        results.append((found, log.records_read, sorted(reports.seen)))
    assert results[0] == results[1]


_CONN_FIELDS = ["ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "proto", "service", "duration",
                "conn_state", "history", "resp_pkts", "ip_proto", "t1046_tags"]
_CONN_TYPES = ["time", "string", "addr", "port", "addr", "port", "enum", "string", "interval", "string", "string",
               "count", "count", "set[string]"]
_CLEAN = {
    "ts": st.one_of(st.floats(1.7e9, 1.8e9).map(lambda t: f"{t:.6f}"),
                    st.sampled_from(["1795000000", "1795000000.5", "0001795000000.125", "-1.5", "-"])),
    "uid": st.one_of(st.text("CDabcxyz0123", min_size=1, max_size=8), st.sampled_from(["-", "(empty)"])),
    "id.orig_h": st.sampled_from(["10.0.0.1", "10.0.0.2", "10.1.0.66", "fe80::1", "2001:db8::1"]),
    "id.resp_h": st.sampled_from(["10.0.0.20", "10.0.0.21", "10.9.9.9", "224.0.0.251", "2001:db8::2"]),
    "id.orig_p": st.one_of(st.integers(0, 65535).map(str), st.sampled_from(["8", "8", "128", "0080", "-"])),
    "id.resp_p": st.one_of(st.integers(0, 65535).map(str), st.sampled_from(["0", "3", "-"])),
    "proto": st.sampled_from(["tcp", "tcp", "udp", "icmp", "icmp", "sctp"]),
    "service": st.sampled_from(["-", "http", "ssh", "(empty)", "dns,http"]),
    "duration": st.sampled_from(["-", "0.1", "12.5"]),
    "conn_state": st.sampled_from(["REJ", "S0", "SF", "OTH", "RSTR", "SH", "RSTOS0", "RSTRH", "SHR", "-"]),
    "history": st.one_of(st.text("ShADadFfRrIQ^", max_size=6), st.just("-")),
    "resp_pkts": st.sampled_from(["0", "1", "3", "-", "0", "1"]),
    "ip_proto": st.sampled_from(["6", "17", "-"]),
    "t1046_tags": st.sampled_from(["-", "(empty)", "(empty)", "(empty)", "scan", "half_open,scan", "honeyport",
                                   "stealth", "unanswered", "rejected,icmp_unreachable", "dark_address"]),
}
_BAD = {"ts": ["abc", "", " 1795000000.25", "1e9"], "id.orig_h": ["-", "10.0.0.999"], "id.resp_h": ["-", "x"],
        "id.orig_p": ["p", "+5", "99999999999999999999"], "id.resp_p": ["1.5"], "proto": ["-"],
        "duration": ["bad"], "resp_pkts": ["x", "-2"]}
_ROW = st.fixed_dictionaries(_CLEAN)
_DAMAGE = st.one_of(st.just(("", "", "")), st.tuples(
    st.sampled_from(sorted(_BAD)), st.integers(0, 3), st.sampled_from(["", "\textra", "\\x41", "\r", "\xff",
                                                                          "\n", '\n{"ts": 1.0}'])))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sections=st.lists(st.tuples(st.permutations(range(len(_CONN_FIELDS))),
                                   st.lists(_ROW, max_size=40), st.lists(st.tuples(st.integers(0, 39), _DAMAGE),
                                                                         max_size=2)),
                         min_size=1, max_size=3))
def test_columnar_reading_equals_reading_line_by_line(
        sections: list[tuple[list[int], list[dict[str, str]], list[tuple[int, tuple[str, int, str]]]]]) -> None:
    text = HEADER
    for order, rows, damages in sections:
        text += ("#fields\t" + "\t".join(_CONN_FIELDS[i] for i in order) + "\n#types\t"
                 + "\t".join(_CONN_TYPES[i] for i in order) + "\n")
        lines = ["\t".join(row[_CONN_FIELDS[i]] for i in order) for row in rows]
        for where, (field, choice, tail) in damages:
            if where < len(rows) and field:
                row = dict(rows[where], **{field: _BAD[field][choice % len(_BAD[field])]})
                lines[where] = "\t".join(row[_CONN_FIELDS[i]] for i in order) + tail
        text += "".join(line + "\n" for line in lines) + "#close\t2026-11-28-11-00-00\n"
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "conn.log"
        path.write_bytes(text.encode().replace("\xff".encode(), b"\xff"))
        _read_both_ways(path)


def test_columnar_reading_of_every_test_log_equals_reading_line_by_line() -> None:
    logs = sorted(Path(__file__).resolve().parents[1].joinpath("data").rglob("*.log"))
    assert len(logs) >= 40
    for path in logs:
        if log_kind(path.name) in ("conn", "notice", "dns", "t1046"):
            _read_both_ways(path)


def test_a_bad_line_in_a_large_block_is_reported_where_it_is(tmp_path: Path) -> None:
    lines = S1_CONN.read_text().splitlines(keepends=True)
    header = [line for line in lines if line.startswith("#") and not line.startswith("#close")]
    body = [line for line in lines if not line.startswith("#")]
    rows = (body * (1 + 30000 // len(body)))[:30000]
    rows[12345] = "10.0.0.1\tbroken\n"
    path = tmp_path / "conn.log"
    path.write_text("".join(header + rows))
    assert path.stat().st_size > 3 * (1 << 20), "more than one block"
    reports = _Reports()
    log = ZeekLog(path, reports)
    batches = list(log.batches(wanted_fields))
    assert any(batch.columns is not None for batch in batches), "clean blocks are decoded as columns"
    assert any(batch.columns is None for batch in batches), "the damaged block is decoded line by line"
    assert reports.seen == [(str(path), len(header) + 12346, "2 columns where the header has 21")]
    assert log.records_read == 29999
    _read_both_ways(path)
