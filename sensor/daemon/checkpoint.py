"""The daemon's checkpoint: follower positions, the correlator's state and the last committed alerts.

One file, ``state_dir/checkpoint``, replaced atomically (a temporary file created exclusively, never through a
link, fsync, rename, fsync of the directory) so a crash leaves either the old checkpoint or the new one. The
daemon writes it off its event loop (:class:`CheckpointWriter`): a forked child encodes its copy-on-write
snapshot of the state into a temporary file of its own and fsyncs it; the daemon, once the child has exited
successfully, renames it into place -- the commit point stays in the daemon, so a child orphaned by a crash
can never replace a newer checkpoint. The child closes every descriptor it inherited but its error pipe (a
state-dir lock or a listening port held by an orphan would stop a restart).

The file is data, never code: a magic line naming the format version (:data:`VERSION`), the SHA-256 of the
payload (a torn or altered file is noticed), then the payload, MessagePack (:mod:`sensor.daemon.stateform`:
an allowlist of classes and value types, each class's attributes checked against the running code). Its
three parts -- the follower's positions, the outbox, the correlator -- are read one after the other, so a
correlator laid out by another version (or built under other detection settings) is dropped while the
offsets are kept. A checkpoint of version 1 is a pickle and is never loaded (unpickling can run code): it is
moved aside, said once, and the daemon starts afresh. The state directory itself is checked before anything
is read from it (:func:`sensor.files.check_private_directory`).

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
import signal
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import msgpack

from sensor.alerts.alert import Alert
from sensor.config import DetectionConfig
from sensor.daemon.stateform import Decoder, Encoder, StateFormatError, expected_layouts
from sensor.detect.correlator import STATE_VERSION, Correlator
from sensor.errors import SensorError
from sensor.files import create_exclusive, fsync_directory, write_atomically
from sensor.zeek.position import StreamPosition

log = logging.getLogger(__name__)

VERSION = 2
MAGIC = b"t1046-sensor checkpoint v%d\n" % VERSION
PICKLED = b"t1046-sensor checkpoint v1\n"
"""The magic line of the checkpoints of earlier versions, pickles: never loaded."""


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


def _part(value: object) -> dict[str, Any]:
    encoder = Encoder()
    data = encoder.pack(value)
    return {"classes": [[name, list(names)] for name, names in encoder.layouts], "data": data}


def _encode(checkpoint: Checkpoint) -> bytes:
    """The checkpoint file's bytes (the detection settings the correlator was built with are not written:
    the loader passes its own, and the digest says whether they are the same)."""
    document = {
        "seq": checkpoint.seq, "detection": checkpoint.detection, "clock": checkpoint.clock,
        "saved_at": checkpoint.saved_at, "extra": dict(checkpoint.extra),
        "positions": _part([dict(checkpoint.streams), sorted(checkpoint.done)]),
        "outbox": _part(list(checkpoint.outbox)),
        "correlator": _part(checkpoint.correlator),
    }
    payload: bytes = msgpack.packb(document, use_bin_type=True)
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
        with os.fdopen(create_exclusive(temporary), "wb") as stream:
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
        fsync_directory(self.path.parent)

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


def _outer(data: bytes) -> dict[str, Any]:
    """The payload's document, its checksum checked; :class:`CheckpointError` for anything else."""
    if data.startswith(PICKLED):
        raise CheckpointError("written by an earlier version as a pickle, which is never loaded (unpickling "
                              "can run code)")
    if not data.startswith(MAGIC):
        first = data.split(b"\n", 1)[0][:60]
        raise CheckpointError(f"not a version {VERSION} checkpoint (starts with {first!r})")
    digest, _, payload = data[len(MAGIC):].partition(b"\n")
    if hashlib.sha256(payload).hexdigest().encode() != digest:
        raise CheckpointError("checksum mismatch (torn or altered file)")
    try:
        document = msgpack.unpackb(payload, raw=False, strict_map_key=True, ext_hook=_no_ext)
    except (ValueError, TypeError, StateFormatError) as error:
        raise CheckpointError(f"cannot be decoded: {error}") from None
    wanted = {"seq": int, "detection": str, "clock": float, "saved_at": float, "extra": dict, "positions": dict,
              "outbox": dict, "correlator": dict}
    if not isinstance(document, dict) or set(document) != set(wanted):
        raise CheckpointError("is not laid out as a checkpoint")
    for key, kind in wanted.items():
        if not isinstance(document[key], kind) or isinstance(document[key], bool):
            raise CheckpointError(f"{key}: not a {kind.__name__}")
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in document["extra"].items()):
        raise CheckpointError("extra: not a mapping of text to text")
    return document


