"""Probes until the first alert, per capture in tests/data: a Markdown table for docs/detection.md.

    python bench/first_alert.py            # every directory with Zeek logs under tests/data

For each directory: the scanner of the first alert, how many probes (conn.log records of that source
judged so far, Zeek's own figures included) it had made by then, the rules the first alert carried, and
the action of the incident's last update.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from sensor.alerts.alert import Alert
from sensor.config import default_config
from sensor.replay import replay

DATA = Path(__file__).resolve().parents[1] / "tests" / "data"


def first_alerts(directory: Path) -> str:
    alerts: list[Alert] = []
    with open(os.devnull, "wb") as sink:
        replay([directory], default_config(), sink, on_alert=alerts.append)
    if not alerts:
        return "none | | |"
    first = alerts[0]
    last = [a for a in alerts if a.incident_id == first.incident_id][-1]
    return f"{first.scanner} | {first.probes} | {', '.join(first.rules)} | {last.action.value}"


def main() -> None:
    dirs = sorted({p.parent for name in ("conn.log", "dns.log", "t1046.log") for p in DATA.glob(f"**/{name}")})
    sys.stdout.write("| capture | first alert: scanner | probes | rules | action |\n| --- | --- | --- | --- | --- |\n")
    for directory in dirs:
        sys.stdout.write(f"| {directory.relative_to(DATA)} | {first_alerts(directory)} |\n")


if __name__ == "__main__":
    main()
