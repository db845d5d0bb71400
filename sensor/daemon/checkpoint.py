"""The daemon's checkpoint: follower positions, the correlator's state and the last committed alerts.

One file, ``state_dir/checkpoint``, replaced atomically (temporary file, fsync, rename, fsync of the
directory) so a crash leaves either the old checkpoint or the new one. The daemon writes it off its event
loop (:class:`CheckpointWriter`): a forked child pickles its copy-on-write snapshot of the state into a
temporary file of its own and fsyncs it; the daemon, once the child has exited successfully, renames it into
place -- the commit point stays in the daemon, so a child orphaned by a crash can never replace a newer
checkpoint. The child closes every descriptor it inherited but its error pipe (a state-dir lock or a
listening port held by an orphan would stop a restart). It starts with a magic line naming
the format version, then the SHA-256 of the payload, then the payload: a pickle of :class:`Checkpoint`.
The pickle is only ever read from the daemon's own state directory (mode 0700, owned by its user) and
only after its checksum and version check out; a checkpoint that fails a check is moved aside and the
daemon starts afresh, loudly.

The order that makes a crash lose and repeat nothing: the follower's offsets, the correlator and the
alerts they produced (the *outbox*) are saved together under a sequence number; only then are the alerts
handed to the sinks' spools, tagged with that number. After a crash the outbox of the last checkpoint is
handed again (spools skip numbers they already took) and the logs are read again from the saved offsets.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import logging
import os
import pickle
import signal
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import NoReturn

from sensor.alerts.alert import Alert
from sensor.config import DetectionConfig
from sensor.detect.correlator import STATE_VERSION, Correlator
from sensor.errors import SensorError
from sensor.outputs.spool import write_atomically
from sensor.zeek.position import StreamPosition

log = logging.getLogger(__name__)

VERSION = 1
MAGIC = b"t1046-sensor checkpoint v%d\n" % VERSION


class CheckpointError(SensorError):
    """A checkpoint file exists but cannot be used."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Everything a restart needs to go on exactly where the last commit left off."""

    seq: int
    detection: str
    """Digest of the detection settings the correlator state was built with."""
    streams: Mapping[str, StreamPosition]
    done: frozenset[str]
    """Fingerprints of rotated files read to their end."""
    correlator: Correlator
    clock: float
    """The pipeline's clock (it never runs backwards, across restarts too)."""
    outbox: tuple[Alert, ...] = ()
    saved_at: float = 0.0
    extra: Mapping[str, str] = field(default_factory=dict)


def detection_digest(config: DetectionConfig) -> str:
    """A digest of detection settings and of the correlator's state layout: correlator state is only
    reused under the same settings and by code that reads it the same way."""
    return hashlib.sha256(f"{STATE_VERSION}|{config!r}".encode()).hexdigest()[:32]


def _encode(checkpoint: Checkpoint) -> bytes:
    payload = pickle.dumps(checkpoint, protocol=pickle.HIGHEST_PROTOCOL)
    return MAGIC + hashlib.sha256(payload).hexdigest().encode() + b"\n" + payload


def save_checkpoint(path: Path, checkpoint: Checkpoint) -> None:
    """Write the checkpoint atomically, here and now; raise ``OSError`` when it cannot be written."""
    write_atomically(path, _encode(checkpoint))


