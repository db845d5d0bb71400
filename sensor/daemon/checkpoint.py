"""The daemon's checkpoint: follower positions, the correlator's state and the last committed alerts.

One file, ``state_dir/checkpoint``, replaced atomically (temporary file, fsync, rename, fsync of the
directory) so a crash leaves either the old checkpoint or the new one. It starts with a magic line naming
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

import hashlib
import logging
import pickle
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from sensor.alerts.alert import Alert
from sensor.config import DetectionConfig
from sensor.detect.correlator import STATE_VERSION, Correlator
from sensor.errors import SensorError
from sensor.outputs.sinks import write_atomically
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


def save_checkpoint(path: Path, checkpoint: Checkpoint) -> None:
    """Write the checkpoint atomically; raise ``OSError`` when it cannot be written."""
    payload = pickle.dumps(checkpoint, protocol=pickle.HIGHEST_PROTOCOL)
    write_atomically(path, MAGIC + hashlib.sha256(payload).hexdigest().encode() + b"\n" + payload)


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
