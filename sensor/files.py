"""The files the daemon creates, and the directory it keeps its state in.

Every file is made with an exact mode whatever the umask -- 0600, or 0640 where a group is configured to
read it (a file sink's ``group``) -- and never through a link a planted name points to: a new file is
created exclusively (``O_EXCL``), an existing one is opened with ``O_NOFOLLOW``. Replacing a file is atomic
(:func:`write_atomically`). The state directory is refused, as OpenSSH's ``StrictModes`` refuses a home
directory, when another user owns it or may write to it, or to a directory above it
(:func:`check_private_directory`): whoever can write there can plant the daemon's next checkpoint.
"""

from __future__ import annotations

import grp
import os
import stat
import tempfile
from pathlib import Path

from sensor.errors import SensorError

PRIVATE = 0o600
SHARED_WITH_GROUP = 0o640


class UnsafeDirectoryError(SensorError):
    """A state directory that another user could write to."""


def group_id(name: str) -> int:
    """The id of the group ``name``; ``SensorError`` when there is none."""
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        raise SensorError(f"no group {name!r}") from None


def settle_mode(descriptor: int, group: int | None = None) -> None:
    """Give an open file its exact mode: 0600, or 0640 and group ``group``."""
    if group is not None:
        os.fchown(descriptor, -1, group)
    os.fchmod(descriptor, PRIVATE if group is None else SHARED_WITH_GROUP)


def open_append(path: Path, group: int | None = None) -> int:
    """A descriptor appending to ``path`` (created 0600, or 0640 for ``group``), never through a link."""
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, PRIVATE)
    try:
        settle_mode(descriptor, group)
    except OSError:
        os.close(descriptor)
        raise
    return descriptor


def create_exclusive(path: Path) -> int:
    """A descriptor writing to a new file ``path`` (0600); ``FileExistsError`` when the name is taken, by a
    link too."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, PRIVATE)
    try:
        settle_mode(descriptor)
    except OSError:
        os.close(descriptor)
        raise
    return descriptor


def private_directories(path: Path) -> None:
    """Make ``path`` and whichever of its parents are missing, each 0700 (``mkdir -p -m 0700``)."""
    missing = [directory for directory in (path, *path.parents) if not directory.exists()]
    for directory in reversed(missing):
        directory.mkdir(mode=0o700, exist_ok=True)


def fsync_directory(directory: Path) -> None:
    """Make a rename in ``directory`` durable."""
    descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` (mode 0600): a new temporary file beside it, fsync, rename (which
    replaces a link at ``path`` rather than following it), fsync of the directory."""
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    temporary = Path(name)
    try:
        with os.fdopen(handle, "wb") as stream:
            settle_mode(stream.fileno())
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        temporary.replace(path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)


def _unsafe(info: os.stat_result, user: int, *, own: bool) -> str | None:
    """Why a directory with ``info`` is no safe place for ``user``'s state (``own``: the state directory
    itself, which ``user`` must own; above it, root may own it too, and a sticky directory such as /tmp may be
    writable by all)."""
    if not stat.S_ISDIR(info.st_mode):
        return "is not a directory"
    owners = (user,) if own else (user, 0)
    if info.st_uid not in owners:
        allowed = f"uid {user}" if own else f"root or uid {user}"
        return f"is owned by uid {info.st_uid}, not by {allowed}"
    writable = info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    if writable and not (not own and info.st_uid == 0 and info.st_mode & stat.S_ISVTX):
        who = "its group" if writable == stat.S_IWGRP else "other users"
        return f"can be written by {who} (mode {info.st_mode & 0o7777:04o})"
    return None


def directory_problem(path: Path, what: str = "state_dir") -> str | None:
    """Why ``path`` is no safe place for the effective user's state -- another user than it owns it or may
    write to it or to a directory above it (a root-owned sticky directory such as /tmp aside), as OpenSSH's
    ``StrictModes`` judges -- with what to do; None when it is safe. A missing ``path`` is judged by the
    directories above it that exist (``run`` makes it 0700)."""
    user = os.geteuid()
    resolved = path.resolve()
    for directory in (resolved, *resolved.parents):
        try:
            info = directory.stat()
        except OSError:  # missing (run makes it), or not reachable: writable_directory says why
            continue
        reason = _unsafe(info, user, own=directory == resolved)
        if reason is not None:
            fix = (f"chown {user} {directory} && chmod go-w {directory}" if directory == resolved
                   else f"chmod go-w {directory}, or choose another {what}")
            return (f"{what} {path}: {directory} {reason}; another user could plant the daemon's state there. "
                    f"Fix: {fix}")
    return None


def check_private_directory(path: Path, what: str = "state_dir") -> None:
    """Make ``path`` (0700) if it is missing, then refuse it -- :class:`UnsafeDirectoryError` saying why and
    what to do -- when :func:`directory_problem` finds it unsafe."""
    private_directories(path)
    problem = directory_problem(path, what)
    if problem is not None:
        raise UnsafeDirectoryError(problem)
