"""Every action and rule the code can emit is catalogued, documented, and allowed by the schema."""

from __future__ import annotations

import json
from pathlib import Path

from sensor.alerts.catalogue import RULES, Action

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_every_action_and_rule_is_documented() -> None:
    text = (DOCS / "alerts.md").read_text()
    for action in Action:
        assert f"| `{action.value}` |" in text, action
    for rule in RULES.values():
        assert f"| `{rule.id}` | {rule.name} | {rule.risk} |" in text, rule.id


def test_schema_allows_exactly_the_catalogued_actions() -> None:
    schema = json.loads((DOCS / "alert.schema.json").read_text())
    assert set(schema["properties"]["event"]["properties"]["action"]["enum"]) == {a.value for a in Action}


def test_rule_ids_follow_the_schema_pattern() -> None:
    import re

    pattern = json.loads((DOCS / "alert.schema.json").read_text())["properties"]["rule"]["properties"]["id"]["pattern"]
    assert all(re.match(pattern, rule_id) for rule_id in RULES)
