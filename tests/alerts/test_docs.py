"""docs/alerts.md shows what the code prints and maps every field an alert can carry."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from sensor.alerts.render import to_ecs, to_ocsf
from tests.alertcheck import validate_alert
from tests.alerts import examples
from tests.alerts.samples import SCAN, TOUCH


def _paths(node: Any, prefix: str = "", leaves: tuple[str, ...] = ()) -> set[str]:
    """Dotted paths of a document's leaves (``[]`` for arrays of objects), stopping at ``leaves``."""
    if prefix.rstrip(".") in leaves or not isinstance(node, dict | list):
        return {prefix.rstrip(".")}
    if isinstance(node, list):
        objects = [item for item in node if isinstance(item, dict)]
        return set().union(*(_paths(item, prefix.rstrip(".") + "[].", leaves) for item in objects)) if objects \
            else {prefix.rstrip(".")}
    return set().union(*(_paths(value, f"{prefix}{key}.", leaves) for key, value in node.items()))


def test_the_examples_are_what_replay_prints_now() -> None:
    shown = examples.documented(examples.DOC.read_text())
    assert set(shown) == set(examples.EXAMPLES)
    for name, document in shown.items():
        assert validate_alert(document) == examples.example(name), (
            f"docs/alerts.md's {name} example is stale: run python -m tests.alerts.examples")


def test_every_field_an_alert_can_carry_is_documented() -> None:
    text = examples.DOC.read_text()
    shown = examples.documented(text)
    every = [TOUCH, replace(SCAN, authorized="vulnerability scanner", closed=True)]
    ecs = set().union(*(_paths(to_ecs(alert, "s")) for alert in every), _paths(shown["ecs"]))
    ocsf = set().union(*(_paths(to_ocsf(alert, "s"), leaves=("unmapped.t1046",)) for alert in every),
                       _paths(shown["ocsf"], leaves=("unmapped.t1046",)), {"unmapped.t1046.community_id"})
    first_cells = re.findall(r"^\| ([^|]+) \|", text, re.MULTILINE)
    mapped = {name for cell in first_cells for name in re.findall(r"`([^`]+)`", cell)}
    undocumented = sorted(path for path in ecs | ocsf
                          if path not in mapped and not any(name.startswith(f"{path}[].") for name in mapped))
    assert not undocumented, f"fields without a row in docs/alerts.md's tables: {undocumented}"
