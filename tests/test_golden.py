"""``replay``'s output, byte for byte, on every log directory in tests/data, against stored copies.

The copies in ``tests/data/golden/`` (one JSON-lines file per directory, its path with ``/`` written ``__``)
were written by replay as it was before the throughput work of issue 12 (commit a515019): the columnar
reading, the batch path and the integer keys changed how fast replay is, not one byte of what it says.
A change that means to alter verdicts rewrites them, and the diff of this folder shows what changed:

    python -m tests.test_golden          # rewrite tests/data/golden/ from the current replay
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

from sensor.config.load import default_config
from sensor.replay import replay

DATA = Path(__file__).resolve().parent / "data"
GOLDEN = DATA / "golden"
DIRECTORIES = sorted({path.parent for path in DATA.rglob("*.log")} - {GOLDEN, DATA / "flows"})
"""Every directory of Zeek logs (tests/data/flows holds flow-log fixtures, checked by tests/flows)."""


def replayed(directory: Path) -> bytes:
    out = io.BytesIO()
    replay([directory], default_config(), out)
    return out.getvalue()


def golden(directory: Path) -> Path:
    return GOLDEN / (str(directory.relative_to(DATA)).replace("/", "__") + ".jsonl")


def test_every_log_directory_has_its_copy() -> None:
    assert len(DIRECTORIES) >= 40
    assert sorted(path.name for path in GOLDEN.iterdir()) == sorted(golden(path).name for path in DIRECTORIES)


@pytest.mark.parametrize("directory", DIRECTORIES, ids=lambda path: str(path.relative_to(DATA)))
def test_replay_says_byte_for_byte_what_it_said(directory: Path) -> None:
    assert replayed(directory) == golden(directory).read_bytes()


if __name__ == "__main__":
    GOLDEN.mkdir(exist_ok=True)
    for stale in GOLDEN.iterdir():
        stale.unlink()
    for found in DIRECTORIES:
        golden(found).write_bytes(replayed(found))
    print(f"{len(DIRECTORIES)} files in {GOLDEN}", file=sys.stderr)
