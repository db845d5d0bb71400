"""Configuration: YAML parsed once, at start-up, into typed frozen objects.

Every problem is collected with its path in the file (``honeyports.tcp: 70000 is not a port``) and reported
at once by :class:`~sensor.errors.ConfigError`. Nothing here reads the file system at import time.

One module per concern: :mod:`~sensor.config.model` (the frozen objects and the names they use),
:mod:`~sensor.config.values` (converters of single values and the reader that collects problems),
:mod:`~sensor.config.sections` (the sections made of several values: allowlist, decoys, outputs, node
link, detection), :mod:`~sensor.config.load` (file and YAML to :class:`SensorConfig`). The names below
are the public surface.
"""

from sensor.config.load import default_config, default_config_text, load_config, parse_config
from sensor.config.model import (
    DEFAULT_LOCAL_NETS,
    FORMATS,
    HTTP_KINDS,
    KNOWN_SETTINGS,
    OUTPUT_TYPES,
    SENSITIVE_MDNS_TYPES,
    SEVERITIES,
    SPOOL_POLICIES,
    SYSLOG_FACILITIES,
    SYSLOG_PROTOCOLS,
    AllowlistEntry,
    DetectionConfig,
    FlowConfig,
    HoneyportsConfig,
    IPNetwork,
    MdnsConfig,
    MdnsDecoy,
    NodeConfig,
    NodesConfig,
    OutputConfig,
    S3Prefix,
    SensorConfig,
    ZeekConfig,
)
from sensor.config.values import parse_ports, port_ranges

__all__ = [
    "DEFAULT_LOCAL_NETS",
    "FORMATS",
    "HTTP_KINDS",
    "KNOWN_SETTINGS",
    "OUTPUT_TYPES",
    "SENSITIVE_MDNS_TYPES",
    "SEVERITIES",
    "SPOOL_POLICIES",
    "SYSLOG_FACILITIES",
    "SYSLOG_PROTOCOLS",
    "AllowlistEntry",
    "DetectionConfig",
    "FlowConfig",
    "HoneyportsConfig",
    "IPNetwork",
    "MdnsConfig",
    "MdnsDecoy",
    "NodeConfig",
    "NodesConfig",
    "OutputConfig",
    "S3Prefix",
    "SensorConfig",
    "ZeekConfig",
    "default_config",
    "default_config_text",
    "load_config",
    "parse_config",
    "parse_ports",
    "port_ranges",
]
