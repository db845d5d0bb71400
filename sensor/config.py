"""Configuration: YAML parsed once, at start-up, into typed frozen objects.

Every problem is collected with its path in the file (``honeyports.tcp: 70000 is not a port``) and reported
at once by :class:`~sensor.errors.ConfigError`. Nothing here reads the file system at import time.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import yaml

from sensor.errors import ConfigError
from sensor.zeek import KINDS as ZEEK_LOGS

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_LOCAL_NETS = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
SENSITIVE_MDNS_TYPES = (
    "_ssh._tcp",
    "_sftp-ssh._tcp",
    "_rfb._tcp",
    "_smb._tcp",
    "_afpovertcp._tcp",
    "_workstation._tcp",
    "_rdp._tcp",
    "_telnet._tcp",
    "_device-info._tcp",
    "_ftp._tcp",
    "_nfs._tcp",
    "_adisk._tcp",
    "_webdav._tcp",
    "_net-assistant._udp",
    "_apple-mobdev2._tcp",
)
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


@dataclass(frozen=True, slots=True)
class AllowlistEntry:
    """An authorized scanner: a source network, optionally limited to target ports and a daily UTC window."""

    network: IPNetwork
    reason: str
    ports: frozenset[int] = frozenset()
    """Empty: every port."""
    schedule: tuple[int, int] | None = None
    """Daily window in minutes after midnight UTC, ``(start, end)``; it may wrap past midnight."""

    def covers(self, source: ipaddress.IPv4Address | ipaddress.IPv6Address, port: int | None, ts: float) -> bool:
        """True when this entry authorizes a probe from ``source`` to ``port`` at time ``ts``."""
        if source not in self.network:
            return False
        if self.ports and port is not None and port not in self.ports:
            return False
        if self.schedule is None:
            return True
        minute = int(ts // 60) % 1440
        start, end = self.schedule
        return start <= minute < end if start <= end else minute >= start or minute < end


@dataclass(frozen=True, slots=True)
class DetectionConfig:
    """Thresholds and site knowledge for the correlator; the defaults are the documented ones."""

    local_nets: tuple[IPNetwork, ...] = tuple(ipaddress.ip_network(n) for n in DEFAULT_LOCAL_NETS)
    allowlist: tuple[AllowlistEntry, ...] = ()
    allowlist_mode: str = "label"
    """``label``: authorized scans are emitted as ``event.kind: event`` with a tag; ``suppress``: counted only."""
    window: float = 300.0
    """Seconds of the short window for distinct-port and distinct-target counting."""
    slow_window: float = 86400.0
    """Seconds of the long window for slow scans."""
    port_scan_ports: int = 6
    """Distinct failed ports on one target within ``window`` that make a vertical scan (failures to ports seen
    serving are outages and do not count)."""
    address_scan_targets: int = 6
    """Distinct failed targets on one port within ``window`` that make a horizontal sweep (likewise)."""
    half_open_probes: int = 3
    """Distinct half-open (SYN-ACKed, then reset by the originator) contacts within ``window``."""
    stealth_probes: int = 6
    """Distinct (target, port) TCP probes without a handshake (FIN, NULL, Xmas, ACK) within ``window``."""
    slow_scan_pairs: int = 60
    """Distinct failed (target, port) pairs within ``slow_window`` that make a slow scan."""
    slow_port_scan_ports: int = 12
    """Distinct failed ports on one target within ``slow_window`` that make a slow vertical scan."""
    slow_address_scan_targets: int = 12
    """Distinct failed targets on one port within ``slow_window`` that make a slow horizontal sweep."""
    served_memory: float = 86400.0
    """Seconds a (target, port) counts as serving after a working connection to it, from any client."""
    max_served: int = 262_144
    """Hard cap on remembered serving (target, port) pairs; the least recently served is forgotten first."""
    trw_theta0: float = 0.8
    trw_theta1: float = 0.2
    trw_detection: float = 0.99
    trw_false_positive: float = 0.01
    mdns_sensitive_types: tuple[str, ...] = SENSITIVE_MDNS_TYPES
    mdns_distinct_types: int = 6
    """Distinct service types browsed by one host within ``window`` that alert on their own."""
    mdns_decoy_names: tuple[str, ...] = ()
    """Instance names of decoy services (lower case, with ``.local``); any lookup of them alerts."""
    idle_timeout: float = 3600.0
    """Seconds without activity after which a source's state is dropped and its incident closed."""
    lateness: float = 15.0
    """Seconds the correlator's clock (the watermark) stays behind the newest event time seen, so records
    that arrive out of order by up to this much (Zeek writes conn.log when connections end) are in before
    time alone acts (final updates, closing, expiry)."""
    final_update_after: float = 30.0
    """Seconds of quiet (event time, behind the watermark) after which an incident that grew since its last
    update gets an update with its final extent."""
    update_every: float = 60.0
    """Seconds of event time between two updates of one incident for growth alone (new rules, a new action
    or evidence source, a honeyport client's first bytes are sent at once)."""
    max_sources: int = 200_000
    """Hard cap on sources under observation; the least recently active is evicted first."""
    max_incidents: int = 20_000
    """Hard cap on open incidents; the least recently active is closed first."""
    max_pairs_per_source: int = 8192
    """Hard cap on remembered (target, port) pairs per source."""
    sample_size: int = 10
    """Targets, ports, uids and names kept as a sample in each alert."""


