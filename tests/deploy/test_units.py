"""The packaged units cap the service's memory and tasks, with the defaults docs/deployment.md gives."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

CHECKOUT = Path(__file__).resolve().parents[2]
UNITS = sorted((CHECKOUT / "packaging" / "systemd").glob("*.service"))


@pytest.mark.parametrize("unit", UNITS, ids=lambda path: path.name)
def test_the_unit_caps_memory_and_tasks_as_documented(unit: Path) -> None:
    text = unit.read_text()
    documented = (CHECKOUT / "docs" / "deployment.md").read_text()
    for setting in ("MemoryMax", "TasksMax"):
        found = re.search(rf"^{setting}=(\S+)$", text, re.MULTILINE)
        assert found, f"{unit.name} sets no {setting}"
        assert f"`{setting}={found.group(1)}`" in documented, f"docs/deployment.md does not give {setting}"
