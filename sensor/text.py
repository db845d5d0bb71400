"""Text an attacker wrote, made safe to show: the one escaping of the project.

mDNS and DNS names, Zeek's fields, honeyport payloads and a receiver's error bodies reach alerts, the
daemon's log, syslog messages and the report. :func:`visible` escapes in them every code point a terminal,
a log viewer or a browser would act on instead of showing -- the C0 controls and DEL (ESC sequences, a
forged second log line), the C1 controls (U+009B is a one-byte CSI), the bidirectional formatting
characters (U+202E turns ``exe.txt`` around) and the line and paragraph separators -- as ``\\xNN`` or
``\\uNNNN``; everything else is kept as it is. :func:`sd_param` is RFC 5424's escaping of a structured-data
value (§6.3.3), :func:`file_part` a piece of a file name that cannot leave its directory.
"""

from __future__ import annotations

import re
from typing import Any

_BIDI = (0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A))
"""Arabic letter mark, LRM, RLM, the embeddings and overrides (LRE … RLO), the isolates (LRI … PDI)."""
_ESCAPES = {code: (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
            for code in (*range(0x20), 0x7F, *range(0x80, 0xA0), *_BIDI, 0x2028, 0x2029)}
_FILE_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def visible(text: str) -> str:
    """``text`` with every control, bidirectional formatting character and line separator escaped."""
    return text.translate(_ESCAPES)


def visible_document(value: Any) -> Any:
    """A JSON document (dicts, lists, scalars) with :func:`visible` applied to every string in it."""
    if isinstance(value, str):
        return value.translate(_ESCAPES)
    if isinstance(value, dict):
        return {key: visible_document(item) for key, item in value.items()}
    if isinstance(value, list):
        return [visible_document(item) for item in value]
    return value


def sd_param(value: str) -> str:
    """A structured-data PARAM-VALUE (RFC 5424 §6.3.3): ``"``, ``\\`` and ``]`` escaped with a backslash, after
    :func:`visible`."""
    return visible(value).replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def file_part(text: str, limit: int = 80) -> str:
    """``text`` as part of a file name: letters, digits, ``.``, ``_`` and ``-`` only (runs of anything else
    become one ``_``), no leading dot, at most ``limit`` characters -- it names no other directory."""
    return _FILE_UNSAFE.sub("_", text).lstrip(".")[:limit] or "_"