@dataclass(frozen=True, slots=True)
class ZeekConfig:
    """Where the daemon follows Zeek's logs; ``log_dir`` None means no Zeek source."""

    log_dir: Path | None = None
    logs: tuple[str, ...] = ZEEK_LOGS
    """The logs followed in ``log_dir``. Without ``conn`` the daemon takes the Zeek package's own detections
    (t1046.log, ``T1046::*`` notices, mDNS questions in dns.log) and judges no conn.log record itself
    (docs/deployment.md, "Sizing")."""


@dataclass(frozen=True, slots=True)
class HoneyportsConfig:
    """Honeyport listeners: addresses, ports, service profiles and the limits that keep a node alive."""

    listen: tuple[str, ...] = ()
    tcp: tuple[int, ...] = ()
    udp: tuple[int, ...] = ()
    profiles: Mapping[int, str] = field(default_factory=dict)
    """Port to service profile name; unlisted ports take the profile named after the port's usual service."""
    max_connections: int = 2000
    max_connections_per_source: int = 64
    idle_timeout: float = 10.0
    read_limit: int = 4096


@dataclass(frozen=True, slots=True)
class MdnsDecoy:
    """A bait service advertised over mDNS; its port should be a honeyport."""

    instance: str
    service_type: str
    port: int


@dataclass(frozen=True, slots=True)
class MdnsConfig:
    """The mDNS watcher: interfaces to listen on (empty: off) and decoys to advertise."""

    interfaces: tuple[str, ...] = ()
    decoys: tuple[MdnsDecoy, ...] = ()


@dataclass(frozen=True, slots=True)
class OutputConfig:
    """One alert sink: ``type`` plus its own settings (``path``, ``url``, ``format`` …)."""

    type: str
    format: str = "ecs"
    settings: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class NodesConfig:
    """The central daemon's TLS listener for remote honeyport nodes (``nodes:``; docs/deployment.md)."""

    listen: tuple[str, int]
    cert_file: Path
    key_file: Path
    token_env: str | None = None
    """Environment variable holding the shared token (or ``token_file``)."""
    token_file: Path | None = None
    node_tokens_file: Path | None = None
    """File of ``NAME TOKEN`` lines: each node named there must prove its name with its own token (read
    again whenever it changes, so a node is added or revoked without a restart)."""
    max_nodes: int = 64
    """Node connections served at once; more are refused and counted."""
    max_message_bytes: int = 16384
    """Longest protocol line; a longer one closes the connection."""
    rate: float = 1000.0
    """Observations per second one connection may submit; a faster node is slowed down, not dropped."""
    dedupe_nodes: int = 1024
    """Node runs (name and epoch) whose last sequence number is remembered against re-sent batches."""


@dataclass(frozen=True, slots=True)
class NodeConfig:
    """Forwarding of this node's observations to a central daemon (``node:``; docs/deployment.md)."""

    central: tuple[str, int]
    ca_file: Path | None = None
    """CA of the central daemon's certificate; None: the system's CAs."""
    server_name: str | None = None
    """Name checked in the central daemon's certificate; None: the host of ``central``."""
    token_env: str | None = None
    token_file: Path | None = None
    spool_max_bytes: int = 64 << 20
    spool_full: str = "drop_oldest"


