"""``t1046-sensor report``: what a scanner did, as a self-contained HTML page and PNGs for a ticket.

The modules follow the data: :mod:`.incidents` (ECS alerts folded into incidents), :mod:`.probes` (the
scanner's conn.log records), :mod:`.aggregate` (time bins, capped axes), :mod:`.figures` (matplotlib,
Agg), :mod:`.page` (the HTML) and :mod:`.command` (the subcommand). Drawing needs the optional
``report`` extra (matplotlib); :func:`missing_dependency` says whether it is installed without importing it,
:func:`matplotlib_cache` spares a user without a writable home matplotlib's warnings about its cache.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

INSTALL_HINT = "pip install 't1046-sensor[report]'"
"""How to install what the report command needs (matplotlib and numpy)."""


def missing_dependency() -> str | None:
    """The name of the first plotting module that is not installed, or None when all are."""
    for name in ("matplotlib", "numpy"):
        if importlib.util.find_spec(name) is None:
            return name
    return None


def matplotlib_cache() -> None:
    """Give matplotlib a cache directory of this run's own when its default (``~/.config/matplotlib``) cannot
    be written, as for a service user without a home: matplotlib would make one itself, with two warnings."""
    if "MPLCONFIGDIR" in os.environ:
        return
    default = Path.home() / ".config" / "matplotlib"
    try:
        default.mkdir(parents=True, exist_ok=True)  # as matplotlib would
        if os.access(default, os.W_OK | os.X_OK):
            return
    except OSError:
        pass
    folder = tempfile.mkdtemp(prefix="t1046-matplotlib-")
    atexit.register(shutil.rmtree, folder, True)
    os.environ["MPLCONFIGDIR"] = folder
