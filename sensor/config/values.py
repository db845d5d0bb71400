"""Converters from YAML values to typed ones, and the reader that collects every problem with its path.

Each converter takes one YAML value and returns the typed value or raises ``ValueError`` with a message
that names the bad value (``70000 is not a port (0-65535)`` for a honeyport, which may ask for 0);
:class:`_Reader` puts the path in front (``honeyports.tcp: …``) and keeps going, so every problem of a file
is reported at once.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from sensor.config.model import IPNetwork
from sensor.zeek import KINDS as ZEEK_LOGS

_SCHEDULE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")
T = TypeVar("T")
_NO_PORTS: tuple[int, ...] = ()
_NO_TEXT: tuple[str, ...] = ()


def parse_ports(text: str, lowest: int = 1) -> tuple[int, ...]:
    """Parse a port list such as ``22,80,8000-8100`` into sorted unique ports; raise ``ValueError``.

    ``lowest=0`` admits port 0, a listener's request for any free port."""
    ports: set[int] = set()
    for raw in text.split(","):
        item = raw.strip()
        if not item:
            continue
        low_text, _, high_text = item.partition("-")
        try:
            low = int(low_text)
            high = int(high_text) if high_text else low
        except ValueError:
            raise ValueError(f"{item!r} is not a port or a range like 8000-8100") from None
        for port in (low, high):
            if not lowest <= port <= 65535:
                raise ValueError(f"{port} is not a port ({lowest}-65535)")
        if high < low:
            raise ValueError(f"{item!r} is an empty range")
        ports.update(range(low, high + 1))
    return tuple(sorted(ports))


def port_ranges(ports: Iterable[int]) -> str:
    """Ports written as :func:`parse_ports` reads them, runs as ranges: ``22,80,8000-8100``."""
    ordered = sorted(set(ports))
    runs: list[str] = []
    start = 0
    for index, port in enumerate(ordered):
        if index + 1 == len(ordered) or ordered[index + 1] != port + 1:
            first = ordered[start]
            runs.append(str(port) if first == port else f"{first}-{port}")
            start = index + 1
    return ",".join(runs)


