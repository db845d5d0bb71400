"""Building sinks from the configuration: one :class:`~sensor.outputs.sink.SpooledSink` per entry of
``outputs:``, with its spool under ``state_dir/spool/NAME``, its dead-letter file under
``state_dir/dead-letter/NAME.jsonl`` and the transport its ``type`` names; and the same checks without
building anything, for ``check-config``.

It owns the mapping from settings to transports; the transports themselves live in one module each.
"""

from __future__ import annotations

import hashlib
import socket
import urllib.parse
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, BinaryIO

from sensor.alerts.render import RENDERERS
from sensor.config import (
    HTTP_KINDS,
    KNOWN_SETTINGS,
    SPOOL_POLICIES,
    SYSLOG_FACILITIES,
    SYSLOG_PROTOCOLS,
    OutputConfig,
    SensorConfig,
)
from sensor.errors import SensorError
from sensor.files import group_id
from sensor.metrics import Metrics
from sensor.outputs.deadletter import DeadLetters
from sensor.outputs.file import FileTransport
from sensor.outputs.http import HttpTransport, basic_auth
from sensor.outputs.relp import RelpTransport
from sensor.outputs.settings import SinkConfigError, read_secret, text, tls_context, whole, writable_directory
from sensor.outputs.sink import DEFAULT_BATCH, Backoff, SpooledSink
from sensor.outputs.spool import DEFAULT_SPOOL_BYTES, Spool
from sensor.outputs.stdout import StdoutTransport
from sensor.outputs.syslog import SMALLEST_MESSAGE, UDP_MESSAGE, SyslogTransport
from sensor.outputs.transport import Transport

DEFAULT_PORTS = {"udp": 514, "tcp": 514, "tls": 6514, "relp": 2514}
"""The syslog ``port`` when none is set, by ``protocol``."""


def sink_name(output: OutputConfig) -> str:
    """A stable name for an output: its ``name`` setting, or its type and a digest of where it goes."""
    if output.settings.get("name"):
        return str(output.settings["name"])
    where = "|".join(str(output.settings.get(key, "")) for key in ("path", "host", "port", "url", "kind"))
    return f"{output.type}-{hashlib.sha256(where.encode()).hexdigest()[:8]}"


def build_sink(config: SensorConfig, output: OutputConfig, index: int, metrics: Metrics,
               stdout: BinaryIO | None = None, state_dir: Path | None = None) -> SpooledSink:
    """One sink from its output settings; raise :class:`SinkConfigError` naming the bad key.

    Its spool and dead-letter file go under ``state_dir`` (default: the configured one; ``test-alert`` gives a
    directory of its own so it never touches the daemon's spools).
    """
    where = f"outputs[{index}]"
    make_transport = _transport_maker(config, output, where, stdout)
    max_bytes, policy, retry_max, batch_size = _spool_settings(output.settings, where)
    name = sink_name(output)
    root = state_dir if state_dir is not None else config.state_dir
    spool = Spool(root / "spool" / name, max_bytes, policy, name, metrics)
    dead_letters = DeadLetters(root / "dead-letter" / f"{name}.jsonl", name, metrics)
    return SpooledSink(name, output.format, spool, make_transport(spool), metrics, batch_size,
                       Backoff(maximum=float(retry_max)), dead_letters)


def _spool_settings(settings: Mapping[str, Any], where: str) -> tuple[int, str, int, int]:
    """(spool_max_bytes, spool_full, retry_max_seconds, batch_size) of an output."""
    return (whole(settings, "spool_max_bytes", where, DEFAULT_SPOOL_BYTES, 4096),
            text(settings, "spool_full", where, "drop_oldest", SPOOL_POLICIES),
            whole(settings, "retry_max_seconds", where, 60), whole(settings, "batch_size", where, DEFAULT_BATCH))


def check_outputs(config: SensorConfig, outputs: tuple[OutputConfig, ...]) -> None:
    """Everything :func:`build_sinks` checks, without making spools or touching destinations; raise
    :class:`SinkConfigError` for the first invalid output."""
    _check_names(outputs)
    for index, output in enumerate(outputs):
        check_output(config, output, index)


def _check_names(outputs: tuple[OutputConfig, ...]) -> None:
    names = [sink_name(output) for output in outputs]
    for name in names:
        if names.count(name) > 1:
            raise SinkConfigError(f"outputs: two outputs are named {name!r}; give them distinct names")


def check_output(config: SensorConfig, output: OutputConfig, index: int) -> None:
    """Everything :func:`build_sink` checks -- settings, secrets, TLS files, the file sink's directory --
    without making a spool or touching the destination; raise :class:`SinkConfigError` naming the key."""
    _transport_maker(config, output, f"outputs[{index}]", None)


