"""The example alerts in docs/alerts.md: produced by ``t1046-sensor replay``, shown verbatim (indented only).

``python -m tests.alerts.examples`` rewrites the blocks between the ``<!-- example:NAME -->`` markers of
docs/alerts.md from what the code prints now; tests/alerts/test_docs.py fails while they differ.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "alerts.md"
CAPTURE = "tests/data/captures/s1_vertical_syn/zeek"
EXAMPLES = {
    "ecs": ["replay", CAPTURE],
    "ocsf": ["replay", "--format", "ocsf", CAPTURE],
    "outbound": ["replay", "tests/data/reach/outbound_telnet_sweep/zeek"],
}
"""Each example is the last alert (the incident's last update) that these arguments print."""
BLOCK = re.compile(r"(<!-- example:(?P<name>\w+) -->\n```json\n)(?P<body>.*?)(```\n)", re.DOTALL)


def indented(value: Any, depth: int = 0) -> str:
    """JSON indented by two spaces per level, with arrays of scalars kept on one line."""
    pad, inner = "  " * depth, "  " * (depth + 1)
    if isinstance(value, dict) and value:
        items = [f"{inner}{json.dumps(key)}: {indented(item, depth + 1)}" for key, item in value.items()]
        return "{\n" + ",\n".join(items) + f"\n{pad}}}"
    if isinstance(value, list) and any(isinstance(item, dict | list) for item in value):
        return "[\n" + ",\n".join(f"{inner}{indented(item, depth + 1)}" for item in value) + f"\n{pad}]"
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


def example(name: str) -> dict[str, Any]:
    """The alert document of one example, as ``t1046-sensor`` prints it now."""
    printed = subprocess.run([sys.executable, "-m", "sensor", *EXAMPLES[name]], cwd=ROOT, capture_output=True,
                             text=True, timeout=120, check=True).stdout
    document: dict[str, Any] = json.loads(printed.splitlines()[-1])
    return document


def documented(text: str) -> dict[str, dict[str, Any]]:
    """The example documents written in docs/alerts.md, by name."""
    return {match["name"]: json.loads(match["body"]) for match in BLOCK.finditer(text)}


def refreshed(text: str) -> str:
    """docs/alerts.md with every example block rewritten from the code's output."""
    return BLOCK.sub(lambda match: match[1] + indented(example(match["name"])) + "\n" + match[4], text)


if __name__ == "__main__":
    DOC.write_text(refreshed(DOC.read_text()))
