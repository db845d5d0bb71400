"""A TSV Zeek log's header, and the line-by-line decoder it is compiled into.

The header (``#fields``, ``#types``, separators) is parsed once; each wanted field gets a converter by its
Zeek type (``time`` → float, ``port``/``count`` → int, ``bool`` → bool, ``set``/``vector`` → list, strings
with Zeek's ``\\xNN`` escapes undone). Column positions are never hard-coded.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

_ESCAPE = re.compile(rb"\\x([0-9a-fA-F]{2})")


def unescape(raw: str) -> str:
    """Undo Zeek's ``\\xNN`` escaping (the escaped bytes may be UTF-8 sequences)."""
    if "\\" not in raw:
        return raw
    return _ESCAPE.sub(lambda m: bytes((int(m.group(1), 16),)), raw.encode()).decode("utf-8", "replace")


def _to_bool(raw: str) -> bool:
    if raw == "T":
        return True
    if raw == "F":
        return False
    raise ValueError(f"{raw!r} is not T or F")


def _scalar_converter(zeek_type: str) -> Callable[[str], Any]:
    if zeek_type in ("time", "interval", "double"):
        return float
    if zeek_type in ("count", "int", "port"):
        return int
    if zeek_type == "bool":
        return _to_bool
    if zeek_type in ("addr", "subnet", "enum"):
        return str
    return unescape


@dataclass(frozen=True, slots=True)
class Header:
    """A TSV log's header: its path (log name), fields and their converters."""

    path: str
    fields: tuple[str, ...]
    types: tuple[str, ...]
    set_separator: str = ","
    empty_field: str = "(empty)"
    unset_field: str = "-"
    index: dict[str, int] = field(default_factory=dict)

    def type_of(self, name: str) -> str:
        """The Zeek type of a field the log has (``string`` where ``#types`` is short)."""
        position = self.index[name]
        return self.types[position] if position < len(self.types) else "string"

    def converter(self, name: str) -> tuple[int, Callable[[str], Any]] | None:
        """Column index and value converter of a field, or None when the log lacks it."""
        position = self.index.get(name)
        if position is None:
            return None
        zeek_type = self.types[position] if position < len(self.types) else "string"
        if zeek_type.startswith(("set[", "vector[")):
            element = _scalar_converter(zeek_type[zeek_type.index("[") + 1 : -1])
            separator, empty = self.set_separator, self.empty_field

            def convert(raw: str) -> list[Any]:
                return [] if raw == empty else [element(item) for item in raw.split(separator)]

            return position, convert
        return position, _scalar_converter(zeek_type)


class RowDecoder:
    """The wanted fields of one TSV header, compiled once: a line becomes a record with one C-level pick
    of the raw columns, and Python work only for the columns that need converting."""

    __slots__ = ("_converted", "_escaped", "_names", "_pick", "unset", "width")

    def __init__(self, header: Header, wanted: tuple[str, ...]) -> None:
        names: list[str] = []
        positions: list[int] = []
        self._converted: list[tuple[str, Callable[[str], Any]]] = []
        self._escaped: list[str] = []
        for name in wanted:
            found = header.converter(name)
            if found is None:
                continue
            names.append(name)
            positions.append(found[0])
            if found[1] is unescape:
                self._escaped.append(name)
            elif found[1] is not str:
                self._converted.append((name, found[1]))
        self._names = tuple(names)
        self._pick: Callable[[list[str]], Any] = (
            operator.itemgetter(*positions) if len(positions) > 1  # a tuple of the raw columns
            else lambda parts: tuple(parts[position] for position in positions))  # itemgetter of one is no tuple
        self.width = len(header.fields)
        self.unset = header.unset_field

    def decode(self, text: str, parts: list[str]) -> dict[str, Any]:
        """The record of one line (``text``, split into ``parts`` as many as the header's fields);
        ValueError names a field that is bad."""
        raws = self._pick(parts)
        record = dict(zip(self._names, raws, strict=True))
        if self.unset in raws:
            record = {name: raw for name, raw in record.items() if raw != self.unset}
        name = ""
        try:
            for name, convert in self._converted:
                if name in record:
                    record[name] = convert(record[name])
        except ValueError as error:
            raise ValueError(f"field {name}: {error}") from None
        if "\\" in text:
            for name in self._escaped:
                if name in record:
                    record[name] = unescape(record[name])
        return record


def directive_value(raw: bytes) -> str:
    return _ESCAPE.sub(lambda m: bytes((int(m.group(1), 16),)), raw).decode("utf-8", "replace")
