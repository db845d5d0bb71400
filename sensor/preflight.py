"""What ``run`` (and the other commands) would meet at start, found without starting anything: ``check-config``'s
second half, and the check every command that starts does before it starts (:func:`startup_problems`).

The configuration file's own content is checked by :func:`sensor.config.load_config`. This looks at what
it points to: the state directory (writable, and safe from other users, as ``run`` requires), each output's
secrets, TLS files and file directory, the node link's certificate, key, CA and tokens. It binds no port and
creates no file. Secrets named by ``token_env`` and
the like are looked up in this process's environment, so check with the service's environment (``check-config
--env-file /etc/t1046-sensor/secrets.env``), and as the service's user (``--user t1046``: see :func:`become`).
Each finding is what ``run`` does with it: an error where it would stop; a warning where it goes on (a Zeek
log directory or live log it cannot read or that is missing, which it retries; a missing mDNS interface,
whose neighbours it watches).
"""

from __future__ import annotations

import os
import pwd
import socket
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from sensor.config import S3Prefix, SensorConfig
from sensor.errors import ConfigError, SensorError, why_unreadable
from sensor.files import directory_problem
from sensor.nodes.forwarder import node_credentials
from sensor.nodes.listener import centre_tls
from sensor.nodes.tokens import centre_tokens
from sensor.outputs.build import check_output
from sensor.outputs.settings import writable_directory

TLS_FILES = ("ca_file", "cert_file", "key_file")


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem found: ``fatal`` ones stop ``run``; it goes on with the others, warned about."""

    text: str
    fatal: bool = True

    def line(self) -> str:
        return self.text if self.fatal else f"warning: {self.text}"


USES: dict[str, frozenset[str]] = {
    "run": frozenset({"state_dir", "outputs", "nodes", "node", "zeek", "mdns", "flows"}),
    "honeyports": frozenset({"state_dir", "outputs", "node"}),
    "mdns": frozenset({"state_dir", "outputs", "mdns"}),
    "test-alert": frozenset({"outputs"}),
}
"""What each command that starts reads of the configuration's pointers (``test-alert`` spools in a directory
of its own)."""


def preflight(config: SensorConfig, command: str = "run", reach: bool = False) -> list[Finding]:
    """Every problem ``command`` would meet with the things ``config`` points to; one problem of several
    keys (a file output in an unwritable state directory) is one finding naming them all. With ``reach``
    (``check-config``), each S3 prefix is listed and one of its objects looked at, once."""
    merged: dict[tuple[str, bool], list[str]] = {}
    for finding in _findings(config, USES[command], reach):
        key, colon, problem = finding.text.partition(": ")
        merged.setdefault((problem, finding.fatal) if colon else (finding.text, finding.fatal),
                          []).append(key if colon else "")
    return [Finding(f"{', '.join(keys)}: {problem}" if all(keys) else problem, fatal)
            for (problem, fatal), keys in merged.items()]


def startup_problems(config: SensorConfig, command: str) -> list[str]:
    """What ``command`` stops on before it starts (the errors ``check-config`` reports for it)."""
    return [finding.text for finding in preflight(config, command) if finding.fatal]


def _findings(config: SensorConfig, uses: frozenset[str], reach: bool) -> Iterator[Finding]:
    if "state_dir" in uses:
        yield from _fails(partial(writable_directory, config.state_dir, "sensor.state_dir"))
        unsafe = directory_problem(config.state_dir, "sensor.state_dir")
        if unsafe is not None:
            yield Finding(unsafe)
    for index, output in enumerate(config.outputs if "outputs" in uses else ()):
        unreadable = list(_unreadable_files(f"outputs[{index}]", output.settings))
        yield from unreadable or _fails(partial(check_output, config, output, index))
    nodes = config.nodes
    if nodes is not None and "nodes" in uses:
        yield from _fails(partial(centre_tls, nodes))
        yield from _fails(partial(centre_tokens, nodes))
    if config.node is not None and "node" in uses:
        unreadable = list(_unreadable_files("node", {"ca_file": config.node.ca_file}))
        yield from unreadable or _fails(partial(node_credentials, config))
    if config.zeek.log_dir is not None and "zeek" in uses:
        yield from _zeek_logs(config.zeek.log_dir, config.zeek.logs)
    for name in config.mdns.interfaces if "mdns" in uses else ():
        try:
            socket.if_nametoindex(name)
        except OSError:
            yield Finding(f"mdns.interfaces: there is no interface {name} here: it watches the others", False)
    for index, flow in enumerate(config.flows if "flows" in uses else ()):
        if flow.s3 is not None:
            yield from _s3_source(f"flows[{index}].path", flow.s3, reach)


def _s3_source(where: str, prefix: S3Prefix, reach: bool) -> Iterator[Finding]:
    """An S3 source: boto3 installed (else ``run`` stops); with ``reach``, the prefix listed and an object looked
    at (a warning when it cannot be: ``run`` goes on and tries again)."""
    from sensor.flows.bucket import INSTALL_HINT, Bucket, missing_dependency

    missing = missing_dependency()
    if missing is not None:
        yield Finding(f"{where}: {prefix.url} needs {missing}, which is not installed: {INSTALL_HINT}")
        return
    problem = Bucket(prefix).probe() if reach else None
    if problem is not None:
        yield Finding(f"{where}: {problem}; run goes on and lists it again every {prefix.poll:g} s", False)


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


RETRIED = "; run goes on and follows it once it can read it"
"""What ``run`` does with a Zeek log directory or log it cannot read: it says so once and retries."""


def _zeek_logs(log_dir: Path, kinds: tuple[str, ...]) -> Iterator[Finding]:
    """The log directory and its live logs (of ``zeek.logs``), read as the follower reads them: warnings,
    as ``run`` goes on and retries them."""
    try:
        names = {path.name for path in log_dir.iterdir()}
    except NotADirectoryError:
        yield Finding(f"zeek.log_dir: {log_dir} is not a directory{RETRIED}", False)
        return
    except FileNotFoundError:
        yield Finding(f"zeek.log_dir: {log_dir}: no such directory; run goes on and follows it once it appears "
                      "(install Zeek, or set zeek.log_dir "
                      "to where its logs are written, or remove zeek.log_dir to run without Zeek)", False)
        return
    except OSError as error:
        yield Finding(f"zeek.log_dir: {why_unreadable(log_dir, error)}{RETRIED}", False)
        return
    for kind in kinds:
        if f"{kind}.log" in names:
            try:
                with (log_dir / f"{kind}.log").open("rb"):
                    pass
            except OSError as error:
                yield Finding(f"zeek.log_dir: {why_unreadable(log_dir / f'{kind}.log', error)}{RETRIED}", False)


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
        raise ConfigError([f"--env-file {path}: cannot read: {getattr(error, 'strerror', None) or error}"]) from None
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        name, equals, value = line.partition("=")
        name = name.strip()
        if not equals or not name.replace("_", "a").isalnum() or name[0].isdigit():
            raise ConfigError([f"--env-file {path}:{number}: expected NAME=VALUE"])
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
