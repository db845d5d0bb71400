"""The Zeek package under zeek_scripts/: it parses, is zeek-format clean, keeps its log contract,
the logs real Zeek wrote with it are not stale, and its btest suite passes wherever Zeek is installed."""

from __future__ import annotations

import configparser
import hashlib
import io
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import zeekscript

from sensor.zeek.logs import ZeekLog
from sensor.zeek.malformed import MalformedLog
from sensor.zeek.records import FIELDS

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "zeek_scripts"
TESTING = SCRIPTS / "testing"
ZEEK_FILES = sorted(SCRIPTS.rglob("*.zeek"))
REGENERATE = TESTING / "regenerate-package-logs.sh"
PACKAGE_LOGS = ROOT / "tests" / "data" / "package-logs"
ARP_DATA = ROOT / "tests" / "data" / "arp"

T1046_LOG_COLUMNS = [
    ("ts", "time"),
    ("scanner", "addr"),
    ("kind", "string"),
    ("n_targets", "count"),
    ("n_ports", "count"),
    ("n_probes", "count"),
    ("n_failed", "count"),
    ("targets", "vector of addr"),
    ("ports", "vector of port"),
    ("first_seen", "time"),
    ("last_seen", "time"),
    ("uids", "vector of string"),
    ("mdns_query", "string"),
    ("mdns_qtype", "string"),
    ("mdns_qu", "bool"),
    ("mdns_legacy_unicast", "bool"),
    ("msg", "string"),
]


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def test_package_layout() -> None:
    assert (SCRIPTS / "__load__.zeek").is_file()
    assert (SCRIPTS / "main.zeek").is_file()
    assert (TESTING / "btest.cfg").is_file()


@pytest.mark.parametrize("path", ZEEK_FILES, ids=_rel)
def test_script_parses(path: Path) -> None:
    script = zeekscript.Script(path)
    assert script.parse(), f"{_rel(path)} does not parse"
    assert not script.has_error(), f"{_rel(path)}: {script.get_error()}"


@pytest.mark.parametrize("path", ZEEK_FILES, ids=_rel)
def test_script_is_zeek_format_clean(path: Path) -> None:
    script = zeekscript.Script(path)
    assert script.parse()
    formatted = io.BytesIO()
    script.format(formatted)
    assert formatted.getvalue() == path.read_bytes(), f"run: zeek-format -i {_rel(path)}"


def test_zkg_meta() -> None:
    meta = configparser.ConfigParser()
    meta.read(ROOT / "zkg.meta", encoding="utf-8")
    package = meta["package"]
    assert package["script_dir"] == "zeek_scripts"
    assert package["depends"].split() == ["zeek", ">=6.0"]
    assert package["test_command"] == "cd zeek_scripts/testing && btest -c btest.cfg"
    assert package["summary"]
    assert package["description"]
    assert package["tags"]


def test_t1046_log_columns_keep_the_contract() -> None:
    source = (SCRIPTS / "main.zeek").read_text(encoding="utf-8")
    record = re.search(r"type Info: record \{(.*?)\n\t\};", source, re.DOTALL)
    assert record is not None
    fields = re.findall(r"^\t\t(\w+): ([\w ]+?) &log", record.group(1), re.MULTILINE)
    assert fields == T1046_LOG_COLUMNS


def test_every_btest_diff_has_a_baseline() -> None:
    for test in sorted((TESTING / "tests").glob("*.zeek")):
        for name in re.findall(r"@TEST-EXEC: btest-diff (\S+)", test.read_text(encoding="utf-8")):
            baseline = TESTING / "Baseline" / f"tests.{test.stem}" / name
            assert baseline.is_file(), f"{_rel(test)}: no baseline {_rel(baseline)}"


def test_btest_suite() -> None:
    if shutil.which("zeek") is None:
        pytest.skip("zeek not on PATH: the btest suite in zeek_scripts/testing needs a Zeek installation")
    for tool in ("zeek-cut", "zeek-config"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not on PATH: the btest suite needs Zeek's auxiliary tools")
    if shutil.which("btest") is None:
        pytest.skip("btest not installed (pip install btest)")
    result = subprocess.run(
        ["btest", "-c", "btest.cfg", "-j", "2", "-d"],
        cwd=TESTING,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def package_hash() -> str:
    """sha256 of the sha256sum listing of the package's .zeek files outside testing/ and zkg.meta
    (tests/data/package-logs/PROVENANCE.md defines it; regenerate-package-logs.sh computes it too)."""
    paths = sorted([p.relative_to(ROOT).as_posix() for p in SCRIPTS.rglob("*.zeek") if TESTING not in p.parents]
                   + ["zkg.meta"])
    listing = "".join(f"{hashlib.sha256((ROOT / p).read_bytes()).hexdigest()}  {p}\n" for p in paths)
    return hashlib.sha256(listing.encode()).hexdigest()


def test_the_regeneration_script_computes_the_same_package_hash() -> None:
    result = subprocess.run([str(REGENERATE), "--hash"], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == package_hash()


@pytest.mark.parametrize("provenance", [PACKAGE_LOGS / "PROVENANCE.md", ARP_DATA / "PROVENANCE.md"], ids=_rel)
def test_logs_were_written_with_the_current_package(provenance: Path) -> None:
    recorded = re.search(r"^package-sha256: (\S+)$", provenance.read_text(encoding="utf-8"), re.MULTILINE)
    assert recorded is not None, f"{_rel(provenance)} has no 'package-sha256:' line"
    assert recorded.group(1) == package_hash(), (
        f"zeek_scripts/ changed since the logs beside {_rel(provenance)} were written: regenerate them with "
        f"{_rel(REGENERATE)} (needs Zeek 7.0 on PATH), then rerun the tests")


def _detections(directory: Path) -> list[tuple[str, str, int, int]]:
    path = directory / "t1046.log"
    if not path.exists():
        return []
    records = ZeekLog(path, MalformedLog()).records(lambda kind: FIELDS["t1046"])
    return sorted((str(r["scanner"]), r["kind"], int(r["n_targets"]), int(r["n_ports"])) for _, r in records)


LOG_SETS = sorted([(d, d / "zeek-json") for d in PACKAGE_LOGS.iterdir() if d.is_dir()]
                  + [(d / "zeek", d / "zeek-json") for d in ARP_DATA.iterdir() if d.is_dir()])


@pytest.mark.parametrize(("tsv", "json"), LOG_SETS, ids=[_rel(tsv) for tsv, _ in LOG_SETS])
def test_tsv_and_json_package_logs_hold_the_same_detections(tsv: Path, json: Path) -> None:
    """The two copies come from two Zeek runs of one capture: the package must detect the same in both."""
    assert {p.name for p in tsv.glob("*.log")} == {p.name for p in json.glob("*.log")}
    assert _detections(tsv) == _detections(json)
