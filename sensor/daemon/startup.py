"""What a daemon says in its first minute: what it watches and where its alerts go, one INFO line each.

``run``, ``honeyports`` and ``mdns`` log these lines once at start, after their sources are up, so the
operator reads the facts (the Zeek log directory and its logs, each sink's destination, the state
directory) rather than the configuration's wishes; each honeyport (``honeyport listening on
127.0.0.1:2222/tcp``, the port the system chose for 0), the mDNS watcher's interfaces and the decoys are
logged where they start. No secret is ever part of a line: sinks name the variable
or file a token comes from, URLs lose their user info and query. This module only formats and logs; it
starts, binds and reads nothing but the names in the Zeek log directory.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from sensor.config import OutputConfig, SensorConfig
from sensor.outputs.build import DEFAULT_PORTS
from sensor.outputs.http import safe_url
from sensor.zeek.follow import is_file

if TYPE_CHECKING:
    from sensor.daemon.sources import LocalSources

log = logging.getLogger(__name__)


def output_destination(config: SensorConfig, output: OutputConfig) -> str:
    """Where one output's alerts go, as an operator would write it, without secrets."""
    settings = output.settings
    if output.type == "file":
        path = Path(str(settings.get("path", ""))).expanduser()
        return str(path if path.is_absolute() else config.state_dir / path)
    if output.type == "syslog":
        protocol = str(settings.get("protocol", "tcp"))
        port = settings.get("port", DEFAULT_PORTS.get(protocol, 514))
        host = str(settings.get("host", ""))
        return f"{protocol}://[{host}]:{port}" if ":" in host else f"{protocol}://{host}:{port}"
    if output.type == "http":
        where = safe_url(str(settings.get("url", "")))
        credential = next((f", {key} {settings[key]}" for key in ("token_env", "token_file", "password_env",
                                                                  "password_file") if settings.get(key)), "")
        return f"{settings.get('kind', 'webhook')} {where}{credential}"
    return "stdout"


def output_lines(config: SensorConfig) -> list[str]:
    """One line per sink: ``alerts to file /var/lib/t1046-sensor/alerts.jsonl (ecs)``."""
    return [f"alerts to {output.type} {output_destination(config, output)} ({output.format})"
            if output.type != "stdout" else f"alerts to stdout ({output.format})" for output in config.outputs]


def zeek_line(log_dir: Path, kinds: tuple[str, ...]) -> str:
    """``zeek: following DIR: conn.log (and notice.log, … when they appear)`` for the logs of ``kinds``."""
    present = [kind for kind in kinds if is_file(log_dir / f"{kind}.log")]
    absent = [f"{kind}.log" for kind in kinds if kind not in present]
    if not present:
        return f"zeek: following {log_dir}: no {', '.join(absent)} there yet"
    line = f"zeek: following {log_dir}: {', '.join(f'{kind}.log' for kind in present)}"
    return f"{line} (and {', '.join(absent)} when they appear)" if absent else line


def log_start(config: SensorConfig, sources: Sequence[str], watching: bool, command: str = "run",
              alerts: bool = True) -> None:
    """Log the lines describing a daemon's sources, where its alerts go (unless ``alerts`` is false: a node
    that forwards its observations makes none) and its state directory, a warning when it watches nothing
    at all, then ``COMMAND: NAME running`` (``run: sensor-1 running``), the sign that it has started."""
    destinations = output_lines(config) if alerts else []
    for line in [*sources, *destinations, f"state: {config.state_dir} (checkpoint, spools)"]:
        log.info("%s", line)
    if not watching:
        log.warning("watching nothing: no honeyport is listening, no zeek.log_dir is set, no mDNS interface is "
                    "watched and no honeyport node can connect; no alert can come")
    log.info("%s: %s running", command, config.name)


def describe(config: SensorConfig, sources: LocalSources) -> None:
    """The first minute: what this run watches and where its alerts go (logged once, at start; the mDNS
    watcher and decoys have logged their interfaces and advertisements)."""
    honeyports, mdns = sources.honeyports, sources.mdns
    lines = [zeek_line(config.zeek.log_dir, config.zeek.logs)] if config.zeek.log_dir is not None else []
    if config.nodes is not None:
        lines.append("nodes: honeyport nodes accepted on {}:{} (TLS)".format(*config.nodes.listen))
    if config.node is not None:
        lines.append("node: honeyport hits and mDNS questions forwarded to {}:{}".format(*config.node.central))
    if config.metrics_listen is not None:
        lines.append("metrics: http://{}:{}/metrics".format(*config.metrics_listen))
    watching = (config.zeek.log_dir is not None or config.nodes is not None or bool(config.flows)
                or (honeyports is not None and bool(honeyports.ports))
                or (mdns is not None and bool(mdns.watcher.watched)))
    log_start(config, lines, watching)