def _transport_maker(config: SensorConfig, output: OutputConfig, where: str,
                     stdout: BinaryIO | None) -> Callable[[Spool], Transport]:
    """Check an output's settings (reading its secrets and TLS files); return what makes its transport."""
    settings = output.settings
    for extra in sorted(set(settings) - set(KNOWN_SETTINGS.get(output.type, ()))):
        raise SinkConfigError(f"{where}.{extra}: unknown key for a {output.type} output "
                              f"(known: {', '.join(KNOWN_SETTINGS.get(output.type, ()))})")
    if output.format not in RENDERERS:
        raise SinkConfigError(f"{where}.format: {output.format!r} is not one of {', '.join(RENDERERS)}")
    _spool_settings(settings, where)
    if output.type == "stdout":
        return lambda spool: StdoutTransport(stdout)
    if output.type == "file":
        path = Path(text(settings, "path", where)).expanduser()
        path = path if path.is_absolute() else config.state_dir / path
        writable_directory(path.parent, f"{where}.path")
        max_bytes, keep = whole(settings, "max_bytes", where, 0, 0), whole(settings, "keep", where, 5)
        group = None
        if settings.get("group") is not None:
            try:
                group = group_id(text(settings, "group", where))
            except SensorError as error:
                raise SinkConfigError(f"{where}.group: {error}") from None
        return lambda spool: FileTransport(path, spool, max_bytes, keep, group)
    if output.type == "syslog":
        protocol = text(settings, "protocol", where, "tcp", SYSLOG_PROTOCOLS)
        facility = text(settings, "facility", where, "local0", tuple(SYSLOG_FACILITIES))
        host, port = text(settings, "host", where), whole(settings, "port", where, DEFAULT_PORTS[protocol])
        hostname = text(settings, "hostname", where, socket.gethostname())
        app_name = text(settings, "app_name", where, "t1046-sensor")
        server_name = settings.get("server_name")
        if protocol == "relp":
            relp = RelpTransport(host, port, SYSLOG_FACILITIES[facility], hostname, app_name,
                                 tls_context(settings, where) if settings.get("ca_file") else None, server_name)
            return lambda spool: relp
        if settings.get("max_message") is not None and protocol != "udp":
            raise SinkConfigError(f"{where}.max_message: only for protocol udp (a stream carries any length)")
        max_message = whole(settings, "max_message", where, UDP_MESSAGE, SMALLEST_MESSAGE)
        if max_message > UDP_MESSAGE:
            raise SinkConfigError(f"{where}.max_message: {max_message} is more than a UDP datagram carries "
                                  f"({UDP_MESSAGE})")
        syslog = SyslogTransport(host, port, protocol, SYSLOG_FACILITIES[facility], hostname, app_name,
                                 tls_context(settings, where) if protocol == "tls" else None, server_name,
                                 max_message)
        return lambda spool: syslog
    if output.type == "http":
        http = _http_transport(config, settings, where)
        return lambda spool: http
    raise SinkConfigError(f"{where}.type: {output.type!r} is not a sink type")


def _http_transport(config: SensorConfig, settings: Mapping[str, Any], where: str) -> HttpTransport:
    url = text(settings, "url", where)
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SinkConfigError(f"{where}.url: {url!r} is not an http(s) URL")
    kind = text(settings, "kind", where, "webhook", HTTP_KINDS)
    if kind == "hec" and parts.path in ("", "/"):
        url = urllib.parse.urlunsplit(parts._replace(path="/services/collector/event"))
    if kind == "bulk" and not parts.path.rstrip("/").endswith("_bulk"):
        url = urllib.parse.urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/_bulk"))
    token = read_secret(settings, "token", where)
    password = read_secret(settings, "password", where)
    auth: str | None = None
    if settings.get("username") is not None:
        auth = basic_auth(text(settings, "username", where), password or "")
    elif token is not None:
        auth = {"hec": "Splunk ", "bulk": "ApiKey ", "webhook": "Bearer "}[kind] + token
    headers = settings.get("headers", {})
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise SinkConfigError(f"{where}.headers: must be a mapping of header name to text")
    if any(key.lower() == "authorization" for key in headers):
        raise SinkConfigError(f"{where}.headers: put credentials in token_env/token_file, not in headers")
    timeout = settings.get("timeout", 10)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise SinkConfigError(f"{where}.timeout: {timeout!r} is not a positive number of seconds")
    tls = tls_context(settings, where) if parts.scheme == "https" else None
    return HttpTransport(url, kind, auth, settings.get("index"), text(settings, "sourcetype", where, "t1046:alert"),
                         headers, tls, float(timeout), config.name)


def build_sinks(config: SensorConfig, outputs: tuple[OutputConfig, ...] | None = None,
                metrics: Metrics | None = None, stdout: BinaryIO | None = None,
                state_dir: Path | None = None) -> list[SpooledSink]:
    """Sinks for the configured outputs; relative file paths are under the configured ``state_dir``, spools
    and dead letters under ``state_dir`` (see :func:`build_sink`).

    Raises :class:`SinkConfigError` for the first invalid output (nothing half-built is left running).
    """
    metrics = metrics if metrics is not None else Metrics()
    chosen = outputs if outputs is not None else config.outputs
    _check_names(chosen)
    sinks: list[SpooledSink] = []
    try:
        for index, output in enumerate(chosen):
            sinks.append(build_sink(config, output, index, metrics, stdout, state_dir))
    except SinkConfigError:
        for sink in sinks:
            sink.close()
        raise
    return sinks
