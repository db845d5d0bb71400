"""Many TSV lines at once: a block of a Zeek log's data lines decoded column by column with pyarrow.

pyarrow's CSV reader splits the block in C++ and keeps only the wanted columns. It parses the numbers
itself -- times (``float``) and counts and ports (``int``): a decimal is rounded correctly by its parser
(fast_float) as by Python's, to the same double, and anything it does not take as a number (``+1``, ``1_0``,
an integer past 64 bits) fails the block. Every other column is converted with the very converters the
line-by-line decoder of :mod:`sensor.zeek.logs` uses, applied once per *distinct* value (a conn.log holds
few distinct states or addresses per megabyte); texts nearly all distinct (uids) are taken as they are.

A block is decoded here only when nothing in it is unusual; anything else -- a line with too few or too
many columns, a value a converter refuses, bytes that are not UTF-8, Zeek's ``\\x`` escapes, a carriage
return, an empty line, a JSON line -- makes :func:`decode_block` return None, and the caller decodes the
block line by line, which reports each bad line exactly as it always has. Columnar decoding therefore
never changes what a log yields, only how fast.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyarrow import csv

Converter = Callable[[str], Any]
_NUMBERS: dict[Converter, pa.DataType] = {float: pa.float64(), int: pa.int64()}
"""Converters whose columns pyarrow's reader parses itself: a value either parses as Python's ``float`` or
``int`` would parse it (both round a decimal correctly) or fails the block, which is then decoded line by
line."""


class Columns(Mapping[str, list[Any]]):
    """A decoded block's wanted columns by field name: each a list of values (None where unset), converted
    the first time it is read; the columns themselves for a mapper that works on whole columns
    (:mod:`sensor.zeek.conncolumns`). Columns whose converter can refuse a value are converted when the
    block is decoded, so a block either decodes whole or goes line by line."""

    __slots__ = ("_arrays", "_converted", "_converters", "_identity", "_table", "unset")

    def __init__(self, table: pa.Table, converters: dict[str, Converter], identity: frozenset[Converter]) -> None:
        self._table = table
        self._converters = converters
        self._identity = identity
        self._converted: dict[str, list[Any]] = {}
        self._arrays: dict[str, pa.Array] = {}
        self.unset = frozenset(name for name in converters if table.column(name).null_count)
        """The names of the columns holding an unset value somewhere."""
        for name, convert in converters.items():
            if convert not in _NUMBERS and convert not in identity:
                self[name]

    def __getitem__(self, name: str) -> list[Any]:
        found = self._converted.get(name)
        if found is None:
            convert = self._converters[name]
            found = self._converted[name] = _convert(self.column(name), convert, self._identity)
        return found

    def __contains__(self, name: object) -> bool:
        return name in self._converters  # Mapping's own would convert the column to find out

    def __iter__(self) -> Iterator[str]:
        return iter(self._converters)

    def __len__(self) -> int:
        return len(self._converters)

    def column(self, name: str) -> pa.Array:
        """The column as pyarrow read it: texts, or numbers for ``float`` and ``int`` fields."""
        found = self._arrays.get(name)
        if found is None:
            chunked = self._table.column(name)  # one chunk (the block is read at once): taken as it is, not copied
            found = self._arrays[name] = chunked.chunk(0) if chunked.num_chunks == 1 else chunked.combine_chunks()
        return found

    def codes(self, name: str) -> tuple[list[str | None], np.ndarray]:
        """The distinct texts of the column (None last, for the unset value) and each row's index into them."""
        encoded = pc.dictionary_encode(self.column(name))
        texts: list[str | None] = [*encoded.dictionary.to_pylist(), None]
        return texts, pc.fill_null(encoded.indices, len(texts) - 1).to_numpy()


def _convert(column: pa.Array, convert: Converter, identity: frozenset[Converter]) -> list[Any]:
    """The values of one column, converted as ``convert`` would one by one (None where unset)."""
    if convert in _NUMBERS:
        if column.null_count:
            numbers: list[Any] = column.to_pylist()
            return numbers
        return column.to_numpy().tolist()  # type: ignore[no-any-return]
    encoded = pc.dictionary_encode(column)
    if convert in identity and 2 * len(encoded.dictionary) > len(column):
        texts: list[Any] = column.to_pylist()  # mostly distinct (uids): no sharing to gain
        return texts
    values = np.empty(len(encoded.dictionary) + 1, dtype=object)
    for index, raw in enumerate(encoded.dictionary.to_pylist()):
        values[index] = convert(raw)
    indices = pc.fill_null(encoded.indices, len(encoded.dictionary)).to_numpy()
    converted: list[Any] = values[indices].tolist()  # equal values share one object, hashed once
    return converted


def decode_block(fields: Sequence[str], wanted: Sequence[tuple[str, Converter]], unset: str, data: bytes,
                 rows: int, identity: frozenset[Converter] = frozenset({str})) -> Columns | None:
    """The ``wanted`` columns of ``data`` (``rows`` complete data lines of a TSV log whose header names
    ``fields``), or None when the block needs the line-by-line decoder.

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
                column_types={name: _NUMBERS.get(convert, pa.string()) for name, convert in wanted},
                null_values=[unset], strings_can_be_null=True, quoted_strings_can_be_null=False))
    except pa.ArrowInvalid:
        return None
    if malformed or table.num_rows != rows:  # a bad line, or an empty one (which pyarrow passes over)
        return None
    try:
        return Columns(table, dict(wanted), identity)
    except ValueError:
        return None
