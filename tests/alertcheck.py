"""Every alert a test produces goes through here: parsed and validated against the schemas SIEMs apply.

An ECS alert is checked against docs/alert.schema.json (the project's contract) and against the ECS field
definitions of the ``ecs.version`` it declares (the vendored table tests/data/ecs/fields-<version>.json, cut
from elastic/ecs by tests/data/ecs/generate.py): every field outside ``t1046.*`` is an ECS field, of the
field's type and array-ness, with allowed values of ``event.kind``/``category``/``type`` and each
``event.type`` expected for each ``event.category``. An OCSF alert (one with a ``class_uid``) is checked
against the JSON Schema of its class in the OCSF version it declares, compiled by the ``ocsf-json-schema``
package from the OCSF schema it ships.

Use :func:`parse_alerts` on any JSON-lines alert output (stdout of a command, a JSONL file) and
:func:`validate_alert` on one document, so that every alert the suite sees is checked.
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
from ocsf_json_schema import OcsfJsonSchemaEmbedded, get_ocsf_schema, get_packaged_versions

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_PATH = ROOT / "docs" / "alert.schema.json"
ECS_TABLES = ROOT / "tests" / "data" / "ecs"
CUSTOM_FIELD_SET = "t1046"
_FORMATS = jsonschema.FormatChecker()
_INTEGER_RANGES = {"long": 63, "integer": 31, "short": 15, "byte": 7}
_STRING_TYPES = {"keyword", "constant_keyword", "wildcard", "text", "match_only_text"}
_FLOAT_TYPES = {"float", "double", "half_float", "scaled_float"}


class InvalidAlert(AssertionError):
    """An alert that a SIEM's schema would not accept; the message lists every violation."""


@_FORMATS.checks("ipv4-or-ipv6", raises=ValueError)
def _is_ip(value: object) -> bool:
    ipaddress.ip_address(str(value))
    return True


@cache
def _validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SCHEMA_PATH.read_text())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, format_checker=_FORMATS)


@cache
def ecs_table(version: str) -> dict[str, Any]:
    """The vendored ECS field table of one release; :class:`InvalidAlert` when none is vendored."""
    path = ECS_TABLES / f"fields-{version}.json"
    if not path.is_file():
        raise InvalidAlert(f"ecs.version {version!r}: no vendored ECS field table ({path.name})")
    table: dict[str, Any] = json.loads(path.read_text())
    return table


@cache
def _groups(version: str) -> frozenset[str]:
    """The object paths of the ECS fields of a version (``event``, ``threat.technique``, …)."""
    return frozenset(name.rsplit(".", i)[0] for name in ecs_table(version)["fields"]
                     for i in range(1, name.count(".") + 1))


def _value_problem(definition: dict[str, Any], value: object) -> str | None:
    """Why one scalar value does not fit an ECS field definition, or ``None``."""
    kind = definition["type"]
    if kind in _STRING_TYPES:
        if not isinstance(value, str):
            return f"{kind} wants a string, got {value!r}"
        if len(value) > definition.get("ignore_above", math.inf):
            return f"{len(value)} characters, over ignore_above {definition['ignore_above']} (not indexed)"
        if definition.get("lowercase") and value != value.lower():
            return f"{value!r} is not lowercase"
        if "pattern" in definition and not re.fullmatch(definition["pattern"], value):
            return f"{value!r} does not match {definition['pattern']!r}"
    elif kind in _INTEGER_RANGES:
        bits = _INTEGER_RANGES[kind]
        if isinstance(value, bool) or not isinstance(value, int) or not -(2**bits) <= value < 2**bits:
            return f"{kind} wants an integer, got {value!r}"
    elif kind in _FLOAT_TYPES:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            return f"{kind} wants a finite number, got {value!r}"
    elif kind == "boolean":
        if not isinstance(value, bool):
            return f"boolean wants true or false, got {value!r}"
    elif kind == "ip":
        try:
            ipaddress.ip_address(value if isinstance(value, str) else "")
        except ValueError:
            return f"ip wants an IPv4 or IPv6 address, got {value!r}"
    elif kind == "date":
        try:
            datetime.fromisoformat(value if isinstance(value, str) else "")
        except ValueError:
            return f"date wants an ISO 8601 string, got {value!r}"
    elif kind in ("object", "flattened"):
        if not isinstance(value, dict):
            return f"{kind} wants an object, got {value!r}"
    else:
        return f"the validator does not know ECS type {kind!r}"
    allowed = definition.get("allowed") or definition.get("expected_values")
    if allowed is not None and value not in allowed:
        return f"{value!r} is not one of {sorted(allowed)}"
    return None


