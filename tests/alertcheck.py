"""Every alert a test produces goes through here: parsed, and validated against docs/alert.schema.json.

Use :func:`parse_alerts` on any JSON-lines alert output (stdout of a command, a JSONL file) so that the
schema is checked on every alert the suite sees.
"""

from __future__ import annotations

import ipaddress
import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "docs" / "alert.schema.json"
_FORMATS = jsonschema.FormatChecker()


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


def validate_alert(document: dict[str, Any]) -> dict[str, Any]:
    """Raise ``jsonschema.ValidationError`` unless the alert matches the schema; return it."""
    _validator().validate(document)
    return document


def parse_alerts(text: str | bytes) -> list[dict[str, Any]]:
    """Parse JSON-lines alert output and validate every alert against the schema."""
    if isinstance(text, bytes):
        text = text.decode()
    return [validate_alert(json.loads(line)) for line in text.splitlines() if line.strip()]
