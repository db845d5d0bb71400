"""conn.log records decoded as columns (:class:`~sensor.zeek.columns.Columns`) → one :class:`ConnRows`.

The same mapping as :func:`sensor.zeek.records.observations` makes of each record read line by line --
identity, transport and outcome -- computed a column at a time with pyarrow and numpy, which do their work
without the interpreter (and without holding Python's lock, so a reader thread runs beside the correlator):

* the addresses' keys (:func:`~sensor.observations.address_key`) from the dotted quads themselves, checked as
  strictly as ``inet_pton`` reads them (four decimal octets up to 255, no leading zero); a block with any
  other text (IPv6) keys those through :func:`~sensor.zeek.fields.address`, once per distinct text;
* (transport, outcome) judged once per distinct (proto, conn_state, history, answered)
  (:func:`~sensor.zeek.fields.verdict`, whose memo both ways share);
* the addresses, the source port, uid, service and MAC (``orig_l2_addr``) only for the records the correlator
  reads in full, one value at a time (:class:`_Cold`): most records are judged by their keys, ports and outcome
  alone.

Only the rare rows that need a look of their own -- ICMP, and records the Zeek package tagged -- are mapped
one by one. Loaded with pyarrow, by the readers of TSV logs only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar, overload

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sensor.observations import PORT_KEYS, ConnRows, IPAddress, Outcome, Transport, service_key
from sensor.zeek.columns import Columns
from sensor.zeek.fields import ICMP_ECHO_REQUESTS, LATEST_TIME, NEEDED, NO_TAGS, address, conn_outcome, verdict

T = TypeVar("T")


class _Cold(Sequence[T], Generic[T]):
    """A column of a block read a row at a time (``convert`` applied to the value): only the records the
    correlator takes the full way read it, so the column never becomes a list."""

    __slots__ = ("_array", "_convert")

    def __init__(self, array: pa.Array, convert: Callable[[Any], T] | None = None) -> None:
        self._array = array
        self._convert = convert

    def __len__(self) -> int:
        return len(self._array)

    def pick(self, indices: Sequence[int]) -> _Cold[T]:
        """The rows at ``indices``, still read a row at a time (:meth:`~sensor.observations.ConnRows.pick`)."""
        return _Cold(self._array.take(np.asarray(indices, dtype=np.int64)), self._convert)

    @overload
    def __getitem__(self, index: int) -> T: ...

    @overload
    def __getitem__(self, index: slice) -> list[T]: ...

    def __getitem__(self, index: int | slice) -> T | list[T]:
        if isinstance(index, slice):
            return [self[row] for row in range(*index.indices(len(self)))]
        value = self._array[index].as_py()
        return value if self._convert is None else self._convert(value)


def conn_rows(columns: Columns, count: int) -> ConnRows | None:
    """The records of a block of conn.log columns (of the expected Zeek types), or None when one lacks a
    field the mapping needs or holds a bad address, time or port (the caller then maps row by row, reporting
    it)."""
    if not columns.unset.isdisjoint(NEEDED) or not NEEDED.issubset(columns):
        return None
    try:
        source_keys = _keys(columns, "id.orig_h")
        target_keys = _keys(columns, "id.resp_h")
    except (ValueError, TypeError):
        return None
    transports, outcomes, spaces = _verdicts(columns, count)
    source_ports = _integers(columns, "id.orig_p")
    raw_tags = columns.get("t1046_tags") or []
    tags: list[Any] = [NO_TAGS] * count
    for row in [row for row, found in enumerate(raw_tags) if found] if any(raw_tags) else ():
        if transports[row] is not Transport.ICMP and transports[row] is not None:
            tags[row] = frozenset(raw_tags[row])
            outcomes[row] = conn_outcome(_text(columns, "proto", row), _text(columns, "conn_state", row),
                                         _text(columns, "history", row), _value(columns, "resp_pkts", row),
                                         tags[row], bool(_value(columns, "missed_bytes", row)))
    icmp = Transport.ICMP
    for row in [row for row, transport in enumerate(transports) if transport is icmp] if icmp in transports else ():
        if int(source_ports[row]) in ICMP_ECHO_REQUESTS:
            outcomes[row] = Outcome.ESTABLISHED if _value(columns, "resp_pkts", row) else Outcome.UNANSWERED
        else:
            transports[row] = None
    ts = columns.column("ts")
    target_ports = _integers(columns, "id.resp_p")
    stamps = ts.to_numpy(zero_copy_only=False)
    if not (bool(np.all((stamps >= 0.0) & (stamps <= LATEST_TIME)))  # NaN fails both
            and _ports(source_ports) and _ports(target_ports)):
        return None
    sources, targets = columns.column("id.orig_h"), columns.column("id.resp_h")
    uids, services = _texts_or_empty(columns, "uid", count), _texts_or_empty(columns, "service", count)
    macs = columns.column("orig_l2_addr") if "orig_l2_addr" in columns else None
    if None in transports:
        kept = [transport is not None for transport in transports]
        mask = pa.array(kept)
        ts, sources, targets, uids, services = (pc.filter(values, mask) for values in (ts, sources, targets, uids,
                                                                                       services))
        macs = None if macs is None else pc.filter(macs, mask)
        source_ports, target_ports, source_keys, target_keys, spaces = (
            values[np.asarray(kept)] for values in (source_ports, target_ports, source_keys, target_keys, spaces))
        transports, outcomes, tags = ([value for value, keep in zip(values, kept, strict=True) if keep]
                                      for values in (transports, outcomes, tags))
    return ConnRows(ts.to_numpy().tolist(), _Cold[IPAddress](sources, address), _Cold[int](pa.array(source_ports)),
                    _Cold[IPAddress](targets, address), target_ports.tolist(), transports, outcomes,
                    _Cold[str](uids, _text_or_empty), _Cold[str](services, _text_or_empty), tags,
                    source_keys.tolist(), target_keys.tolist(),
                    (target_keys * PORT_KEYS + spaces + target_ports).tolist(),
                    source_mac=() if macs is None else _Cold[str](macs, _text_or_empty))


def _ports(values: np.ndarray) -> bool:
    """True when every value is a port (or an ICMP type): 0 to 65535."""
    return len(values) == 0 or (int(values.min()) >= 0 and int(values.max()) <= 65535)


def _keys(columns: Columns, name: str) -> np.ndarray:
    """The key of each row's address, computed once per distinct text: from the text itself where every one
    is a plain dotted quad (:func:`_quad_keys`), else through :func:`~sensor.zeek.fields.address` (which
    raises ``ValueError`` for a bad one)."""
    encoded = pc.dictionary_encode(columns.column(name))
    distinct = _quad_keys(encoded.dictionary)
    if distinct is None:
        distinct = _objects([address(text).key for text in encoded.dictionary.to_pylist()])
    keys: np.ndarray = distinct[encoded.indices.to_numpy()]
    return keys


def _quad_keys(texts: pa.Array) -> np.ndarray | None:
    """The IPv4 address of each text as an integer, or None unless every text is a dotted quad as
    ``inet_pton`` reads one: four decimal octets of one to three digits, none above 255, no leading zero."""
    count = len(texts)
    if count == 0 or texts.null_count:
        return None
    offsets = np.frombuffer(texts.buffers()[1], dtype=np.int32, count=count + 1, offset=texts.offset * 4)
    base = int(offsets[0])
    data = np.frombuffer(texts.buffers()[2], dtype=np.uint8)[base:int(offsets[-1])]
    dots = np.flatnonzero(data == ord(".")).astype(np.int32)
    if len(dots) != 3 * count:
        return None
    bounds = np.empty((count, 5), dtype=np.int32)
    bounds[:, 0] = offsets[:-1] - (base + 1)
    bounds[:, 1:4] = dots.reshape(count, 3)
    bounds[:, 4] = offsets[1:] - base
    first = bounds[:, :4] + 1
    lengths = bounds[:, 1:] - first
    if lengths.min() < 1 or lengths.max() > 3:  # an empty or long octet, or a row's dots in another row
        return None
    digits = np.zeros(len(data) + 2, dtype=np.int16)
    np.subtract(data, ord("0"), out=digits[:-2], casting="unsafe")  # any byte but a digit: below 0 or above 9
    ones, tens, hundreds = digits[first], digits[first + 1], digits[first + 2]
    two, three = lengths > 1, lengths > 2
    if ((ones > 9) | (ones < 0) | (two & ((tens > 9) | (tens < 0) | (ones == 0)))
            | (three & ((hundreds > 9) | (hundreds < 0)))).any():
        return None
    octets = ones.astype(np.int64)
    octets = np.where(two, octets * 10 + tens, octets)
    octets = np.where(three, octets * 10 + hundreds, octets)
    if octets.max() > 255:
        return None
    keys: np.ndarray = (octets[:, 0] << 24) | (octets[:, 1] << 16) | (octets[:, 2] << 8) | octets[:, 3]
    return keys


def _verdicts(columns: Columns, count: int) -> tuple[list[Any], list[Any], np.ndarray]:
    """(transport, outcome) of every row, judged once per distinct (proto, conn_state, history, answered,
    lossy), and where the transport's ports start among :func:`~sensor.observations.service_key`'s."""
    parts = [columns.codes(name) if name in columns else ([None], np.zeros(count, dtype=np.int64))
             for name in ("proto", "conn_state", "history")]
    answered, lossy = (_nonzero(columns, name, count) for name in ("resp_pkts", "missed_bytes"))
    combined = answered.astype(np.int64) * 2 + lossy
    for values, rows in parts:
        combined = combined * len(values) + rows
    encoded = pc.dictionary_encode(pa.array(combined))
    judged = []
    for code in encoded.dictionary.to_pylist():
        rest, texts = code, list[str]()
        for distinct, _ in reversed(parts):
            rest, index = divmod(rest, len(distinct))
            texts.append(distinct[index] or "")
        history, state, proto = texts
        judged.append(verdict((proto, state, history, rest >= 2, bool(rest % 2))))
    spread = encoded.indices.to_numpy()
    starts = np.array([0 if found[0] is None else service_key(0, found[0], 0) for found in judged], dtype=np.int64)
    return (_objects([found[0] for found in judged])[spread].tolist(),
            _objects([found[1] for found in judged])[spread].tolist(), starts[spread])


def _nonzero(columns: Columns, name: str, count: int) -> np.ndarray:
    """Whether each row's count is above 0 (False where unset or when the log lacks the column)."""
    if name not in columns:
        return np.zeros(count, dtype=bool)
    found: np.ndarray = pc.fill_null(pc.not_equal(columns.column(name), 0), False).to_numpy(zero_copy_only=False)
    return found


def _value(columns: Columns, name: str, row: int) -> Any:
    """One row's value of a column, None where unset or when the log lacks the column."""
    values = columns.get(name)
    return None if values is None else values[row]


def _text(columns: Columns, name: str, row: int) -> str:
    return _value(columns, name, row) or ""


def _integers(columns: Columns, name: str) -> np.ndarray:
    """An integer column, 0 where unset or when the log lacks it."""
    if name not in columns:
        return np.zeros(len(columns.column("ts")), dtype=np.int64)
    integers: np.ndarray = pc.fill_null(columns.column(name), 0).to_numpy()
    return integers


def _text_or_empty(value: str | None) -> str:
    return value or ""


def _texts_or_empty(columns: Columns, name: str, count: int) -> pa.Array:
    """A text column (read with :func:`_text_or_empty`: "" where unset), all "" when the log lacks it."""
    if name not in columns:
        return pa.array([""] * count)
    return columns.column(name)


def _objects(values: list[Any]) -> np.ndarray:
    """An array of Python objects, one per value (numpy would otherwise take a tuple apart)."""
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array