def _field_problems(name: str, definition: dict[str, Any], value: object) -> list[str]:
    if definition["array"] != isinstance(value, list):
        shape = "an array" if definition["array"] else "a single value"
        return [f"{name}: ECS defines {shape}, got {value!r}"]
    values = value if isinstance(value, list) else [value]
    return [f"{name}: {problem}" for item in values if (problem := _value_problem(definition, item))]


def ecs_problems(document: dict[str, Any]) -> list[str]:
    """Every way an alert departs from the ECS field definitions of the version it declares."""
    version = document.get("ecs", {}).get("version")
    if not isinstance(version, str):
        return ["ecs.version: missing (ECS requires it in every event)"]
    fields: dict[str, dict[str, Any]] = ecs_table(version)["fields"]
    groups = _groups(version)
    problems: list[str] = []
    seen: dict[str, Any] = {}

    def walk(node: dict[str, Any], prefix: str) -> None:
        for key, value in node.items():
            name = f"{prefix}{key}"
            if name == CUSTOM_FIELD_SET or name.startswith(f"{CUSTOM_FIELD_SET}."):
                continue
            if name in fields:
                seen[name] = value
                problems.extend(_field_problems(name, fields[name], value))
            elif isinstance(value, dict) and name in groups:
                walk(value, f"{name}.")
            else:
                problems.append(f"{name}: not an ECS {version} field (custom fields go under {CUSTOM_FIELD_SET}.*)")

    walk(document, "")
    problems += [f"{name}: required by ECS, missing" for name, definition in fields.items()
                 if definition["required"] and name not in seen]
    categories, types = seen.get("event.category", []), seen.get("event.type", [])
    expected = fields["event.category"]["allowed"]
    problems += [f"event.type {kind!r} is not expected with event.category {category!r}"
                 for category in categories if isinstance(expected.get(category), list)
                 for kind in types if kind not in expected[category]]
    return problems


@cache
def ocsf_validator(version: str, class_uid: int) -> jsonschema.protocols.Validator:
    """A validator of one OCSF class in one OCSF version, from the schema ``ocsf-json-schema`` ships."""
    if version not in get_packaged_versions():
        raise InvalidAlert(f"metadata.version {version!r}: not an OCSF version ocsf-json-schema ships")
    ocsf = OcsfJsonSchemaEmbedded(get_ocsf_schema(version))
    try:
        name = ocsf.lookup_class_name_from_uid(class_uid)
    except ValueError as error:
        raise InvalidAlert(f"class_uid {class_uid!r}: not a class of OCSF {version}") from error
    schema = ocsf.get_class_schema(name)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def ocsf_problems(document: dict[str, Any]) -> list[str]:
    """Every way an OCSF alert departs from its class's schema in the OCSF version it declares."""
    version = document.get("metadata", {}).get("version")
    if not isinstance(version, str):
        return ["metadata.version: missing (OCSF requires it)"]
    validator = ocsf_validator(version, document["class_uid"])
    return [f"{'.'.join(map(str, error.absolute_path)) or '(document)'}: {error.message}"
            for error in validator.iter_errors(document)]


def validate_alert(document: dict[str, Any]) -> dict[str, Any]:
    """Raise unless the alert is valid in its format (ECS, or OCSF when it has a ``class_uid``); return it.

    ECS: ``jsonschema.ValidationError`` against docs/alert.schema.json, then :class:`InvalidAlert` listing every
    departure from the ECS field definitions. OCSF: :class:`InvalidAlert` listing every schema error.
    """
    if "class_uid" in document:
        problems = ocsf_problems(document)
    else:
        _validator().validate(document)
        problems = ecs_problems(document)
    if problems:
        raise InvalidAlert("\n".join(problems))
    return document


def parse_alerts(text: str | bytes) -> list[dict[str, Any]]:
    """Parse JSON-lines alert output and validate every alert."""
    if isinstance(text, bytes):
        text = text.decode()
    return [validate_alert(json.loads(line)) for line in text.splitlines() if line.strip()]