@dataclass(frozen=True, slots=True)
class SensorConfig:
    """The whole configuration."""

    name: str = "t1046-sensor"
    state_dir: Path = field(default_factory=lambda: Path("~/.local/state/t1046-sensor").expanduser())
    metrics_listen: tuple[str, int] | None = None
    """Where the Prometheus endpoint listens (``sensor.metrics_listen: 127.0.0.1:9646``); None: off."""
    zeek: ZeekConfig = ZeekConfig()
    detection: DetectionConfig = DetectionConfig()
    honeyports: HoneyportsConfig = HoneyportsConfig()
    mdns: MdnsConfig = MdnsConfig()
    outputs: tuple[OutputConfig, ...] = (OutputConfig(type="stdout"),)
    nodes: NodesConfig | None = None
    """Set on a central daemon that accepts remote honeyport nodes."""
    node: NodeConfig | None = None
    """Set on a honeyport node that forwards its observations to a central daemon."""


OUTPUT_TYPES = ("stdout", "file", "syslog", "http")
FORMATS = ("ecs", "ocsf")
SPOOL_POLICIES = ("drop_oldest", "drop_newest")
HTTP_KINDS = ("hec", "bulk", "webhook")
SYSLOG_PROTOCOLS = ("udp", "tcp", "tls", "relp")
SYSLOG_FACILITIES = {
    "kern": 0, "user": 1, "daemon": 3, "auth": 4, "syslog": 5, "authpriv": 10,
    "local0": 16, "local1": 17, "local2": 18, "local3": 19, "local4": 20, "local5": 21, "local6": 22, "local7": 23,
}
_COMMON_KEYS = ("name", "batch_size", "spool_max_bytes", "spool_full", "retry_max_seconds")
KNOWN_SETTINGS: dict[str, tuple[str, ...]] = {
    "stdout": _COMMON_KEYS,
    "file": (*_COMMON_KEYS, "path", "max_bytes", "keep"),
    "syslog": (*_COMMON_KEYS, "host", "port", "protocol", "facility", "app_name", "hostname", "ca_file",
               "cert_file", "key_file", "server_name", "insecure"),
    "http": (*_COMMON_KEYS, "url", "kind", "token_env", "token_file", "username", "password_env",
             "password_file", "index", "sourcetype", "ca_file", "insecure", "timeout", "headers"),
}
"""The ``outputs[]`` keys each sink type understands (besides ``type`` and ``format``)."""


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


def _allowlist_entry(reader: _Reader, item: Any, path: str) -> AllowlistEntry | None:
    if not isinstance(item, dict):
        reader.problem(path, "must be a mapping like {cidr: 10.9.9.9/32, reason: vulnerability scanner}")
        return None
    for extra in sorted(set(item) - {"cidr", "reason", "ports", "schedule"}):
        reader.problem(f"{path}.{extra}", "unknown key (known: cidr, reason, ports, schedule)")
    if "cidr" not in item:
        reader.problem(f"{path}.cidr", "is required")
        return None
    if not item.get("reason"):
        reader.problem(f"{path}.reason", "is required: say why this scanner is authorized")
    network = reader.value(item, "cidr", path, _network, None)
    reason = reader.value(item, "reason", path, _text, "")
    ports = frozenset(reader.value(item, "ports", path, _ports, _NO_PORTS))
    schedule = reader.value(item, "schedule", path, _schedule, None)
    if network is None:
        return None
    return AllowlistEntry(network=network, reason=reason, ports=ports, schedule=schedule)


def _decoy(reader: _Reader, item: Any, path: str) -> MdnsDecoy | None:
    if not isinstance(item, dict):
        reader.problem(path, "must be a mapping like {instance: backup-nas, type: _smb._tcp, port: 4445}")
        return None
    missing = [key for key in ("instance", "type", "port") if key not in item]
    for key in missing:
        reader.problem(f"{path}.{key}", "is required")
    for extra in sorted(set(item) - {"instance", "type", "port"}):
        reader.problem(f"{path}.{extra}", "unknown key (known: instance, type, port)")
    if missing:
        return None
    service_type = reader.value(item, "type", path, _text, "")
    if not re.fullmatch(r"_[a-z0-9-]+\._(tcp|udp)", service_type):
        reader.problem(f"{path}.type", f"{service_type!r} is not a service type like _ssh._tcp")
    port = reader.value(item, "port", path, _port, 0)
    if not port:
        return None
    return MdnsDecoy(instance=reader.value(item, "instance", path, _text, ""), service_type=service_type, port=port)


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


