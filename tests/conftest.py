"""Shared fixtures: the real captures copied under tests/data/captures (see its PROVENANCE.md); a small
tmpfs to fill up."""

from __future__ import annotations

import contextlib
import errno
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CAPTURES = Path(__file__).resolve().parent / "data" / "captures"


def scenarios() -> list[str]:
    """Names of the recorded scenarios (b* benign, s* scans)."""
    return sorted(p.name for p in CAPTURES.iterdir() if p.is_dir())


def truth(name: str) -> dict[str, Any]:
    """Ground truth of a scenario: what a SOC analyst would say happened."""
    result: dict[str, Any] = json.loads((CAPTURES / name / "truth.json").read_text())
    return result


@pytest.fixture
def captures() -> Path:
    return CAPTURES


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    """A 256 KiB tmpfs mounted for the test (root only; skipped when it cannot be mounted), unmounted after."""
    mount = tmp_path / "disk"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs", str(mount)],
                          capture_output=True, timeout=20, check=False)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {made.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True, timeout=20, check=False)


def fill_disk(disk: Path) -> Path:
    """Fill the disk to its last byte with one file, and return it."""
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as stream, contextlib.suppress(OSError):
        while True:
            stream.write(b"\0" * 4096)
    with pytest.raises(OSError) as caught:
        (disk / "probe").write_bytes(b"x" * 4096)
    assert caught.value.errno == errno.ENOSPC
    return filler
