"""One flat exception hierarchy: every error the sensor raises on purpose is a ``SensorError``."""

from __future__ import annotations


class SensorError(Exception):
    """Base of the errors the sensor reports to its user."""


class ConfigError(SensorError):
    """The configuration is invalid; ``problems`` lists every error with its path in the file."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid configuration:\n  " + "\n  ".join(problems))


class LogReadError(SensorError):
    """A Zeek log cannot be read at all (missing, unreadable, not a Zeek log)."""
