"""The Zeek package under zeek_scripts/: it parses, is zeek-format clean, keeps its log contract,
and its btest suite passes wherever Zeek is installed."""

from __future__ import annotations

import configparser
import io
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import zeekscript

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "zeek_scripts"
TESTING = SCRIPTS / "testing"
ZEEK_FILES = sorted(SCRIPTS.rglob("*.zeek"))

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
