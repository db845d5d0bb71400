"""The checkpoint's data format: the daemon's state as MessagePack data, never as code.

What is written is an object graph over two explicit allowlists, the classes of
:mod:`sensor.daemon.stateclasses` (the correlator and the objects it keeps state in, alerts, stream
positions) and the value types ``None``, ``bool``, ``int`` of any size, ``float`` (``inf`` and NaN too),
``str``, ``bytes``, ``list``, ``tuple``, ``dict`` with keys of any of these types, ``OrderedDict``, ``set``,
``frozenset``, IPv4 and IPv6 addresses, the members of its enums, catalogue rules (by id) and the bound
methods it names. Anything else makes the
encoder fail naming the type and the attribute that holds it, so a test (``tests/daemon/test_stateform.py``)
fails loudly the day a state class gains a value the format cannot carry.

An object is written as the index of its class in a table and the values of its attributes (every slot
along its class's bases, a named tuple's fields, or every instance attribute) in the table's order; the
table, written once, names each class and its attributes. On load each class must be in the allowlist and
its attributes exactly those the running code gives it (a fresh correlator's, or the class's slots), so a
slot added, renamed or removed since the file was written makes the load fail with that attribute named:
new slots need no change here, and an old layout is refused instead of half-loaded. Nothing on load is
looked up by a name from the file but in the allowlists, and nothing is called but the value types'
constructors, ``object.__new__`` of an allowlisted class and ``tuple.__new__`` of an allowlisted named
tuple: no ``__init__``, ``__setstate__`` or ``__reduce__``.

Shared references survive: an object, and a mutable container held by an object's attribute, is written
once and referred to by number afterwards (the correlator and its parts share one table of tracks, one
statistics record, one memo). The detection configuration the state was built with is not written: the
loader passes the one in force (the checkpoint's digest says whether they are the same).
"""

from __future__ import annotations

import struct
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import is_dataclass
from enum import Enum
from ipaddress import IPv4Address, IPv6Address
from types import MethodType
from typing import Any

import msgpack

from sensor.alerts.catalogue import RULES, Rule
from sensor.config import DetectionConfig
from sensor.daemon.stateclasses import CLASSES, ENUMS, METHODS
from sensor.detect.correlator import Correlator
from sensor.errors import SensorError
from sensor.zeek.fields import packed_address

_TUPLE, _SET, _FROZENSET, _ORDERED, _IPV4, _IPV6, _ENUM, _OBJECT, _REF, _HELD, _CONFIG, _METHOD, _INT, _RULE = \
    range(14)
_HEADER = struct.Struct(">II")
"""An object's class index and reference number, before its attribute values."""
_MUTABLE = (dict, list, set, OrderedDict)
_EMPTY_TUPLE = msgpack.ExtType(_TUPLE, b"")


class StateFormatError(SensorError):
    """State that cannot be written in this format, or data that is not a valid state."""

    def __init__(self, message: str, *, located: bool = False) -> None:
        super().__init__(message)
        self.located = located
        """The message names the attribute that holds the value."""


_SLOTS: dict[type, tuple[str, ...]] = {}


def _slots(cls: type) -> tuple[str, ...]:
    """Every slot along ``cls``'s bases, in order (remembered per class)."""
    found = _SLOTS.get(cls)
    if found is None:
        found = _SLOTS[cls] = _declared_slots(cls)
    return found


def _declared_slots(cls: type) -> tuple[str, ...]:
    if issubclass(cls, tuple):  # a named tuple: its fields
        return tuple(getattr(cls, "_fields", ()))
    names: list[str] = []
    for base in reversed(cls.__mro__):
        declared = base.__dict__.get("__slots__", ())
        for name in (declared,) if isinstance(declared, str) else declared:
            if name not in ("__weakref__", "__dict__") and name not in names:
                names.append(name)
    return tuple(names)


class _Held:
    """A mutable container held by an object's attribute: written once, referred to by number after."""

    __slots__ = ("value",)

    def __init__(self, value: object) -> None:
        self.value = value