def _no_ext(code: int, data: bytes) -> object:
    raise StateFormatError(f"a typed value (type {code}) outside the state parts")


def _read_part(part: dict[str, Any], expected: Callable[[type], tuple[str, ...]],
               config: DetectionConfig | None = None) -> Any:
    if set(part) != {"classes", "data"} or not isinstance(part["data"], bytes):
        raise StateFormatError("a state part without its class table and data")
    return Decoder(part["classes"], expected, config).unpack(part["data"])


def _positions(found: Any) -> tuple[dict[str, StreamPosition], frozenset[str]]:
    if not isinstance(found, list) or len(found) != 2:
        raise StateFormatError("the positions are not a pair")
    streams, done = found
    if not isinstance(streams, dict) or not all(
            isinstance(k, str) and isinstance(v, StreamPosition) for k, v in streams.items()):
        raise StateFormatError("the stream positions are not positions by stream")
    if not isinstance(done, list) or not all(isinstance(fingerprint, str) for fingerprint in done):
        raise StateFormatError("the finished files are not fingerprints")
    return streams, frozenset(done)


def _decode(data: bytes, detection: DetectionConfig) -> Checkpoint:
    """The checkpoint in ``data``, its correlator built under ``detection`` (a fresh one, with a warning, when
    the saved one was built under other settings or is laid out by another version)."""
    document = _outer(data)
    expected = expected_layouts(detection)
    try:
        streams, done = _positions(_read_part(document["positions"], expected))
    except StateFormatError as error:
        raise CheckpointError(f"the follower's positions cannot be read: {error}") from None
    try:
        outbox = _read_part(document["outbox"], expected)
        if not isinstance(outbox, list) or not all(isinstance(alert, Alert) for alert in outbox):
            raise StateFormatError("the outbox holds something else than alerts")
    except StateFormatError as error:
        log.warning("checkpoint: the alerts of its last commit were written by another version and are dropped "
                    "(%s); after an orderly stop they were delivered already", error)
        outbox = []
    digest = detection_digest(detection)
    correlator: Correlator | None = None
    if document["detection"] != digest:
        log.warning("detection settings changed since the last checkpoint: open incidents are dropped, "
                    "the logs are followed on from where they were")
    else:
        try:
            found = _read_part(document["correlator"], expected, detection)
            if not isinstance(found, Correlator):
                raise StateFormatError(f"holds a {type(found).__name__}, not a correlator")
            correlator = found
        except StateFormatError as error:
            log.warning("checkpoint: the correlator's state cannot be used (%s): open incidents are dropped, the "
                        "logs are followed on from where they were", error)
    return Checkpoint(seq=document["seq"], detection=digest, streams=streams, done=done,
                      correlator=correlator if correlator is not None else Correlator(detection),
                      clock=document["clock"], outbox=tuple(outbox), saved_at=document["saved_at"],
                      extra=document["extra"])


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
        return _decode(data, detection)
    except CheckpointError as error:
        aside = path.with_name(path.name + ".unusable")
        path.replace(aside)
        log.error("checkpoint %s: %s; moved to %s and starting afresh (alerts may repeat or be missed)",
                  path, error, aside)
        return None
