"""Linters as tests: ruff on the whole tree, mypy strict on the packages, bandit on the packages."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_ruff_is_clean() -> None:
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "."], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_is_clean() -> None:
    result = subprocess.run([sys.executable, "-m", "mypy", "--no-incremental"], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_bandit_finds_nothing_but_the_documented_exceptions() -> None:
    """``bandit -r sensor honeyports`` (every severity and confidence) is clean; each exception is a ``nosec``
    naming its test id on a line that says why, and docs/deployment.md lists it."""
    result = subprocess.run([sys.executable, "-m", "bandit", "-q", "-r", "sensor", "honeyports"], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    documented = (ROOT / "docs" / "deployment.md").read_text()
    for path in sorted([*ROOT.joinpath("sensor").rglob("*.py"), *ROOT.joinpath("honeyports").rglob("*.py")]):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if "nosec" not in line:
                continue
            where = f"{path.relative_to(ROOT)}:{number}"
            found = re.search(r"#\s*(?P<why>[^#]+?)\s*#.*nosec (?P<test>B\d{3})\s*$", line)
            assert found, f"{where}: a nosec without a test id and its reason"
            assert f"`{found['test']}`" in documented and str(path.relative_to(ROOT)) in documented, (
                f"{where}: {found['test']} is not among docs/deployment.md's bandit exceptions")
