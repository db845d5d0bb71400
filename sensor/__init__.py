"""t1046-sensor: detect internal network service discovery (MITRE ATT&CK T1046).

Data flows one way: sources → typed observations → pure correlator → alerts → sinks.
"""

from sensor.alerts.alert import Alert
from sensor.alerts.catalogue import RULES, Action, Rule
from sensor.config import SensorConfig, default_config, load_config, parse_config
from sensor.detect.correlator import Correlator
from sensor.errors import ConfigError, LogReadError, SensorError
from sensor.observations import (
    ConnAttempt,
    HoneyportHit,
    MdnsQuery,
    Observation,
    Outcome,
    Transport,
    ZeekDetection,
    ZeekNotice,
)

__all__ = [
    "RULES",
    "Action",
    "Alert",
    "ConfigError",
    "ConnAttempt",
    "Correlator",
    "HoneyportHit",
    "LogReadError",
    "MdnsQuery",
    "Observation",
    "Outcome",
    "Rule",
    "SensorConfig",
    "SensorError",
    "Transport",
    "ZeekDetection",
    "ZeekNotice",
    "default_config",
    "load_config",
    "parse_config",
]
