"""No input crashes the daemon: whatever a Zeek log line (TSV or JSON), an mDNS datagram or a node's protocol
line holds, its reader either makes typed observations or counts it as malformed -- and what it makes goes
through the correlator and the renderer without an exception. Property-based (hypothesis), plus the crafted
JSON dns.log line that ended ``run`` (``"query": ["_ssh._tcp.local"]``)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from ipaddress import ip_address
from pathlib import Path
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sensor.alerts.render import render_document
from sensor.cli import main
from sensor.config import default_config
from sensor.detect.correlator import Correlator
from sensor.mdns.watch import MDNS_GROUP_V4, MalformedPacketError, hosts_of, questions_of
from sensor.nodes.codec import ProtocolError, Submission, decode_message
from sensor.observations import Intake, Observation
from sensor.zeek.logs import MalformedLog, ZeekLog
from sensor.zeek.records import FIELDS, MAPPERS, observations, wanted_fields
from tests.conftest import CAPTURES
from tests.fixtures import stop_process
from tests.waiting import wait_for

DETECTION = default_config().detection
_SCALARS = (st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False)
            | st.text(max_size=40) | st.sampled_from(["10.0.0.1", "fe80::1", "tcp", "udp", "icmp", "S0", "REJ", "Sr",
                                                      "_ssh._tcp.local", "PTR", "Scan::Port_Scan", "1795000000.5",
                                                      "2026-11-28T10:00:00Z", "T1046::Port_Scan", "port_scan"]))
_VALUES = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                            max_size=3), max_leaves=8)
_FIELD_NAMES = sorted({name for names in FIELDS.values() for name in names} | {"_path"})
_RELAXED = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                           HealthCheck.too_slow])


def _judged(items: list[Intake] | list[Observation]) -> None:
    """Every observation through one correlator, every alert through both renderers."""
    correlator = Correlator(DETECTION)
    alerts = []
    for item in items:
        alerts += correlator.observe_read(item, _Watermark())
    alerts += correlator.flush(2e9) + correlator.tick(3e9)
    for alert in alerts:
        render_document(alert, "sensor-test")
        render_document(alert, "sensor-test", "ocsf")


class _Watermark:
    """The clock a fuzzed record is judged with: its own time (any time a reader lets through)."""

    def logged(self, ts: float, wall: float | None = None) -> float:
        return ts

    def logged_many(self, times: list[float], wall: float | None = None) -> list[float]:
        return list(times)


def _read(path: Path) -> tuple[list[Intake], int]:
    malformed = MalformedLog()
    log = ZeekLog(path, malformed)
    items: list[Intake] = []
    for batch in log.batches(wanted_fields):
        found = observations(log, batch)
        items += found if isinstance(found, list) else [found]
    return items, malformed.total


@_RELAXED
@given(kind=st.sampled_from(sorted(kind for kind in FIELDS if kind)),
       records=st.lists(st.dictionaries(st.sampled_from(_FIELD_NAMES), _VALUES, max_size=12), min_size=1, max_size=5))
def test_any_json_record_is_mapped_or_counted_malformed_and_never_crashes(
        tmp_path_factory: Any, kind: str, records: list[dict[str, Any]]) -> None:
    path = tmp_path_factory.mktemp("json") / f"{kind}.log"
    path.write_bytes(b"".join(orjson.dumps(record, option=orjson.OPT_NON_STR_KEYS) + b"\n" for record in records
                              if _encodable(record)) or b"{}\n")
    items, _ = _read(path)
    _judged(items)


_REAL = sorted((CAPTURES.parent / "identity").glob("*/zeek-json/*.log")) + sorted(CAPTURES.glob("*/zeek-json/*.log"))
_REAL_RECORDS = [(path.name.split(".")[0], record) for path in _REAL if path.name.split(".")[0] in MAPPERS
                 for record in (json.loads(line) for line in path.read_text().splitlines()[:20] if line[:1] == "{")]


@settings(max_examples=600, deadline=None)
@given(real=st.sampled_from(_REAL_RECORDS), field=st.integers(0, 40),
       value=st.lists(_SCALARS, min_size=1, max_size=3) | _VALUES)
def test_any_field_of_a_real_record_may_hold_anything(real: tuple[str, dict[str, Any]], field: int,
                                                      value: Any) -> None:
    """A real Zeek JSON record of every log the sensor reads, one of its fields replaced by any JSON value:
    mapped or counted malformed, and what it makes goes through the correlator and the renderers."""
    kind, record = real
    mutated = {**record, sorted(record)[field % len(record)]: value}
    mapper = MAPPERS.get(kind)
    if mapper is None or not _encodable(mutated):
        return
    try:
        observation = mapper(mutated)
    except (KeyError, ValueError, TypeError, OverflowError):
        return
    if observation is not None:
        _judged([observation])


def _encodable(record: dict[str, Any]) -> bool:
    try:
        orjson.dumps(record)
    except TypeError:  # an integer past 64 bits: no JSON log line holds one
        return False
    return True


_CELLS = st.text(st.characters(blacklist_characters="\t\n\r", blacklist_categories=("Cs",)), max_size=12) | \
    st.sampled_from(["-", "(empty)", "nan", "inf", "-1", "99999", "1e300", "10.0.0.1", "::1", "tcp", "S0", "Sr", "1",
                     "T", "F", "scan,honeyport"])


@_RELAXED
@given(kind=st.sampled_from(sorted(kind for kind in FIELDS if kind)),
       types=st.lists(st.sampled_from(["time", "string", "addr", "port", "count", "enum", "bool", "set[string]",
                                       "vector[addr]", "vector[port]", "interval"]), min_size=1, max_size=14),
       rows=st.lists(st.lists(_CELLS, min_size=1, max_size=14), min_size=1, max_size=6))
def test_any_tsv_line_is_mapped_or_counted_malformed_and_never_crashes(
        tmp_path_factory: Any, kind: str, types: list[str], rows: list[list[str]]) -> None:
    names = list(FIELDS[kind])[: len(types)]
    header = (f"#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\t{kind}\n"
              f"#fields\t{chr(9).join(names)}\n#types\t{chr(9).join(types[: len(names)])}\n")
    path = tmp_path_factory.mktemp("tsv") / f"{kind}.log"
    path.write_text(header + "".join("\t".join((row * len(names))[: len(names)]) + "\n" for row in rows))
    items, _ = _read(path)
    _judged(items)


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=700), source_port=st.sampled_from([5353, 40000]))
def test_any_datagram_gives_observations_that_the_correlator_takes(data: bytes, source_port: int) -> None:
    source = ip_address("10.0.0.66")
    found: list[Observation] = []
    with contextlib.suppress(MalformedPacketError):
        found += questions_of(data, source, source_port, MDNS_GROUP_V4, 1795000000.0)[0]
    with contextlib.suppress(MalformedPacketError):
        found += hosts_of(data, source, source_port, 1795000000.0)
    _judged(found)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["v", "type", "seq", "kind", "ts", "source", "source_port", "target",
                                        "target_port", "transport", "profile", "payload", "name", "qtype",
                                        "unicast_response", "legacy_unicast", "follow_up"]),
                       _VALUES, max_size=16).map(lambda d: {"v": 1, "type": "obs", "kind": "honeyport", **d}))
def test_any_node_line_is_an_observation_the_correlator_takes_or_a_protocol_error(document: dict[str, Any]) -> None:
    if not _encodable(document):
        return
    try:
        message = decode_message(orjson.dumps(document))
    except ProtocolError:
        return
    if isinstance(message, Submission):
        _judged([message.observation])


def test_a_json_dns_line_with_a_list_for_its_query_is_counted_malformed_and_replay_goes_on(
        tmp_path: Path, capsys: Any, caplog: Any) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    good = {"ts": 1795000000.0, "uid": "Cgood", "id.orig_h": "10.0.0.66", "id.orig_p": 40000,
            "id.resp_h": "224.0.0.251", "id.resp_p": 5353, "query": "_ssh._tcp.local", "qtype_name": "PTR", "qclass": 1}
    bad = {**good, "uid": "Cbad", "query": ["_ssh._tcp.local"]}
    (logs / "dns.log").write_text(json.dumps(bad) + "\n" + json.dumps(good) + "\n")
    assert main(["replay", str(logs)]) == 0
    out, err = capsys.readouterr()
    alerts = [json.loads(line) for line in out.splitlines()]
    assert alerts and all(alert["t1046"]["zeek"]["uids"] == ["Cgood"] for alert in alerts)
    assert ", 1 malformed," in err
    assert "dns.log:1: skipped malformed line: unusable record: list where text was expected" in caplog.text


def test_the_crafted_json_dns_line_does_not_end_run_and_the_next_one_alerts(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    now = time.time()
    good = {"ts": now, "uid": "Cgood", "id.orig_h": "10.0.0.66", "id.orig_p": 40000, "id.resp_h": "224.0.0.251",
            "id.resp_p": 5353, "query": "_ssh._tcp.local", "qtype_name": "PTR", "qclass": 1}
    (logs / "dns.log").write_text(json.dumps({**good, "uid": "Cbad", "query": ["_ssh._tcp.local"]}) + "\n")
    alerts = tmp_path / "state" / "alerts.jsonl"
    config = tmp_path / "sensor.yaml"
    config.write_text(f"sensor: {{state_dir: {tmp_path / 'state'}}}\nzeek: {{log_dir: {logs}}}\n"
                      "honeyports: {listen: []}\noutputs: [{type: file, path: alerts.jsonl}]\n")
    stderr = tmp_path / "stderr"
    daemon = subprocess.Popen([sys.executable, "-m", "sensor", "-v", "run", "--config", str(config)],
                              stdout=subprocess.DEVNULL, stderr=stderr.open("wb"), start_new_session=True)
    try:
        wait_for(lambda: "skipped malformed line" in stderr.read_text() or daemon.poll() is not None, 60,
                 "the bad line to be read")
        assert daemon.poll() is None, stderr.read_text()
        with (logs / "dns.log").open("a") as stream:
            stream.write(json.dumps(good) + "\n")
        wait_for(lambda: (alerts.exists() and "Cgood" in alerts.read_text()) or daemon.poll() is not None, 60,
                 "the next line's alert")
        assert daemon.poll() is None, stderr.read_text()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(daemon.pid, signal.SIGTERM)
        stop_process(daemon)
    assert "AttributeError" not in stderr.read_text()
