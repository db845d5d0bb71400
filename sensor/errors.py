"""One flat exception hierarchy: every error the sensor raises on purpose is a ``SensorError``; and
:func:`why_unreadable`, the one wording of "this process cannot read that path" with the likely fix.

The usual cause on a sensor is the service user not being in the group that owns Zeek's logs, so that line
names the directory or file that refuses, its owner group and the ``usermod`` that fixes it (it reads only
``stat`` and the user and group databases). ``check-config``, the configuration loader and the Zeek log
follower all use it.
"""

from __future__ import annotations

import errno
import grp
import os
import pwd
import stat
from pathlib import Path


class SensorError(Exception):
    """Base of the errors the sensor reports to its user."""


class ConfigError(SensorError):
    """The configuration is invalid; ``problems`` lists every error with its path in the file (one line when
    there is one, one line each after a heading when there are more)."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        if len(problems) == 1:
            super().__init__(f"invalid configuration: {problems[0]}")
        else:
            super().__init__(f"invalid configuration ({len(problems)} problems):\n  " + "\n  ".join(problems))


class UsageError(SensorError):
    """A command cannot be used as it was given: a needed option missing, an optional extra not installed."""


class LogReadError(SensorError):
    """A Zeek log cannot be read at all (missing, unreadable, not a Zeek log)."""


def _name(lookup: str, number: int) -> str:
    try:
        return pwd.getpwuid(number).pw_name if lookup == "user" else grp.getgrgid(number).gr_name
    except KeyError:
        return str(number)


def _refusing(path: Path) -> Path:
    """The first of ``path``'s ancestors this user cannot search, else ``path`` itself."""
    for ancestor in reversed(path.parents):
        if not os.access(ancestor, os.X_OK):
            return ancestor
    return path


def why_unreadable(path: Path, error: OSError) -> str:
    """``PATH: cannot read: Permission denied (...the likely fix...)`` for ``error`` met reading ``path``."""
    reason = error.strerror or str(error)
    if error.errno not in (errno.EACCES, errno.EPERM):
        return f"{path}: cannot read: {reason}"
    culprit = _refusing(path)
    try:
        info = culprit.stat()
    except OSError:
        return f"{path}: cannot read: {reason}"
    user = _name("user", os.geteuid())
    group = _name("group", info.st_gid)
    mode = f"{_name('user', info.st_uid)}:{group} {stat.S_IMODE(info.st_mode):o}"
    where = "it" if culprit == path else str(culprit)
    if info.st_gid == 0:
        primary = _name("group", os.getegid())
        return (f"{path}: cannot read: {reason} ({where} is {mode}: let group {primary} read it, e.g. "
                f"chgrp {primary} {culprit} && chmod g+rX {culprit})")
    if info.st_gid not in os.getgroups() and info.st_gid != os.getegid():
        return (f"{path}: cannot read: {reason} ({where} is {mode} and {user} is not in group {group}: "
                f"usermod -a -G {group} {user}, then restart the service)")
    return f"{path}: cannot read: {reason} ({where} is {mode}: chmod g+rX {culprit})"