class Encoder:
    """Writes values of the allowlisted types; :attr:`layouts` is the class table they need."""

    def __init__(self, active: dict[int, int] | None = None) -> None:
        self._config: DetectionConfig | None = None
        """The detection settings the state was built with (written as a mark: the loader passes its own)."""
        self._active: dict[int, int] = dict(active or {})
        """The objects being written (by ``id``, with their numbers): what refers back to one is a reference."""
        self._numbers: dict[int, int] = dict(self._active)
        self._keep: list[object] = []
        """What was numbered, kept alive so that no number's ``id`` is reused while encoding."""
        self._classes: dict[type, int] = {}
        self.layouts: list[tuple[str, tuple[str, ...]]] = []
        self._packers: list[Any] = []
        """One packer per depth of nesting (a packer is not reentrant; making one per value costs)."""
        self._depth = 0

    def pack(self, value: object) -> bytes:
        """``value`` as MessagePack; raise :class:`StateFormatError` naming what cannot be written."""
        if self._depth == len(self._packers):
            self._packers.append(msgpack.Packer(default=self._default, strict_types=True, use_bin_type=True))
        packer = self._packers[self._depth]
        self._depth += 1
        try:
            packed: bytes = packer.pack(value)
        except (TypeError, ValueError, OverflowError) as error:
            packer.reset()
            raise StateFormatError(str(error)) from None
        except BaseException:
            packer.reset()
            raise
        finally:
            self._depth -= 1
        return packed

    def _number(self, value: object) -> tuple[int, bool]:
        """The reference number of ``value``, and whether it is new."""
        found = self._numbers.get(id(value))
        if found is not None:
            return found, False
        number = self._numbers[id(value)] = len(self._numbers)
        self._keep.append(value)
        return number, True

    def _default(self, value: object) -> msgpack.ExtType:
        kind = type(value)
        if isinstance(value, tuple) and kind is tuple:
            return msgpack.ExtType(_TUPLE, self.pack(list(value))) if value else _EMPTY_TUPLE
        if isinstance(value, _Held):
            return self._held(value.value)
        if isinstance(value, set | frozenset) and kind in (set, frozenset):
            return msgpack.ExtType(_SET if kind is set else _FROZENSET, self.pack(list(value)))
        if isinstance(value, OrderedDict) and kind is OrderedDict:
            return msgpack.ExtType(_ORDERED, self.pack(dict(value)))
        if isinstance(value, IPv4Address):
            return msgpack.ExtType(_IPV4, value.packed)
        if isinstance(value, IPv6Address):
            return msgpack.ExtType(_IPV6, str(value).encode() if value.scope_id else value.packed)
        if isinstance(value, Enum) and ENUMS.get(kind.__name__) is kind:
            return msgpack.ExtType(_ENUM, self.pack([kind.__name__, value.value]))
        if isinstance(value, Rule) and kind is Rule:
            return msgpack.ExtType(_RULE, value.id.encode())
        if isinstance(value, int) and kind is int:
            return msgpack.ExtType(_INT, str(value).encode())
        if isinstance(value, DetectionConfig) and kind is DetectionConfig:
            if self._config is None:
                self._config = value
            if value is not self._config:
                raise StateFormatError("the state holds two different detection settings")
            return msgpack.ExtType(_CONFIG, b"")
        if isinstance(value, MethodType):
            return self._method(value)
        if CLASSES.get(kind.__name__) is kind:
            return self._object(value)
        raise StateFormatError(f"a {kind.__module__}.{kind.__qualname__} has no place in a checkpoint: add its "
                               "class to sensor.daemon.stateclasses.CLASSES if it is state")

    def _held(self, value: object) -> msgpack.ExtType:
        number, new = self._number(value)
        if not new:
            return msgpack.ExtType(_REF, _HEADER.pack(0, number))
        return msgpack.ExtType(_HELD, _HEADER.pack(0, number) + self.pack(value))

    def _method(self, method: MethodType) -> msgpack.ExtType:
        owner = type(method.__self__).__name__
        if (owner, method.__name__) not in METHODS or CLASSES.get(owner) is not type(method.__self__):
            raise StateFormatError(f"the method {owner}.{method.__name__} has no place in a checkpoint: add it to "
                                   "sensor.daemon.stateclasses.METHODS if state holds it")
        return msgpack.ExtType(_METHOD, self.pack([method.__self__, method.__name__]))

    def _layout(self, kind: type, value: object) -> tuple[int, tuple[str, ...]]:
        index = self._classes.get(kind)
        if index is None:
            names = _slots(kind) or tuple(vars(value))
            index = self._classes[kind] = len(self.layouts)
            self.layouts.append((kind.__name__, names))
        return index, self.layouts[index][1]

    def _object(self, value: object) -> msgpack.ExtType:
        kind = type(value)
        number, new = self._number(value)
        if not new:
            return msgpack.ExtType(_REF, _HEADER.pack(0, number))
        index, names = self._layout(kind, value)
        if not _slots(kind) and tuple(vars(value)) != names:
            raise StateFormatError(f"{kind.__name__} objects differ in their attributes: {sorted(vars(value))} "
                                   f"and {sorted(names)}")
        values: list[object] = []
        for name in names:
            try:
                held = getattr(value, name)
            except AttributeError:
                raise StateFormatError(f"{kind.__name__}.{name} is not set: every attribute of a state object "
                                       "is written") from None
            values.append(_Held(held) if type(held) in _MUTABLE else held)
        self._active[id(value)] = number
        try:
            packed = self.pack(values)
        except StateFormatError as error:
            if error.located:
                raise
            for name, held in zip(names, values, strict=True):
                try:  # each attribute again, on its own, to name the one that holds what cannot be written
                    Encoder(self._active).pack(held.value if isinstance(held, _Held) else held)
                except StateFormatError as inner:
                    if inner.located:
                        raise inner from None
                    raise StateFormatError(f"{kind.__name__}.{name}: {inner}", located=True) from None
            raise
        finally:
            del self._active[id(value)]
        return msgpack.ExtType(_OBJECT, _HEADER.pack(index, number) + packed)


