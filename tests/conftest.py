"""Shared fixtures: the real captures copied under tests/data/captures (see its PROVENANCE.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

CAPTURES = Path(__file__).resolve().parent / "data" / "captures"


def scenarios() -> list[str]:
    """Names of the recorded scenarios (b* benign, s* scans)."""
    return sorted(p.name for p in CAPTURES.iterdir() if p.is_dir())


def truth(name: str) -> dict[str, Any]:
    """Ground truth of a scenario: what a SOC analyst would say happened."""
    result: dict[str, Any] = json.loads((CAPTURES / name / "truth.json").read_text())
    return result


@pytest.fixture
def captures() -> Path:
    return CAPTURES
