"""Node credentials at the centre: the shared token and the per-node token file (``NAME TOKEN`` lines),
re-read when it changes; a node proves its name with its own token."""

from __future__ import annotations

import hmac
import logging
import os
from pathlib import Path

from sensor.config import NodeConfig, NodesConfig
from sensor.errors import SensorError
from sensor.nodes.codec import NODE_NAME
from sensor.outputs.settings import read_secret

log = logging.getLogger(__name__)


def read_token(settings: NodesConfig | NodeConfig, where: str) -> str | None:
    """The node token from ``token_env`` or ``token_file`` (None when neither is set); never logged."""
    token = read_secret({"token_env": settings.token_env,
                         "token_file": str(settings.token_file) if settings.token_file else None}, "token", where)
    if token is not None and not token:
        raise SensorError(f"{where}: the node token is empty")
    return token


MIN_TOKEN_CHARS = 16
"""Shortest token a node tokens file may give a node."""
TOKENS_CHECK_SECONDS = 5.0
"""How often the centre looks whether its node tokens file changed (it also looks at every hello)."""


class NodeTokens:
    """Who may submit: each node named in the node tokens file, with its own token only; any other name with
    the shared token, when there is one.

    The file holds ``NAME TOKEN`` lines (blank lines and ``#`` comments aside). It is read again whenever it
    changes; a file that has become unreadable or invalid leaves the last good table in force, with a
    warning. Tokens are compared in constant time and never logged.
    """

    def __init__(self, shared: str | None, path: Path | None) -> None:
        if shared is None and path is None:
            raise SensorError("nodes: no node token (token_env, token_file or node_tokens_file)")
        self._shared = shared.encode() if shared is not None else None
        self._path = path
        self._stamp: tuple[int, int, int] | None = None
        self._own: dict[str, bytes] = {}
        if path is not None:
            self._own, self._stamp = self._read(path)

    @property
    def per_node(self) -> int:
        """Nodes named in the tokens file."""
        return len(self._own)

    def admits(self, node: str, token: str) -> bool:
        """Whether ``token`` proves the name ``node``."""
        own = self._own.get(node)
        offered = token.encode()
        if own is not None:
            return hmac.compare_digest(offered, own)
        if self._shared is None:
            hmac.compare_digest(offered, offered)  # an unknown name costs what a known one does
            return False
        return hmac.compare_digest(offered, self._shared)

    def check(self) -> bool:
        """Read the tokens file again if it changed; True when the table changed."""
        if self._path is None:
            return False
        try:
            stat = self._path.stat()
        except OSError as error:
            log.warning("nodes: node_tokens_file %s: %s; the last tokens read stay in force", self._path,
                        error.strerror)
            return False
        if (stat.st_ino, stat.st_size, stat.st_mtime_ns) == self._stamp:
            return False
        try:
            own, self._stamp = self._read(self._path)
        except SensorError as error:
            self._stamp = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
            log.warning("%s; the last tokens read stay in force", error)
            return False
        changed = own != self._own
        self._own = own
        if changed:
            log.info("nodes: node_tokens_file %s read again: %d nodes", self._path, len(own))
        return changed

    @staticmethod
    def _read(path: Path) -> tuple[dict[str, bytes], tuple[int, int, int]]:
        where = f"nodes: node_tokens_file {path}"
        try:
            with path.open("rb") as stream:
                stat = os.fstat(stream.fileno())
                text = stream.read().decode("utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise SensorError(f"{where}: cannot read: {getattr(error, 'strerror', None) or error}") from None
        if stat.st_mode & 0o077:
            log.warning("%s can be read by other users (mode %o): chmod 600 it", where, stat.st_mode & 0o777)
        own: dict[str, bytes] = {}
        for number, line in enumerate(text.splitlines(), 1):
            words = line.split("#", 1)[0].split()
            if not words:
                continue
            if len(words) != 2 or not NODE_NAME.fullmatch(words[0]):
                raise SensorError(f"{where}:{number}: expected NAME TOKEN (a node name: letters, digits, . _ -)")
            name, token = words
            if name in own:
                raise SensorError(f"{where}:{number}: node {name} is named twice")
            if len(token) < MIN_TOKEN_CHARS:
                raise SensorError(f"{where}:{number}: the token of {name} is shorter than {MIN_TOKEN_CHARS} characters")
            own[name] = token.encode()
        return own, (stat.st_ino, stat.st_size, stat.st_mtime_ns)



def centre_tokens(nodes: NodesConfig) -> NodeTokens:
    """Who may submit to the centre; raise ``SensorError`` when a token or the node tokens file is unusable."""
    return NodeTokens(read_token(nodes, "nodes"), nodes.node_tokens_file)
