"""Where the log follower is in one stream: the position a checkpoint saves and a restart resumes from."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class StreamPosition:
    """Where the follower is in one log stream (conn, notice, dns, t1046, t1046_mdns, …)."""

    path: str
    """The file's name when last read (informational: files are found again by inode and fingerprint)."""
    inode: int
    offset: int
    """Bytes consumed, counted in the uncompressed content."""
    fingerprint: str
    """SHA-256 of the file's first ``fingerprint_len`` bytes: finds the file again after rename or gzip."""
    fingerprint_len: int
    mtime: float
