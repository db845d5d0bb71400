"""The booted machine's Debian mirror is the one this host's own apt sources name (none is written in the
repository): one-line ``.list`` files and deb822 ``.sources`` files, as apt reads them."""

from __future__ import annotations

from pathlib import Path

from tests.deploy.machine import debian_mirror


def _apt(tmp_path: Path, files: dict[str, str]) -> Path:
    (tmp_path / "sources.list.d").mkdir()
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    return tmp_path


def test_the_mirror_of_a_deb822_source_for_the_suite_and_main(tmp_path: Path) -> None:
    apt = _apt(tmp_path, {"sources.list.d/other.sources": "Types: deb\nURIs: https://other.example/x\n"
                                                          "Suites: nodistro\nComponents: main\n",
                          "sources.list.d/debian.sources":
                              "Types: deb-src\nURIs: http://src.example/debian\nSuites: bookworm\nComponents: main\n\n"
                              "Enabled: no\nTypes: deb\nURIs: http://off.example/debian\nSuites: bookworm\n"
                              "Components: main\n\n"
                              "# a comment\nTypes: deb\nURIs: cdrom:/x http://mirror.example/debian\n"
                              "Suites: bookworm bookworm-updates\nComponents: main contrib\n"})
    assert debian_mirror(apt) == "http://mirror.example/debian"


def test_the_mirror_of_a_one_line_source_with_options(tmp_path: Path) -> None:
    apt = _apt(tmp_path, {"sources.list": "# deb http://commented.example/debian bookworm main\n"
                                          "deb-src http://src.example/debian bookworm main\n"
                                          "deb [arch=amd64 signed-by=/k.gpg] http://line.example/debian "
                                          "bookworm main\n"})
    assert debian_mirror(apt) == "http://line.example/debian"


def test_no_mirror_when_the_sources_name_none_for_the_suite(tmp_path: Path) -> None:
    apt = _apt(tmp_path, {"sources.list": "deb http://line.example/debian trixie main\n",
                          "sources.list.d/x.list.disabled": "deb http://off.example/debian bookworm main\n"})
    assert debian_mirror(apt) is None
