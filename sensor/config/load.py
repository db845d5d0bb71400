"""Reading a configuration: YAML text to :class:`~sensor.config.model.SensorConfig`, every problem at once.

:func:`load_config` reads the file (a problem names its path), parses the YAML, rejects duplicate keys
(which YAML would silently resolve to the last one) with their lines, and hands the tree to
:func:`parse_config`, which checks every section and raises one :class:`~sensor.errors.ConfigError`
listing every problem with its path in the file.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from sensor.config.model import HoneyportsConfig, MdnsConfig, SensorConfig, ZeekConfig
from sensor.config.sections import _decoy, _detection, _flow, _names_unique, _node, _nodes, _output
from sensor.config.values import (
    _NO_PORTS,
    _NO_TEXT,
    _listen_address,
    _listen_ports,
    _path,
    _positive_int,
    _positive_number,
    _profiles,
    _Reader,
    _string_list,
    _text,
    _zeek_logs,
)
from sensor.errors import ConfigError, why_unreadable
from sensor.zeek import KINDS as ZEEK_LOGS


def parse_config(data: Any) -> SensorConfig:
    """Turn a parsed YAML document into a :class:`SensorConfig`; raise ``ConfigError`` listing every problem."""
    reader = _Reader()
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError([f"(top): must be a mapping, not {type(data).__name__}"])
    sections = ("sensor", "zeek", "detection", "honeyports", "mdns", "outputs", "nodes", "node", "flows")
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
        flows=tuple(reader.items(data, "flows", "", lambda item, path: _flow(reader, item, path))),
    )
    if reader.problems:
        raise ConfigError(reader.problems)
    return config


def load_config(path: Path) -> SensorConfig:
    """Read and parse a YAML configuration file; every problem names ``path``."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError([why_unreadable(path, error)]) from None
    except UnicodeDecodeError:
        raise ConfigError([f"{path}: not UTF-8 text"]) from None
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        duplicates = list(_duplicate_keys(node, "")) if node is not None else []
        if duplicates:
            raise ConfigError([f"{path}: {problem}" for problem in duplicates])
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "somewhere"
        raise ConfigError([f"{path}: not valid YAML at {where}: {getattr(error, 'problem', error)}"]) from None
    finally:
        loader.dispose()
    return parse_config(data)


def _duplicate_keys(node: yaml.Node, path: str) -> Iterator[str]:
    """Keys given twice in one mapping (YAML keeps the last silently), with their lines, anywhere in the tree."""
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key, value in node.value:
            name = str(key.value) if isinstance(key, yaml.ScalarNode) else None
            where = f"{path}.{name}" if path else str(name)
            if name is not None and name != "<<":
                line = key.start_mark.line + 1
                if name in seen:
                    yield (f"line {line}: {where}: duplicate key (first at line {seen[name]}); YAML would keep "
                           "only the last one")
                else:
                    seen[name] = line
            yield from _duplicate_keys(value, where)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            yield from _duplicate_keys(item, f"{path}[{index}]")


def default_config_text() -> str:
    """The embedded default configuration, as YAML text."""
    return resources.files("sensor").joinpath("default.yaml").read_text(encoding="utf-8")


def default_config() -> SensorConfig:
    """The embedded default: honeyports on loopback high ports, alerts to stdout and a JSONL file."""
    return parse_config(yaml.safe_load(default_config_text()))
