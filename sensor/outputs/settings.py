"""Reading one output's settings: typed values with errors that name the output and key, secrets from an
environment variable or a file (never logged), TLS contexts, and the check that a directory is writable.

It owns the parsing of values only; which keys each sink type has is :data:`sensor.config.KNOWN_SETTINGS`,
and putting a sink together is :mod:`sensor.outputs.build`.
"""

from __future__ import annotations

import logging
import os
import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sensor.errors import SensorError

log = logging.getLogger(__name__)


class SinkConfigError(SensorError):
    """An output's settings are invalid; the message names the output and the key."""


def read_secret(settings: Mapping[str, Any], name: str, where: str) -> str | None:
    """A secret from ``NAME_env`` (an environment variable) or ``NAME_file`` (a file); never logged."""
    env, file = settings.get(f"{name}_env"), settings.get(f"{name}_file")
    if env is not None and file is not None:
        raise SinkConfigError(f"{where}: set {name}_env or {name}_file, not both")
    if env is not None:
        value = os.environ.get(str(env))
        if not value:
            raise SinkConfigError(f"{where}.{name}_env: environment variable {env} is not set")
        return value.strip()
    if file is not None:
        try:
            return Path(str(file)).expanduser().read_text(encoding="utf-8").strip()
        except OSError as error:
            raise SinkConfigError(f"{where}.{name}_file: cannot read {file}: {error.strerror}") from None
    return None


def whole(settings: Mapping[str, Any], key: str, where: str, default: int, low: int = 1) -> int:
    """A whole-number setting of at least ``low``."""
    value = settings.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise SinkConfigError(f"{where}.{key}: {value!r} is not a whole number >= {low}")
    return value


def text(settings: Mapping[str, Any], key: str, where: str, default: str = "", options: tuple[str, ...] = ()) -> str:
    """A text setting, one of ``options`` when they are given."""
    value = settings.get(key, default)
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise SinkConfigError(f"{where}.{key}: {value!r} is not a string")
    chosen = str(value)
    if options and chosen not in options:
        raise SinkConfigError(f"{where}.{key}: {chosen!r} is not one of {', '.join(options)}")
    return chosen


def tls_context(settings: Mapping[str, Any], where: str) -> ssl.SSLContext:
    """A client TLS context from ``ca_file``, ``cert_file``/``key_file`` and ``insecure``."""
    try:
        context = ssl.create_default_context(cafile=settings.get("ca_file"))
        if settings.get("cert_file"):
            context.load_cert_chain(str(settings["cert_file"]), settings.get("key_file"))
    except (OSError, ssl.SSLError) as error:
        raise SinkConfigError(f"{where}: TLS files: {error}") from None
    if settings.get("insecure") is True:
        log.warning("%s: insecure: true, the receiver's certificate is NOT verified", where)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def writable_directory(directory: Path, where: str) -> None:
    """Raise :class:`SinkConfigError` (naming ``where``) unless ``directory`` is, or can be made, a directory
    this user writes."""
    existing = directory
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise SinkConfigError(f"{where}: {existing} is not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise SinkConfigError(f"{where}: {existing} is not writable by this user")

