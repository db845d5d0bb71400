"""The README's pictures are what ``python docs/pictures.py`` draws now (docs/report.md): drawn again from
the captures, every text, line, bar and image must be as recorded in docs/report-pictures.json, and each
PNG in docs/ the one recorded there. What is drawn is compared, not the PNG's bytes, so a matplotlib that
rasterises a glyph a pixel differently agrees; a change to the report's drawing fails until the pictures
are made again."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def _pictures() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_pictures", ROOT / "docs" / "pictures.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("docs_pictures", module)
    spec.loader.exec_module(module)
    return module


def test_the_readme_pictures_are_what_the_report_draws_now(tmp_path: Path) -> None:
    pictures = _pictures()
    recorded = json.loads((ROOT / "docs" / "report-pictures.json").read_text())
    made = pictures.make(tmp_path)
    assert sorted(made) == sorted(recorded) == sorted(pictures.PICTURES)
    readme = (ROOT / "README.md").read_text()
    for name, record in recorded.items():
        assert f"docs/report-{name}.png" in readme
        png = ROOT / "docs" / f"report-{name}.png"
        assert hashlib.sha256(png.read_bytes()).hexdigest() == record["png_sha256"], \
            f"{png.name} is not the picture recorded: run python docs/pictures.py"
        assert made[name]["drawn"] == record["drawn"], \
            f"{png.name} is stale (the report draws it differently now): run python docs/pictures.py"


def test_what_is_drawn_tells_a_moved_label(tmp_path: Path) -> None:
    pictures = _pictures()
    from matplotlib.figure import Figure

    figure = Figure()
    axes = figure.add_subplot()
    axes.text(0.5, 0.5, "T1046-VERTICAL")
    before = pictures.drawn(figure)
    axes.texts[0].set_position((0.6, 0.5))
    assert pictures.drawn(figure) != before
