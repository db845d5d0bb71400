"""``t1046-sensor report``: what a scanner did, as a self-contained HTML page and PNGs for a ticket.

The modules follow the data: :mod:`.incidents` (ECS alerts folded into incidents), :mod:`.probes` (the
scanner's conn.log records), :mod:`.aggregate` (time bins, capped axes), :mod:`.figures` (matplotlib,
Agg), :mod:`.page` (the HTML) and :mod:`.command` (the subcommand). Drawing needs the optional
``report`` extra (matplotlib); :func:`missing_dependency` says whether it is installed without importing it.
"""

from __future__ import annotations

import importlib.util

INSTALL_HINT = "pip install 't1046-sensor[report]'"
"""How to install what the report command needs (matplotlib and numpy)."""


def missing_dependency() -> str | None:
    """The name of the first plotting module that is not installed, or None when all are."""
    for name in ("matplotlib", "numpy"):
        if importlib.util.find_spec(name) is None:
            return name
    return None