class Decoder:
    """Reads what an :class:`Encoder` wrote, with the class table ``layouts``, for ``config``.

    ``expected`` gives each class's attribute names in the running code; a table that differs raises
    :class:`StateFormatError` naming the attribute.
    """

    def __init__(self, layouts: object, expected: Callable[[type], tuple[str, ...]],
                 config: DetectionConfig | None = None) -> None:
        self._config = config
        self._refs: dict[int, object] = {}
        self._classes: list[tuple[type, tuple[str, ...]]] = []
        if not isinstance(layouts, list):
            raise StateFormatError("the class table is not a list")
        for entry in layouts:
            if (not isinstance(entry, list) or len(entry) != 2 or not isinstance(entry[0], str)
                    or not isinstance(entry[1], list) or not all(isinstance(n, str) for n in entry[1])):
                raise StateFormatError("the class table is malformed")
            name, names = entry[0], tuple(entry[1])
            kind = CLASSES.get(name)
            if kind is None:
                raise StateFormatError(f"class {name[:60]!r} is not one a checkpoint may hold")
            wanted = expected(kind)
            if names != wanted:
                raise StateFormatError(f"{name} is laid out differently in this version: {_difference(names, wanted)}")
            self._classes.append((kind, names))

    def unpack(self, data: bytes) -> Any:
        """The value ``data`` holds; raise :class:`StateFormatError` for anything this format does not write."""
        try:
            return msgpack.unpackb(data, ext_hook=self._ext, strict_map_key=False, use_list=True, raw=False)
        except StateFormatError:
            raise
        except (ValueError, TypeError, KeyError, IndexError, struct.error, RecursionError) as error:
            raise StateFormatError(f"malformed state: {type(error).__name__}: {str(error)[:200]}") from None

    def _ext(self, code: int, data: bytes) -> object:
        if code == _TUPLE:
            return tuple(self._list(data)) if data else ()
        if code in (_SET, _FROZENSET):
            items = self._list(data)
            return set(items) if code == _SET else frozenset(items)
        if code == _ORDERED:
            found = self.unpack(data)
            if not isinstance(found, dict):
                raise StateFormatError("an ordered mapping that is no mapping")
            return OrderedDict(found)
        if code == _IPV4 and len(data) == 4:
            return packed_address(data)
        if code == _IPV6 and (len(data) == 16 or b"%" in data):
            found = packed_address(data)
            if found.version != 6:
                raise StateFormatError("an IPv6 address that is none")
            return found
        if code == _ENUM:
            name, value = self._pair(data)
            enum = ENUMS.get(name) if isinstance(name, str) else None
            if enum is None:
                raise StateFormatError(f"enum {str(name)[:60]!r} is not one a checkpoint may hold")
            return enum(value)
        if code == _RULE:
            rule = RULES.get(data.decode("utf-8", "replace"))
            if rule is None:
                raise StateFormatError(f"rule {data[:60]!r} is not in the catalogue")
            return rule
        if code == _INT:
            return int(data.decode("ascii"))
        if code == _CONFIG:
            if self._config is None:
                raise StateFormatError("detection settings where none were expected")
            return self._config
        if code == _REF:
            _, number = _HEADER.unpack(data)
            if number not in self._refs:
                raise StateFormatError(f"reference {number} to nothing written before")
            return self._refs[number]
        if code == _HELD:
            _, number = _HEADER.unpack_from(data)
            value = self.unpack(data[_HEADER.size:])
            if type(value) not in _MUTABLE:
                raise StateFormatError("a shared container that is no container")
            self._refs[number] = value
            return value
        if code == _METHOD:
            owner, name = self._pair(data)
            kind = type(owner)
            if (kind.__name__, name) not in METHODS or CLASSES.get(kind.__name__) is not kind:
                raise StateFormatError(f"method {str(name)[:60]!r} is not one a checkpoint may hold")
            bound: object = getattr(owner, name)
            return bound
        if code == _OBJECT:
            return self._object(data)
        raise StateFormatError(f"unknown value type {code}")

    def _list(self, data: bytes) -> list[Any]:
        found = self.unpack(data)
        if not isinstance(found, list):
            raise StateFormatError("a sequence that is no sequence")
        return found

    def _pair(self, data: bytes) -> tuple[Any, Any]:
        found = self._list(data)
        if len(found) != 2:
            raise StateFormatError("a pair that is no pair")
        return found[0], found[1]

    def _object(self, data: bytes) -> object:
        index, number = _HEADER.unpack_from(data)
        if index >= len(self._classes):
            raise StateFormatError(f"class number {index} is not in the table")
        if number in self._refs:
            raise StateFormatError(f"object {number} written twice")
        kind, names = self._classes[index]
        if issubclass(kind, tuple):  # a named tuple, made whole from its fields (``tuple.__new__``, as ``_make``)
            fields = self._list(data[_HEADER.size:])
            if len(fields) != len(names):
                raise StateFormatError(f"a {kind.__name__} with {len(fields)} values for {len(names)} fields")
            named: object = tuple.__new__(kind, fields)
            self._refs[number] = named
            return named
        made = object.__new__(kind)
        self._refs[number] = made  # before its attributes: they may refer back to it
        values = self._list(data[_HEADER.size:])
        if len(values) != len(names):
            raise StateFormatError(f"a {kind.__name__} with {len(values)} values for {len(names)} attributes")
        for name, value in zip(names, values, strict=True):
            object.__setattr__(made, name, value)
        return made


