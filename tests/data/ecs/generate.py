"""Generate the vendored ECS field table the alert tests validate against (tests/data/ecs/fields-<version>.json).

The table is cut from elastic/ecs's ``generated/ecs/ecs_flat.yml`` at a release tag, read out of a git clone
of that repository (nothing of it is copied but the columns below, for the field sets the alerts use)::

    python tests/data/ecs/generate.py /path/to/elastic-ecs.git v9.3.0

It records its provenance (repository, tag, commit, path, sha256 of the source file) in the table. Per
field it keeps what a validator needs: ``type``; ``array`` (ECS ``normalize: [array]``: the value is a list);
``required``; ``allowed`` (``allowed_values`` names, and for ``event.category`` each category's
``expected_event_types``); ``expected_values``; ``pattern``; ``ignore_above``; ``lowercase`` (the field's
description says its value must be normalised to lowercase).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

SOURCE_PATH = "generated/ecs/ecs_flat.yml"
REPOSITORY = "elastic/ecs"
LICENSE = "Apache-2.0 (elastic/ecs LICENSE.txt)"
FIELD_SETS = ("base", "cloud", "destination", "ecs", "event", "host", "network", "observer", "related", "rule",
              "source", "threat")
"""The ECS field sets the alerts use; ``base`` holds the top-level fields (``@timestamp``, ``message``, …)."""
HERE = Path(__file__).resolve().parent


def field_set(flat_name: str) -> str:
    """The field set of a flat field name: its first component, or ``base`` for a top-level field."""
    return flat_name.split(".", 1)[0] if "." in flat_name else "base"


def column(definition: dict[str, Any]) -> dict[str, Any]:
    """What the validator keeps of one ``ecs_flat.yml`` field definition."""
    kept: dict[str, Any] = {
        "type": definition["type"],
        "array": "array" in (definition.get("normalize") or []),
        "required": bool(definition.get("required", False)),
    }
    if "allowed_values" in definition:
        kept["allowed"] = {value["name"]: value.get("expected_event_types") for value in definition["allowed_values"]}
    for key in ("expected_values", "pattern", "ignore_above"):
        if key in definition:
            kept[key] = definition[key]
    if "normalized to lowercase" in definition.get("description", "").lower():
        kept["lowercase"] = True
    return kept


def table(source: bytes, version: str, provenance: dict[str, str]) -> dict[str, Any]:
    """The vendored table of one ECS release from the bytes of its ``ecs_flat.yml``."""
    flat = yaml.safe_load(source)
    fields = {name: column(definition) for name, definition in sorted(flat.items())
              if field_set(name) in FIELD_SETS}
    return {
        "ecs_version": version,
        "provenance": {**provenance, "license": LICENSE, "sha256": hashlib.sha256(source).hexdigest(),
                       "field_sets": list(FIELD_SETS), "generator": "tests/data/ecs/generate.py"},
        "fields": fields,
    }


def dumps(generated: dict[str, Any]) -> str:
    """The table as JSON with one line per field, so that a regenerated table diffs by field."""
    head = {key: value for key, value in generated.items() if key != "fields"}
    lines = [f" {json.dumps(name)}: {json.dumps(value, sort_keys=True)}" for name, value in generated["fields"].items()]
    return json.dumps(head, indent=1, sort_keys=True)[:-2] + ',\n "fields": {\n' + ",\n".join(lines) + "\n }\n}\n"


def _git(repo: Path, *args: str) -> bytes:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True).stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("repo", type=Path, help="a git clone (bare or not) of elastic/ecs")
    parser.add_argument("tag", help="the release tag to cut the table from, e.g. v9.3.0")
    args = parser.parse_args(argv)
    commit = _git(args.repo, "rev-parse", f"{args.tag}^{{commit}}").decode().strip()
    version = _git(args.repo, "show", f"{commit}:version").decode().strip()
    source = _git(args.repo, "show", f"{commit}:{SOURCE_PATH}")
    generated = table(source, version, {"repository": REPOSITORY, "tag": args.tag, "commit": commit,
                                        "path": SOURCE_PATH})
    out = HERE / f"fields-{version}.json"
    out.write_text(dumps(generated))
    sys.stderr.write(f"{out}: {len(generated['fields'])} fields of ECS {version} ({commit})\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
