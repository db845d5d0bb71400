"""The README's pictures of ``t1046-sensor report``, made from real recordings in ``tests/data``.

    python docs/pictures.py            # writes docs/report-*.png and docs/report-pictures.json

Each picture is the report's PNG of its input's first incident, exactly as
``t1046-sensor report INPUT --png DIR`` writes it: a capture's Zeek logs, or the alerts a running node
wrote. ``report-pictures.json`` records what each picture draws (every text, tick label,
line, bar and image of the figure, in the figure's own coordinates) and the PNG's SHA-256:
``tests/report/test_pictures.py`` draws the pictures again and fails when what is drawn differs (the
pictures are stale) or a PNG is not the one recorded. What is drawn, not the PNG's bytes, is compared, so a
machine whose matplotlib rasterises a font a pixel differently still agrees.
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from matplotlib.collections import Collection  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.image import AxesImage  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402
from matplotlib.text import Text  # noqa: E402

from sensor.config import default_config  # noqa: E402
from sensor.report.command import write_report  # noqa: E402

PICTURES = {"vertical-scan": "captures/s1_vertical_syn/zeek",
            "horizontal-sweep": "captures/s2_horizontal_syn_routed/zeek",
            "honeyport-touches": "honeyports/alerts.jsonl"}
"""README picture name → what it is drawn from, under tests/data."""
RECORD = ROOT / "docs" / "report-pictures.json"


def _rounded(values: Any) -> Any:
    return [round(float(value), 4) for value in values]


def drawn(figure: Figure) -> list[Any]:
    """What ``figure`` draws, artist by artist, in data or axes coordinates (independent of the rasteriser)."""
    found: list[Any] = []
    for artist in figure.findobj():
        if isinstance(artist, Text) and artist.get_visible() and artist.get_text():
            found.append(["text", artist.get_text(), _rounded(artist.get_position()), to_hex(artist.get_color())])
        elif isinstance(artist, Line2D) and artist.get_visible():
            found.append(["line", _rounded(artist.get_xdata()), _rounded(artist.get_ydata()),
                          to_hex(artist.get_color())])
        elif isinstance(artist, Rectangle) and artist.get_visible() and artist.axes is not None:
            found.append(["bar", _rounded(artist.get_bbox().bounds), _rounded(artist.get_facecolor())])
        elif isinstance(artist, AxesImage):
            data = artist.get_array()
            digest = hashlib.sha256(json.dumps(_rounded(data.ravel().filled(-1) if hasattr(data, "filled")
                                                        else data.ravel())).encode()).hexdigest()
            found.append(["image", list(data.shape), digest, _rounded(artist.get_extent())])
        elif isinstance(artist, Collection) and artist.get_visible():
            found.append(["points", [_rounded(offset) for offset in artist.get_offsets()]])
    return found


def make(directory: Path) -> dict[str, Any]:
    """Draw every picture into ``directory`` (``report-NAME.png``); what each draws and its PNG's digest."""
    from sensor.report import figures

    figures_made: list[Figure] = []
    original = figures.incident_figure

    def keeping(*args: Any) -> Figure:
        figure = original(*args)
        figures_made.append(figure)
        return figure

    record: dict[str, Any] = {}
    figures.incident_figure = keeping  # type: ignore[assignment]
    try:
        for name, source in PICTURES.items():
            figures_made.clear()
            with tempfile.TemporaryDirectory() as scratch:
                summary = write_report([ROOT / "tests" / "data" / source], default_config(),
                                       Path(scratch) / "report.html", Path(scratch) / "png")
                first = sorted(summary.pngs)[0]
                target = directory / f"report-{name}.png"
                target.write_bytes(first.read_bytes())
            record[name] = {"input": source, "png_sha256": hashlib.sha256(target.read_bytes()).hexdigest(),
                            "drawn": drawn(figures_made[0])}
    finally:
        figures.incident_figure = original
    return record


if __name__ == "__main__":
    made = make(ROOT / "docs")
    RECORD.write_text(json.dumps(made, indent=1, sort_keys=True) + "\n")
    print(f"wrote {', '.join(f'docs/report-{name}.png' for name in made)} and {RECORD.relative_to(ROOT)}")