def _write_in_child(temporary: Path, checkpoint: Checkpoint, errors: int) -> NoReturn:
    """The forked child: write and fsync the temporary file, report a failure on ``errors``, never return."""
    status = 1
    try:
        gc.disable()  # a collection would touch (and copy) every page of the snapshot for nothing
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, signal.SIG_DFL)
        signal.set_wakeup_fd(-1)  # the daemon's event loop must not hear of this child's signals
        os.closerange(3, errors)
        os.closerange(errors + 1, os.sysconf("SC_OPEN_MAX"))
        data = _encode(checkpoint)
        with temporary.open("wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        status = 0
    except Exception as error:  # noqa: BLE001 - whatever failed is reported to the daemon, which logs it
        os.write(errors, str(error).encode(errors="replace")[:4096])
    finally:
        os._exit(status)


class CheckpointWriter:
    """One checkpoint being written by a forked child, from the state as it was at the fork; made on a running
    event loop, which commits the file when the child has exited.

    :attr:`done` resolves then: to None once the checkpoint is in place and durable, or to the ``OSError``
    naming why it is not. Making one raises ``OSError`` when the child cannot be forked.
    """

    def __init__(self, path: Path, checkpoint: Checkpoint) -> None:
        self.path = path
        loop = asyncio.get_running_loop()
        errors, report = os.pipe()
        try:
            pid = os.fork()
        except OSError:
            os.close(errors)
            os.close(report)
            raise
        if pid == 0:
            _write_in_child(_temporary(path, os.getpid()), checkpoint, report)
        os.close(report)
        self.pid = pid
        self.temporary = _temporary(path, pid)
        self._errors = errors
        self._pidfd = os.pidfd_open(pid)
        self.done: asyncio.Future[OSError | None] = loop.create_future()
        loop.add_reader(self._pidfd, self._exited)

    def _exited(self) -> None:
        asyncio.get_running_loop().remove_reader(self._pidfd)
        try:
            self._finish()
        except OSError as error:
            self.done.set_result(error)
            return
        self.done.set_result(None)

    def _finish(self) -> None:
        """Reap the child and rename its file into place (the commit point); raise ``OSError`` naming what
        went wrong when the child could not write it."""
        try:
            _, status = os.waitpid(self.pid, 0)
            message = os.read(self._errors, 4096).decode(errors="replace")
        finally:
            self._close()
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            self.temporary.unlink(missing_ok=True)
            raise OSError(message or f"the checkpoint writer exited with status {code}")
        os.replace(self.temporary, self.path)
        directory = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    def _close(self) -> None:
        os.close(self._errors)
        os.close(self._pidfd)


def _temporary(path: Path, pid: int) -> Path:
    return path.with_name(f".{path.name}.{pid}.tmp")


def remove_leftovers(path: Path) -> None:
    """Remove the temporary files of checkpoint writers a crash left behind (call it at start, before any
    writer of this process runs)."""
    for leftover in path.parent.glob(f".{path.name}.*.tmp"):
        leftover.unlink(missing_ok=True)


def _decode(data: bytes) -> Checkpoint:
    if not data.startswith(MAGIC):
        first = data.split(b"\n", 1)[0][:60]
        raise CheckpointError(f"not a version {VERSION} checkpoint (starts with {first!r})")
    digest, _, payload = data[len(MAGIC):].partition(b"\n")
    if hashlib.sha256(payload).hexdigest().encode() != digest:
        raise CheckpointError("checksum mismatch (torn or altered file)")
    try:
        checkpoint = pickle.loads(payload)  # noqa: S301 - own state file, checksummed, see module docstring
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, TypeError, ValueError) as error:
        raise CheckpointError(f"cannot be decoded: {error}") from None
    if not isinstance(checkpoint, Checkpoint) or not isinstance(checkpoint.correlator, Correlator):
        raise CheckpointError(f"holds a {type(checkpoint).__name__}, not a checkpoint")
    if not all(isinstance(position, StreamPosition) for position in checkpoint.streams.values()):
        raise CheckpointError("holds stream positions of the wrong type")
    if not all(isinstance(alert, Alert) for alert in checkpoint.outbox):
        raise CheckpointError("holds outbox alerts of the wrong type")
    return checkpoint


def load_checkpoint(path: Path, detection: DetectionConfig) -> Checkpoint | None:
    """The saved checkpoint, or None when there is none or it is unusable (then it is moved aside).

    When the detection settings changed since it was saved, the offsets are kept and the correlator
    starts empty under the new settings.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        checkpoint = _decode(data)
    except CheckpointError as error:
        aside = path.with_name(path.name + ".unusable")
        path.replace(aside)
        log.error("checkpoint %s: %s; moved to %s and starting afresh (alerts may repeat or be missed)",
                  path, error, aside)
        return None
    digest = detection_digest(detection)
    if checkpoint.detection != digest:
        log.warning("detection settings changed since the last checkpoint: open incidents are dropped, "
                    "the logs are followed on from where they were")
        checkpoint = replace(checkpoint, detection=digest, correlator=Correlator(detection))
    return checkpoint
