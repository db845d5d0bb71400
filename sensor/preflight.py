"""``check-config``'s second half: what ``run`` would stop on at start, found without starting anything.

The configuration file's own content is checked by :func:`sensor.config.load_config`. This looks at what
it points to: the state directory, each output's secrets, TLS files and file directory, the node link's
certificate, key, CA and tokens. It binds no port and creates no file. Secrets named by ``token_env`` and
the like are looked up in this process's environment, so check with the service's environment (``check-config
--env-file /etc/t1046-sensor/secrets.env``), and as the service's user (``--user t1046``: see :func:`become`).
A Zeek log directory or live log this user cannot read (or a missing directory) is an error naming the
path and the likely fix, although ``run`` would start and retry it; a missing mDNS interface is a note.
"""

from __future__ import annotations

import os
import pwd
import socket
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from sensor.config import SensorConfig
from sensor.errors import SensorError, why_unreadable
from sensor.nodes.forwarder import node_credentials
from sensor.nodes.listener import centre_tls
from sensor.nodes.tokens import centre_tokens
from sensor.outputs.build import check_output
from sensor.outputs.settings import writable_directory

TLS_FILES = ("ca_file", "cert_file", "key_file")


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
        unreadable = list(_unreadable_files(f"outputs[{index}]", output.settings))
        yield from unreadable or _fails(partial(check_output, config, output, index))
    nodes = config.nodes
    if nodes is not None:
        yield from _fails(partial(centre_tls, nodes))
        yield from _fails(partial(centre_tokens, nodes))
    if config.node is not None:
        unreadable = list(_unreadable_files("node", {"ca_file": config.node.ca_file}))
        yield from unreadable or _fails(partial(node_credentials, config))
    if config.zeek.log_dir is not None:
        yield from _zeek_logs(config.zeek.log_dir, config.zeek.logs)
    for name in config.mdns.interfaces:
        try:
            socket.if_nametoindex(name)
        except OSError:
            yield Finding(f"mdns.interfaces: there is no interface {name} here: run watches the others", False)


def unreadable_tls_files(config: SensorConfig) -> list[Finding]:
    """The TLS files of the outputs and of ``node:`` this user cannot read, each named with its path
    (``run`` and ``honeyports`` stop on them at start; the sinks' own error does not name the file)."""
    found = [finding for index, output in enumerate(config.outputs)
             for finding in _unreadable_files(f"outputs[{index}]", output.settings)]
    if config.node is not None:
        found += _unreadable_files("node", {"ca_file": config.node.ca_file})
    return found


def _unreadable_files(where: str, settings: Mapping[str, object]) -> Iterator[Finding]:
    """The TLS files of an output or of the node link that cannot be read, each with its path."""
    for key in TLS_FILES:
        value = settings.get(key)
        if isinstance(value, str | Path):
            path = Path(value).expanduser()
            try:
                with path.open("rb"):
                    pass
            except OSError as error:
                yield Finding(f"{where}.{key}: {why_unreadable(path, error)}")


def _zeek_logs(log_dir: Path, kinds: tuple[str, ...]) -> Iterator[Finding]:
    """The log directory and its live logs (of ``zeek.logs``), read as the follower reads them."""
    try:
        names = {path.name for path in log_dir.iterdir()}
    except NotADirectoryError:
        yield Finding(f"zeek.log_dir: {log_dir} is not a directory")
        return
    except FileNotFoundError:
        yield Finding(f"zeek.log_dir: {log_dir}: no such directory: install Zeek, or set zeek.log_dir to where "
                      "its logs are written, or remove zeek.log_dir to run without Zeek")
        return
    except OSError as error:
        yield Finding(f"zeek.log_dir: {why_unreadable(log_dir, error)}")
        return
    for kind in kinds:
        if f"{kind}.log" in names:
            try:
                with (log_dir / f"{kind}.log").open("rb"):
                    pass
            except OSError as error:
                yield Finding(f"zeek.log_dir: {why_unreadable(log_dir / f'{kind}.log', error)}")


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


def become(user: str) -> None:
    """Go on as ``user`` with its groups, as systemd's ``User=`` runs the service (``check-config --user``)."""
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise SensorError(f"--user {user}: there is no such user") from None
    if os.getuid() == entry.pw_uid:
        return
    try:
        os.initgroups(user, entry.pw_gid)
        os.setgid(entry.pw_gid)
        os.setuid(entry.pw_uid)
    except PermissionError:
        raise SensorError(f"--user {user}: only root can check as another user") from None
