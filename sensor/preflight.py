"""``check-config``'s second half: what ``run`` would stop on at start, found without starting anything.

The configuration file's own content is checked by :func:`sensor.config.load_config`. This looks at what
it points to: the state directory, each output's secrets, TLS files and file directory, the node link's
certificate, key, CA and tokens. It binds no port and creates no file. Secrets named by ``token_env`` and
the like are looked up in this process's environment, so check with the service's environment (``check-config
--env-file /etc/t1046-sensor/secrets.env``). What ``run`` tolerates -- a Zeek log directory that does not exist
yet, an mDNS interface that is missing -- is reported as a note.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from sensor.config import SensorConfig
from sensor.errors import SensorError
from sensor.nodes.forwarder import node_credentials
from sensor.nodes.listener import centre_tls
from sensor.nodes.tokens import centre_tokens
from sensor.outputs.build import check_output
from sensor.outputs.settings import writable_directory


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem found: ``fatal`` ones stop ``run``, the others are notes."""

    text: str
    fatal: bool = True

    def line(self) -> str:
        return self.text if self.fatal else f"note: {self.text}"


def preflight(config: SensorConfig) -> list[Finding]:
    """Every problem ``run`` would meet with the things ``config`` points to."""
    return list(_findings(config))


def _findings(config: SensorConfig) -> Iterator[Finding]:
    yield from _fails(partial(writable_directory, config.state_dir, "sensor.state_dir"))
    for index, output in enumerate(config.outputs):
        yield from _fails(partial(check_output, config, output, index))
    nodes = config.nodes
    if nodes is not None:
        yield from _fails(partial(centre_tls, nodes))
        yield from _fails(partial(centre_tokens, nodes))
    if config.node is not None:
        yield from _fails(partial(node_credentials, config))
    log_dir = config.zeek.log_dir
    if log_dir is not None and not log_dir.is_dir():
        yield Finding(f"zeek.log_dir: {log_dir} is not a directory (yet): run follows it once it appears", False)
    for name in config.mdns.interfaces:
        try:
            socket.if_nametoindex(name)
        except OSError:
            yield Finding(f"mdns.interfaces: there is no interface {name} here: run watches the others", False)


def _fails(check: Callable[[], object]) -> Iterator[Finding]:
    try:
        check()
    except SensorError as error:
        yield Finding(str(error))


def read_env_file(path: Path) -> dict[str, str]:
    """``NAME=VALUE`` lines as systemd's ``EnvironmentFile=`` reads them (``#`` comments, optional quotes)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise SensorError(f"--env-file {path}: cannot read: {getattr(error, 'strerror', None) or error}") from None
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        name, equals, value = line.partition("=")
        name = name.strip()
        if not equals or not name.replace("_", "a").isalnum() or name[0].isdigit():
            raise SensorError(f"--env-file {path}:{number}: expected NAME=VALUE")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[name] = value
    return values