_OUTPUT_CHECKS: dict[str, Callable[[Any], Any]] = {
    "name": _text, "batch_size": _at_least(1), "spool_max_bytes": _at_least(4096),
    "spool_full": _choice(SPOOL_POLICIES), "retry_max_seconds": _at_least(1),
    "path": _text, "max_bytes": _at_least(0), "keep": _at_least(1),
    "host": _text, "port": _port,
    "protocol": _choice(SYSLOG_PROTOCOLS), "facility": _choice(tuple(SYSLOG_FACILITIES)), "app_name": _text,
    "hostname": _text, "ca_file": _text, "cert_file": _text, "key_file": _text, "server_name": _text,
    "insecure": _boolean, "url": _url, "kind": _choice(HTTP_KINDS), "token_env": _text, "token_file": _text,
    "username": _text, "password_env": _text, "password_file": _text, "index": _text, "sourcetype": _text,
    "timeout": _positive_number, "headers": _headers,
}
_OUTPUT_REQUIRED = {"file": ("path",), "syslog": ("host",), "http": ("url",)}


def _output(reader: _Reader, item: Any, path: str) -> OutputConfig | None:
    if not isinstance(item, dict) or "type" not in item:
        reader.problem(path, "must be a mapping with a type (one of " + ", ".join(OUTPUT_TYPES) + ")")
        return None
    kind = reader.value(item, "type", path, _choice(OUTPUT_TYPES), "")
    if not kind:
        return None
    known = KNOWN_SETTINGS[kind]
    for extra in sorted(set(item) - {"type", "format", *known}):
        reader.problem(f"{path}.{extra}", f"unknown key for a {kind} output (known: {', '.join(known)})")
    for key in _OUTPUT_REQUIRED.get(kind, ()):
        if not item.get(key):
            reader.problem(f"{path}.{key}", f"is required for a {kind} output")
    if "token_env" in item and "token_file" in item:
        reader.problem(f"{path}.token_file", "give token_env or token_file, not both")
    settings = {key: reader.value(item, key, path, _OUTPUT_CHECKS[key], item[key])
                for key in known if key in item}
    fmt = reader.value(item, "format", path, _choice(FORMATS), "ecs")
    return OutputConfig(type=kind, format=fmt, settings=settings)


def _names_unique(reader: _Reader, outputs: list[OutputConfig]) -> None:
    seen: dict[str, int] = {}
    for index, output in enumerate(outputs):
        name = output.settings.get("name")
        if isinstance(name, str):
            if name in seen:
                reader.problem(f"outputs[{index}].name", f"{name!r} is already the name of outputs[{seen[name]}]")
            seen[name] = index


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


def _token_source(reader: _Reader, section: Mapping[str, Any], path: str,
                  required: str = "is required (or token_file): the node token") -> tuple[str | None, Path | None]:
    if "token_env" in section and "token_file" in section:
        reader.problem(f"{path}.token_file", "give token_env or token_file, not both")
    elif "token_env" not in section and "token_file" not in section and required:
        reader.problem(f"{path}.token_env", required)
    return (reader.value(section, "token_env", path, _text, None),
            reader.value(section, "token_file", path, _path, None))


_NODES_KEYS = ("listen", "cert_file", "key_file", "token_env", "token_file", "node_tokens_file", "max_nodes",
               "max_message_bytes", "rate", "dedupe_nodes")
_NODE_KEYS = ("central", "ca_file", "server_name", "token_env", "token_file", "spool_max_bytes", "spool_full")