class _Reader:
    """Walks a YAML tree, converting values and collecting every problem with its path."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def problem(self, path: str, message: str) -> None:
        self.problems.append(f"{path}: {message}")

    def section(self, parent: Mapping[str, Any], key: str, path: str, known: tuple[str, ...]) -> dict[str, Any]:
        value = parent.get(key)
        where = f"{path}.{key}" if path else key
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.problem(where, f"must be a mapping, not {type(value).__name__}")
            return {}
        for extra in sorted(set(value) - set(known)):
            self.problem(f"{where}.{extra}", f"unknown key (known: {', '.join(known)})")
        return value

    def value(self, data: Mapping[str, Any], key: str, path: str, convert: Callable[[Any], T], default: T) -> T:
        if key not in data or data[key] is None:
            return default
        try:
            return convert(data[key])
        except (TypeError, ValueError) as error:
            self.problem(f"{path}.{key}", str(error))
            return default

    def items(self, data: Mapping[str, Any], key: str, path: str, convert: Callable[[Any, str], T | None]) -> list[T]:
        raw = data.get(key)
        if raw is None:
            return []
        where = f"{path}.{key}" if path else key
        if not isinstance(raw, list):
            self.problem(where, f"must be a list, not {type(raw).__name__}")
            return []
        converted = (convert(item, f"{where}[{index}]") for index, item in enumerate(raw))
        return [item for item in converted if item is not None]


def _text(value: Any) -> str:
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise ValueError(f"{value!r} is not a string")
    return str(value)


def _positive_number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ValueError(f"{value!r} is not a positive number")
    return float(value)


def _positive_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{value!r} is not a positive whole number")
    return value


def _ports(value: Any, lowest: int = 1) -> tuple[int, ...]:
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a port list")
    if isinstance(value, int):
        return parse_ports(str(value), lowest)
    if isinstance(value, list):
        return parse_ports(",".join(_text(v) for v in value), lowest)
    return parse_ports(_text(value), lowest)


def _listen_ports(value: Any) -> tuple[int, ...]:
    """Honeyport ports; 0 is any free port (the listener logs the one it got)."""
    return _ports(value, lowest=0)


def _network(value: Any) -> IPNetwork:
    try:
        return ipaddress.ip_network(_text(value), strict=False)
    except ValueError:
        raise ValueError(f"{value!r} is not an address or CIDR network") from None


def _networks(value: Any) -> tuple[IPNetwork, ...]:
    if not isinstance(value, list):
        raise ValueError(f"must be a list of CIDR networks, not {type(value).__name__}")
    networks = []
    for index, item in enumerate(value):
        try:
            networks.append(_network(item))
        except ValueError as error:
            raise ValueError(f"[{index}] {error}") from None
    return tuple(networks)


def _schedule(value: Any) -> tuple[int, int]:
    match = _SCHEDULE.match(_text(value))
    if match is None:
        raise ValueError(f"{value!r} is not a daily UTC window like 01:00-05:00")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    return h1 * 60 + m1, h2 * 60 + m2


def _choice(options: tuple[str, ...]) -> Callable[[Any], str]:
    def convert(value: Any) -> str:
        text = _text(value)
        if text not in options:
            raise ValueError(f"{text!r} is not one of {', '.join(options)}")
        return text

    return convert


def _string_list(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ValueError(f"must be a list, not {type(value).__name__}")
    return tuple(_text(v) for v in value)


def _zeek_logs(value: Any) -> tuple[str, ...]:
    """``zeek.logs``: a non-empty list of the logs the follower reads, each named once."""
    names = _string_list(value)
    unknown = [name for name in names if name not in ZEEK_LOGS]
    if unknown or not names or len(set(names)) != len(names):
        raise ValueError(f"must list some of {', '.join(ZEEK_LOGS)}, each once (got {list(names)})")
    return names



def _at_least(minimum: int) -> Callable[[Any], int]:
    def convert(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError(f"{value!r} is not a whole number of at least {minimum}")
        return value

    return convert


def _port(value: Any) -> int:
    ports = _ports(value)
    if len(ports) != 1:
        raise ValueError(f"{value!r} is not one port")
    return ports[0]


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{value!r} is not true or false")
    return value


def _url(value: Any) -> str:
    text = _text(value)
    if not re.match(r"^https?://[^/\s]+", text):
        raise ValueError(f"{text!r} is not an http:// or https:// URL")
    return text


def _headers(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ValueError("must be a mapping of header name to value")
    headers = {_text(k): _text(v) for k, v in value.items()}
    if any(name.lower() == "authorization" for name in headers):
        raise ValueError("an Authorization header would put a secret in the file: use token_env or token_file")
    return headers



def _listen_address(value: Any) -> tuple[str, int]:
    host, _, port = _text(value).rpartition(":")
    host = host.strip("[]")
    try:
        ipaddress.ip_address(host)
        number = int(port)
    except ValueError:
        raise ValueError(f"{value!r} is not ADDRESS:PORT like 127.0.0.1:9646") from None
    if not 1 <= number <= 65535:
        raise ValueError(f"{number} is not a port (1-65535)")
    return host, number


def _host_port(value: Any) -> tuple[str, int]:
    host, _, port = _text(value).rpartition(":")
    host = host.strip("[]")
    if not host or not re.fullmatch(r"[A-Za-z0-9.:-]+", host) or not port.isdigit():
        raise ValueError(f"{value!r} is not HOST:PORT like 10.0.0.5:6146 or central.example:6146")
    if not 1 <= int(port) <= 65535:
        raise ValueError(f"{port} is not a port (1-65535)")
    return host, int(port)


def _path(value: Any) -> Path:
    return Path(_text(value)).expanduser()



def _profiles(value: Any) -> dict[int, str]:
    if not isinstance(value, dict):
        raise ValueError("must be a mapping of port to profile name")
    profiles: dict[int, str] = {}
    for port, name in value.items():
        for number in _ports(port):
            profiles[number] = _text(name)
    return profiles