def _difference(found: tuple[str, ...], wanted: tuple[str, ...]) -> str:
    missing = [name for name in wanted if name not in found]
    extra = [name for name in found if name not in wanted]
    parts = ([f"attribute {', '.join(missing)} missing"] if missing else []) + (
        [f"attribute {', '.join(extra)} unknown"] if extra else [])
    return "; ".join(parts) or "attributes in another order"


def expected_layouts(config: DetectionConfig) -> Callable[[type], tuple[str, ...]]:
    """Each allowlisted class's attribute names in the running code: its slots, or the attributes a fresh
    correlator's instance of it has (classes without slots are all made by the correlator itself)."""
    fresh: dict[type, tuple[str, ...]] = {}
    _instances(Correlator(config), fresh)

    def expected(kind: type) -> tuple[str, ...]:
        slots = _slots(kind)
        if slots:
            return slots
        if is_dataclass(kind):
            raise StateFormatError(f"{kind.__name__} has no slots")
        found = fresh.get(kind)
        if found is None:
            raise StateFormatError(f"{kind.__name__} is not made by a correlator, and has no slots")
        return found

    return expected


def _instances(value: object, found: dict[type, tuple[str, ...]]) -> None:
    """Record the attribute names of every allowlisted object without slots reachable from ``value``."""
    kind = type(value)
    if CLASSES.get(kind.__name__) is not kind or kind in found or _slots(kind):
        return
    found[kind] = tuple(vars(value))
    for held in vars(value).values():
        _instances(held, found)