def _nodes(reader: _Reader, data: Mapping[str, Any]) -> NodesConfig | None:
    if data.get("nodes") is None:
        return None
    section = reader.section(data, "nodes", "", _NODES_KEYS)
    for key in ("listen", "cert_file", "key_file"):
        if key not in section:
            reader.problem(f"nodes.{key}", "is required")
    token_env, token_file = _token_source(
        reader, section, "nodes",
        "" if "node_tokens_file" in section else "is required (or token_file, or node_tokens_file): the node tokens")
    base = NodesConfig(listen=("", 0), cert_file=Path(), key_file=Path())
    return NodesConfig(
        listen=reader.value(section, "listen", "nodes", _listen_address, base.listen),
        cert_file=reader.value(section, "cert_file", "nodes", _path, base.cert_file),
        key_file=reader.value(section, "key_file", "nodes", _path, base.key_file),
        token_env=token_env, token_file=token_file,
        node_tokens_file=reader.value(section, "node_tokens_file", "nodes", _path, None),
        max_nodes=reader.value(section, "max_nodes", "nodes", _positive_int, base.max_nodes),
        max_message_bytes=reader.value(section, "max_message_bytes", "nodes", _at_least(1024),
                                       base.max_message_bytes),
        rate=reader.value(section, "rate", "nodes", _positive_number, base.rate),
        dedupe_nodes=reader.value(section, "dedupe_nodes", "nodes", _positive_int, base.dedupe_nodes),
    )


def _node(reader: _Reader, data: Mapping[str, Any]) -> NodeConfig | None:
    if data.get("node") is None:
        return None
    section = reader.section(data, "node", "", _NODE_KEYS)
    if "central" not in section:
        reader.problem("node.central", "is required: HOST:PORT of the central daemon's nodes.listen")
    token_env, token_file = _token_source(reader, section, "node")
    base = NodeConfig(central=("", 0))
    return NodeConfig(
        central=reader.value(section, "central", "node", _host_port, base.central),
        ca_file=reader.value(section, "ca_file", "node", _path, None),
        server_name=reader.value(section, "server_name", "node", _text, None),
        token_env=token_env, token_file=token_file,
        spool_max_bytes=reader.value(section, "spool_max_bytes", "node", _at_least(4096), base.spool_max_bytes),
        spool_full=reader.value(section, "spool_full", "node", _choice(SPOOL_POLICIES), base.spool_full),
    )


_DETECTION_NUMBERS = (
    "window",
    "slow_window",
    "idle_timeout",
    "lateness",
    "final_update_after",
    "update_every",
    "served_memory",
)
_DETECTION_COUNTS = (
    "port_scan_ports",
    "address_scan_targets",
    "half_open_probes",
    "stealth_probes",
    "slow_scan_pairs",
    "slow_port_scan_ports",
    "slow_address_scan_targets",
    "max_served",
    "mdns_distinct_types",
    "max_sources",
    "max_incidents",
    "max_pairs_per_source",
    "sample_size",
)


def _detection(reader: _Reader, data: Mapping[str, Any], decoys: tuple[MdnsDecoy, ...]) -> DetectionConfig:
    known = ("local_nets", "allowlist", "allowlist_mode", "mdns_sensitive_types", *_DETECTION_NUMBERS,
             *_DETECTION_COUNTS)
    section = reader.section(data, "detection", "", known)
    base = DetectionConfig()
    local_nets = reader.value(section, "local_nets", "detection", _networks, base.local_nets)
    numbers = {key: reader.value(section, key, "detection", _positive_number, getattr(base, key))
               for key in _DETECTION_NUMBERS}
    counts = {key: reader.value(section, key, "detection", _positive_int, getattr(base, key))
              for key in _DETECTION_COUNTS}
    sensitive = reader.value(section, "mdns_sensitive_types", "detection", _string_list, base.mdns_sensitive_types)
    return DetectionConfig(
        local_nets=local_nets,
        allowlist=tuple(reader.items(section, "allowlist", "detection",
                                     lambda item, path: _allowlist_entry(reader, item, path))),
        allowlist_mode=reader.value(section, "allowlist_mode", "detection", _choice(("label", "suppress")), "label"),
        mdns_sensitive_types=tuple(t.lower().removesuffix(".").removesuffix(".local") for t in sensitive),
        mdns_decoy_names=tuple(f"{d.instance}.{d.service_type}.local".lower() for d in decoys),
        **numbers,
        **counts,
    )


def _profiles(value: Any) -> dict[int, str]:
    if not isinstance(value, dict):
        raise ValueError("must be a mapping of port to profile name")
    profiles: dict[int, str] = {}
    for port, name in value.items():
        for number in _ports(port):
            profiles[number] = _text(name)
    return profiles


