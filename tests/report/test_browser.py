"""Reports of real captures opened in a real headless Chromium: no console errors, the scanner shown, the
expected number of incidents, pictures that decoded, a screenshot that is not blank, a sortable summary."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image, ImageStat

from sensor.cli import main
from tests.conftest import CAPTURES, truth
from tests.report.browser import Browser, chromium


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    chromium()
    started = Browser(tmp_path / "profile")
    try:
        yield started
    finally:
        started.close()


def _report(tmp_path: Path, *scenarios: str) -> Path:
    out = tmp_path / "report.html"
    assert main(["report", *(str(CAPTURES / name / "zeek") for name in scenarios), "--out", str(out)]) == 0
    return out


def _spread(png: bytes) -> float:
    """Standard deviation of the grey levels of a picture: 0 for a blank one."""
    image = Image.open(io.BytesIO(png)).convert("L")
    return float(ImageStat.Stat(image).stddev[0])


@pytest.mark.parametrize("scenario", ["s1_vertical_syn", "s2_horizontal_syn_routed", "s8_mdns_browse",
                                      "b1_benign_clients"])
def test_report_of_a_capture_loads_clean_in_chromium(browser: Browser, tmp_path: Path, scenario: str) -> None:
    scanners = [entry["ip"] for entry in truth(scenario)["scanners"]]
    browser.open(_report(tmp_path, scenario))

    assert browser.errors() == []
    assert browser.evaluate("document.querySelectorAll('section.incident').length") == len(scanners)
    assert browser.evaluate("document.querySelectorAll('#summary tr.incident-row').length") == len(scanners)
    text = browser.evaluate("document.body.innerText")
    for scanner in scanners:
        assert scanner in text
    assert browser.evaluate(
        "Array.from(document.images).filter(i => i.complete && i.naturalWidth > 1000).length") == len(scanners)
    if not scanners:
        assert "No incidents" in text
    shot = browser.screenshot()
    assert _spread(shot) > 10.0


def test_summary_sorts_by_a_column_when_its_heading_is_clicked(browser: Browser, tmp_path: Path) -> None:
    browser.open(_report(tmp_path, "s2_horizontal_syn_routed", "s1_vertical_syn"))
    column = browser.evaluate("Array.from(document.querySelectorAll('#summary th'))"
                              ".findIndex(th => th.textContent === 'probes')")
    probes = (f"Array.from(document.querySelectorAll('#summary tbody tr'))"
              f".map(row => Number(row.cells[{column}].textContent))")
    first_order = browser.evaluate(probes)
    assert sorted(first_order) == [925, 1000]

    browser.evaluate(f"document.querySelectorAll('#summary th')[{column}].click()")
    assert browser.evaluate(probes) == [925, 1000]
    browser.evaluate(f"document.querySelectorAll('#summary th')[{column}].click()")
    assert browser.evaluate(probes) == [1000, 925]
    assert browser.evaluate(f"document.querySelectorAll('#summary th')[{column}].getAttribute('aria-sort')") \
        == "descending"
    assert browser.errors() == []


def test_the_error_check_sees_a_script_error_and_a_blocked_load(browser: Browser, tmp_path: Path) -> None:
    """The control: a page that throws, and one that loads an image its policy forbids, are caught."""
    page = tmp_path / "broken.html"
    page.write_text("<!doctype html><meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
                    "script-src 'unsafe-inline'\"><p>x</p><img src=\"http://127.0.0.1:9/x.png\">"
                    "<script>no_such_function()</script>")
    browser.open(page)
    errors = browser.errors()
    assert any("no_such_function" in error for error in errors)
    assert any("Content Security Policy" in error or "127.0.0.1:9" in error for error in errors)
    blank = tmp_path / "blank.html"
    blank.write_text("<!doctype html><body style='background:#fff'></body>")
    browser.open(blank)
    assert _spread(browser.screenshot()) < 1.0


def test_attacker_strings_show_as_text_and_run_nothing(browser: Browser, tmp_path: Path) -> None:
    from tests.report.hostile import MDNS_NAME, PAYLOAD, SCANNER, hostile_alerts

    out = tmp_path / "report.html"
    assert main(["report", str(hostile_alerts(tmp_path / "alerts.jsonl")), "--out", str(out)]) == 0
    browser.open(out)

    assert browser.errors() == []
    assert browser.evaluate("document.scripts.length") == 1
    assert browser.evaluate("Array.from(document.images).map(i => i.className)") == ["picture"]
    text = browser.evaluate("document.body.innerText")
    assert PAYLOAD.decode().replace("\\", "\\x5c") in text
    assert MDNS_NAME in text and SCANNER in text
