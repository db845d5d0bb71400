"""Many TSV lines at once: a block of a Zeek log's data lines decoded column by column with pyarrow.

pyarrow's CSV reader splits the block in C++ and keeps only the wanted columns; each column is then
converted with the very converters the line-by-line decoder of :mod:`sensor.zeek.logs` uses, applied once
per *distinct* value (a conn.log holds few distinct ports, states or addresses per megabyte). Only a
column of floats (times), where nearly every value differs, is cast by pyarrow -- and only when every value
is a plain decimal, which pyarrow's parser (fast_float) and Python's ``float`` both round correctly, to the
same double.

Integers are cast by pyarrow when every value is plain decimal digits that fit 64 bits, and texts nearly
all distinct (uids) taken as they are.

A block is decoded here only when nothing in it is unusual; anything else -- a line with too few or too
many columns, a value a converter refuses, bytes that are not UTF-8, Zeek's ``\\x`` escapes, a carriage
return, an empty line, a JSON line -- makes :func:`decode_block` return None, and the caller decodes the
block line by line, which reports each bad line exactly as it always has. Columnar decoding therefore
never changes what a log yields, only how fast.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyarrow import csv

Converter = Callable[[str], Any]
Decoded = tuple[dict[str, list[Any]], frozenset[str]]
"""A block's columns by field name, and the names of those holding an unset value (None) somewhere."""
_PLAIN_DECIMAL = r"^-?[0-9]+(\.[0-9]+)?$"
_PLAIN_INTEGER = r"^-?[0-9]{1,18}$"
"""Integers pyarrow may cast itself: they fit an int64."""


def _convert(column: pa.Array, convert: Converter, identity: frozenset[Converter]) -> list[Any]:
    """The values of one column of strings, converted as ``convert`` would one by one (None where unset)."""
    if convert is float:
        return _floats(column)
    encoded = pc.dictionary_encode(column)
    if 2 * len(encoded.dictionary) > len(column):  # mostly distinct (uids, source ports): no sharing to gain
        if convert in identity:
            texts: list[Any] = column.to_pylist()
            return texts
        if convert is int and pc.all(pc.match_substring_regex(column, _PLAIN_INTEGER)).as_py() is not False:
            integers: list[Any] = pc.cast(column, pa.int64()).to_pylist()
            return integers
    return _distinct(encoded, convert)


def _distinct(encoded: pa.DictionaryArray, convert: Converter) -> list[Any]:
    """``convert`` applied once per distinct value, spread back over the rows (None where unset); equal
    values share one object, whose hash Python then computes once."""
    values = np.empty(len(encoded.dictionary) + 1, dtype=object)
    for index, raw in enumerate(encoded.dictionary.to_pylist()):
        values[index] = convert(raw)
    indices = pc.fill_null(encoded.indices, len(encoded.dictionary)).to_numpy()
    converted: list[Any] = values[indices].tolist()
    return converted


def _floats(column: pa.Array) -> list[Any]:
    if pc.all(pc.match_substring_regex(column, _PLAIN_DECIMAL)).as_py() is not False:
        floats: list[Any] = pc.cast(column, pa.float64()).to_pylist()
        return floats
    return [None if raw is None else float(raw) for raw in column.to_pylist()]


def decode_block(fields: Sequence[str], wanted: Sequence[tuple[str, Converter]], unset: str, data: bytes,
                 identity: frozenset[Converter] = frozenset({str})) -> Decoded | None:
    """The ``wanted`` columns of ``data`` (complete data lines of a TSV log whose header names ``fields``)
    and the names of those holding an unset value somewhere, or None when the block needs the line-by-line
    decoder.

    ``wanted`` holds ``(name, converter)`` per field present in the header; a value equal to ``unset`` is None.
    ``identity`` names the converters that return a text without backslashes unchanged.
    """
    if (b"\\" in data or b"\r" in data or (b"{" in data and (data[:1] == b"{" or b"\n{" in data))
            or len(set(fields)) != len(fields)):
        return None
    if not data.isascii():
        try:
            data.decode()
        except UnicodeDecodeError:
            return None
    rows = data.count(b"\n")
    malformed: list[object] = []

    def refuse(row: object) -> str:
        malformed.append(row)
        return "skip"

    try:
        table = csv.read_csv(
            pa.py_buffer(data),
            read_options=csv.ReadOptions(column_names=list(fields), use_threads=False, block_size=len(data) + 1),
            parse_options=csv.ParseOptions(delimiter="\t", quote_char=False, double_quote=False, escape_char=False,
                                           newlines_in_values=False, invalid_row_handler=refuse),
            convert_options=csv.ConvertOptions(
                include_columns=[name for name, _ in wanted],
                column_types={name: pa.string() for name, _ in wanted},
                null_values=[unset], strings_can_be_null=True, quoted_strings_can_be_null=False))
    except pa.ArrowInvalid:
        return None
    if malformed or table.num_rows != rows:  # a bad line, or an empty one (which pyarrow passes over)
        return None
    columns: dict[str, list[Any]] = {}
    try:
        for name, convert in wanted:
            column = table.column(name).combine_chunks()
            columns[name] = _convert(column, convert, identity)
    except ValueError:
        return None
    return columns, frozenset(name for name, _ in wanted if table.column(name).null_count)
