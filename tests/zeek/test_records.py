"""The Zeek package's evidence (conn.log ``t1046_tags``, t1046.log, ``T1046::*`` notices) in replay.

The log lines here are in the exact format Zeek's ASCII and JSON writers give the records declared in
zeek_scripts/main.zeek (``T1046::Info`` and the ``Conn::Info`` redef).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from sensor.config import default_config
from sensor.replay import replay
from tests.alertcheck import parse_alerts

PREAMBLE = "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\t{path}\n" \
           "#open\t2026-11-28-10-00-00\n"
T1046_FIELDS = [
    ("ts", "time"), ("scanner", "addr"), ("kind", "string"), ("n_targets", "count"), ("n_ports", "count"),
    ("n_probes", "count"), ("n_failed", "count"), ("targets", "vector[addr]"), ("ports", "vector[port]"),
    ("first_seen", "time"), ("last_seen", "time"), ("uids", "vector[string]"), ("mdns_query", "string"),
    ("mdns_qtype", "string"), ("mdns_qu", "bool"), ("mdns_legacy_unicast", "bool"), ("msg", "string"),
]
CONN_FIELDS = [
    ("ts", "time"), ("uid", "string"), ("id.orig_h", "addr"), ("id.orig_p", "port"), ("id.resp_h", "addr"),
    ("id.resp_p", "port"), ("proto", "enum"), ("service", "string"), ("duration", "interval"),
    ("orig_bytes", "count"), ("resp_bytes", "count"), ("conn_state", "string"), ("local_orig", "bool"),
    ("local_resp", "bool"), ("missed_bytes", "count"), ("history", "string"), ("orig_pkts", "count"),
    ("orig_ip_bytes", "count"), ("resp_pkts", "count"), ("resp_ip_bytes", "count"),
    ("tunnel_parents", "set[string]"), ("ip_proto", "count"), ("t1046_tags", "set[string]"),
]
NOTICE_FIELDS = [
    ("ts", "time"), ("uid", "string"), ("id.orig_h", "addr"), ("id.orig_p", "port"), ("id.resp_h", "addr"),
    ("id.resp_p", "port"), ("fuid", "string"), ("file_mime_type", "string"), ("file_desc", "string"),
    ("proto", "enum"), ("note", "enum"), ("msg", "string"), ("sub", "string"), ("src", "addr"), ("dst", "addr"),
    ("p", "port"), ("n", "count"), ("peer_descr", "string"), ("actions", "set[enum]"),
    ("email_dest", "set[string]"), ("suppress_for", "interval"),
]
T1046_ROWS = [
    ["1795898200.100000", "10.6.6.6", "port_scan", "1", "250", "260", "255", "10.200.0.20", "21,22,23,25,80",
     "1795898190.000000", "1795898200.100000", "CAbc1,CAbc2", "-", "-", "-", "-",
     "10.6.6.6 probed 250 ports of 10.200.0.20"],
    ["1795898201.000000", "10.7.7.7", "mdns_service_browse", "1", "1", "1", "0", "224.0.0.251", "5353",
     "1795898201.000000", "1795898201.000000", "CMd1", "_ssh._tcp.local", "PTR", "F", "T",
     "10.7.7.7 browsed _ssh._tcp.local over mDNS"],
    ["1795898202.000000", "10.9.9.1", "address_scan", "40", "1", "40", "40", "(empty)", "(empty)",
     "1795898150.000000", "1795898202.000000", "(empty)", "-", "-", "-", "-", "sweep"],
]
CONN_ROWS = [
    ["1795898203.0", "CTrap1", "10.5.5.5", "41000", "10.200.0.99", "23", "tcp", "-", "0.000002", "0", "0", "REJ",
     "T", "T", "0", "Sr", "1", "44", "1", "40", "-", "6", "dark_address,rejected"],
    ["1795898204.0", "CNorm1", "10.200.0.30", "41001", "10.200.0.20", "80", "tcp", "http", "0.2", "80", "400",
     "SF", "T", "T", "0", "ShADadfF", "5", "300", "5", "700", "-", "6", "-"],
]
NOTICE_ROWS = [
    ["1795898205.0", "-", "-", "-", "-", "-", "-", "-", "-", "-", "T1046::Address_Scan",
     "10.8.8.8 probed 25 targets on port 445", "-", "10.8.8.8", "-", "-", "25", "-", "Notice::ACTION_LOG",
     "(empty)", "3600.000000"],
    ["1795898205.5", "-", "-", "-", "-", "-", "-", "-", "-", "-", "T1046::Mdns_Browse",
     "10.8.8.9 browsed _rfb._tcp.local over mDNS", "_rfb._tcp.local", "10.8.8.9", "-", "-", "1", "-",
     "Notice::ACTION_LOG", "(empty)", "3600.000000"],
    ["1795898206.0", "-", "-", "-", "-", "-", "-", "-", "-", "-", "CaptureLoss::Too_Little_Traffic", "x", "-", "-",
     "-", "-", "-", "-", "Notice::ACTION_LOG", "(empty)", "3600.000000"],
]


def tsv(path: str, fields: list[tuple[str, str]], rows: list[list[str]]) -> str:
    header = PREAMBLE.format(path=path)
    header += "#fields\t" + "\t".join(name for name, _ in fields) + "\n"
    header += "#types\t" + "\t".join(kind for _, kind in fields) + "\n"
    return header + "".join("\t".join(row) + "\n" for row in rows) + "#close\t2026-11-28-11-00-00\n"


def as_json(fields: list[tuple[str, str]], rows: list[list[str]]) -> str:
    """What LogAscii::use_json=T writes for the same rows: unset fields left out, typed values."""
    lines = []
    for row in rows:
        record: dict[str, object] = {}
        for (name, kind), raw in zip(fields, row, strict=True):
            if raw == "-":
                continue
            if kind.startswith(("vector", "set")):
                inner = kind[kind.index("[") + 1:-1]
                items = [] if raw == "(empty)" else raw.split(",")
                record[name] = [int(i) if inner in ("port", "count") else i for i in items]
            elif kind in ("time", "interval", "double"):
                record[name] = float(raw)
            elif kind in ("count", "port"):
                record[name] = int(raw)
            elif kind == "bool":
                record[name] = raw == "T"
            else:
                record[name] = raw
        lines.append(json.dumps(record))
    return "\n".join(lines) + "\n"


def write_logs(directory: Path, flavour: str) -> None:
    logs = {"t1046": (T1046_FIELDS, T1046_ROWS), "conn": (CONN_FIELDS, CONN_ROWS),
            "notice": (NOTICE_FIELDS, NOTICE_ROWS)}
    for name, (fields, rows) in logs.items():
        text = tsv(name, fields, rows) if flavour == "tsv" else as_json(fields, rows)
        (directory / f"{name}.log").write_text(text)


@pytest.mark.parametrize("flavour", ["tsv", "json"])
def test_package_evidence_becomes_incidents(tmp_path: Path, flavour: str) -> None:
    write_logs(tmp_path, flavour)
    out = io.BytesIO()
    summary = replay([tmp_path], default_config(), out)
    assert summary.malformed == 0
    alerts = parse_alerts(out.getvalue())
    by_source: dict[str, list[dict]] = {}
    for alert in alerts:
        by_source.setdefault(alert["source"]["ip"], []).append(alert)
    assert set(by_source) == {"10.6.6.6", "10.7.7.7", "10.9.9.1", "10.5.5.5", "10.8.8.8", "10.8.8.9"}
    assert by_source["10.8.8.9"][0]["event"]["action"] == "mdns_service_browse"

    port_scan = by_source["10.6.6.6"][-1]
    assert port_scan["event"]["action"] == "port_scan"
    assert port_scan["rule"]["id"] == "T1046-ZEEK-DETECTION"
    assert port_scan["t1046"]["counts"]["distinct_ports"] == 250
    assert port_scan["t1046"]["counts"]["probes"] == 260
    assert port_scan["destination"]["ip"] == "10.200.0.20"
    assert port_scan["t1046"]["zeek"]["uids"] == ["CAbc1", "CAbc2"]
    assert port_scan["event"]["start"].startswith("2026-11-28T")

    browse = by_source["10.7.7.7"][0]
    assert browse["event"]["action"] == "mdns_service_browse"
    assert browse["t1046"]["sample"]["mdns_names"] == ["_ssh._tcp.local"]
    assert "T1046-MDNS-LEGACY" in browse["t1046"]["rules"]

    assert by_source["10.9.9.1"][0]["event"]["action"] == "address_scan"
    assert by_source["10.9.9.1"][0]["t1046"]["counts"]["distinct_hosts"] == 40

    dark = by_source["10.5.5.5"][0]
    assert (dark["event"]["action"], dark["rule"]["id"]) == ("honeyport_probe", "T1046-HONEYPORT")

    notice = by_source["10.8.8.8"][0]
    assert (notice["event"]["action"], notice["rule"]["id"]) == ("address_scan", "T1046-ZEEK-NOTICE")
    assert "T1046::Address_Scan" in notice["t1046"]["zeek"]["notes"]


PACKAGE_LOGS = Path(__file__).resolve().parents[1] / "data" / "package-logs"


@pytest.mark.parametrize("name", sorted(p.name for p in PACKAGE_LOGS.iterdir() if p.is_dir()))
def test_logs_the_package_wrote_under_real_zeek(name: str) -> None:
    """Replay what Zeek 7.0 with zeek_scripts wrote for each capture: the truth holds and, for scans, the
    package's own detection is part of the evidence."""
    out = io.BytesIO()
    summary = replay([PACKAGE_LOGS / name], default_config(), out)
    assert summary.malformed == 0
    alerts = parse_alerts(out.getvalue())
    expected = json.loads((PACKAGE_LOGS / name / "truth.json").read_text())
    assert {a["source"]["ip"] for a in alerts} == {s["ip"] for s in expected["scanners"]}
    for scanner in expected["scanners"]:
        mine = [a for a in alerts if a["source"]["ip"] == scanner["ip"]]
        rules = set(mine[-1]["t1046"]["rules"])
        if any(a["event"]["action"].endswith("scan") for a in mine):
            assert {"T1046-ZEEK-DETECTION", "T1046-ZEEK-NOTICE"} <= rules, rules
            assert any(note.startswith("T1046::") for note in mine[-1]["t1046"]["zeek"]["notes"])
        else:
            assert rules & {"T1046-MDNS-ENUM", "T1046-MDNS-SENSITIVE", "T1046-MDNS-MANY-TYPES"}, rules