def parse_config(data: Any) -> SensorConfig:
    """Turn a parsed YAML document into a :class:`SensorConfig`; raise ``ConfigError`` listing every problem."""
    reader = _Reader()
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError([f"(top): must be a mapping, not {type(data).__name__}"])
    sections = ("sensor", "zeek", "detection", "honeyports", "mdns", "outputs", "nodes", "node")
    for extra in sorted(set(data) - set(sections)):
        reader.problem(extra, f"unknown section (known: {', '.join(sections)})")
    sensor = reader.section(data, "sensor", "", ("name", "state_dir", "metrics_listen"))
    zeek = reader.section(data, "zeek", "", ("log_dir", "logs"))
    honey = reader.section(data, "honeyports", "", ("listen", "tcp", "udp", "profiles", "max_connections",
                                                    "max_connections_per_source", "idle_timeout", "read_limit"))
    mdns_section = reader.section(data, "mdns", "", ("interfaces", "decoys"))
    decoys = tuple(reader.items(mdns_section, "decoys", "mdns", lambda item, path: _decoy(reader, item, path)))
    detection = _detection(reader, data, decoys)
    honey_base = HoneyportsConfig()
    listen = reader.value(honey, "listen", "honeyports", _string_list, _NO_TEXT)
    for index, address in enumerate(listen):
        try:
            ipaddress.ip_address(address)
        except ValueError:
            reader.problem(f"honeyports.listen[{index}]", f"{address!r} is not an IP address")
    outputs = reader.items(data, "outputs", "", lambda item, path: _output(reader, item, path))
    _names_unique(reader, outputs)
    if "outputs" in data and not outputs and not reader.problems:
        reader.problem("outputs", "is empty: alerts would go nowhere")
    base = SensorConfig()
    log_dir = reader.value(zeek, "log_dir", "zeek", _text, "")
    config = SensorConfig(
        name=reader.value(sensor, "name", "sensor", _text, base.name),
        state_dir=reader.value(sensor, "state_dir", "sensor", _path, base.state_dir),
        metrics_listen=reader.value(sensor, "metrics_listen", "sensor", _listen_address, None),
        zeek=ZeekConfig(log_dir=Path(log_dir).expanduser() if log_dir else None,
                        logs=reader.value(zeek, "logs", "zeek", _zeek_logs, ZEEK_LOGS)),
        detection=detection,
        honeyports=HoneyportsConfig(
            listen=listen,
            tcp=reader.value(honey, "tcp", "honeyports", _listen_ports, _NO_PORTS),
            udp=reader.value(honey, "udp", "honeyports", _listen_ports, _NO_PORTS),
            profiles=reader.value(honey, "profiles", "honeyports", _profiles, {}),
            max_connections=reader.value(honey, "max_connections", "honeyports", _positive_int,
                                         honey_base.max_connections),
            max_connections_per_source=reader.value(honey, "max_connections_per_source", "honeyports",
                                                    _positive_int, honey_base.max_connections_per_source),
            idle_timeout=reader.value(honey, "idle_timeout", "honeyports", _positive_number, honey_base.idle_timeout),
            read_limit=reader.value(honey, "read_limit", "honeyports", _positive_int, honey_base.read_limit),
        ),
        mdns=MdnsConfig(interfaces=reader.value(mdns_section, "interfaces", "mdns", _string_list, _NO_TEXT),
                        decoys=decoys),
        outputs=tuple(outputs) if "outputs" in data else base.outputs,
        nodes=_nodes(reader, data),
        node=_node(reader, data),
    )
    if reader.problems:
        raise ConfigError(reader.problems)
    return config


def load_config(path: Path) -> SensorConfig:
    """Read and parse a YAML configuration file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError([f"{path}: cannot read: {error.strerror}"]) from None
    except UnicodeDecodeError:
        raise ConfigError([f"{path}: not UTF-8 text"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "somewhere"
        raise ConfigError([f"{path}: not valid YAML at {where}: {getattr(error, 'problem', error)}"]) from None
    return parse_config(data)


def default_config_text() -> str:
    """The embedded default configuration, as YAML text."""
    return resources.files("sensor").joinpath("default.yaml").read_text(encoding="utf-8")


def default_config() -> SensorConfig:
    """The embedded default: honeyports on loopback high ports, alerts to stdout and a JSONL file."""
    return parse_config(yaml.safe_load(default_config_text()))
