"""The folders read as the data-flow diagram, and imports only go where the diagram lets them.

sources (Zeek logs, honeyports, the mDNS watcher) → observations → the correlator → alerts → outputs.
The correlator and the alert rendering are pure (no clock, no sockets, no files); sources never reach
into detection or outputs; outputs know alerts, not where they came from. The daemon, the commands and
the CLI wire everything together and may import anything.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = {"sensor.observations", "sensor.errors", "sensor.config", "sensor.metrics", "sensor.neighbours"}
"""The vocabulary and infrastructure every layer may use (the neighbour table is read at the sources' edge)."""
LAYERS: dict[str, set[str]] = {
    "sensor.alerts": SHARED,
    "sensor.detect": SHARED | {"sensor.alerts"},
    "sensor.zeek": SHARED,
    "sensor.flows": SHARED | {"sensor.zeek"},
    "sensor.mdns": SHARED | {"sensor.mdns"},
    "honeyports": SHARED | {"honeyports"},
    "sensor.outputs": SHARED | {"sensor.alerts"},
    "sensor.nodes": SHARED | {"sensor.outputs"},
}
"""For each layer (a package or module), the other layers it may import."""
WIRING = {"sensor.mdns.command", "honeyports.command"}
"""Commands that wire sources, the pipeline and outputs together, as the daemon and the CLI do."""
NO_IO = {"socket", "asyncio", "ssl", "select", "selectors", "time", "datetime", "os", "subprocess", "threading",
         "signal", "random", "urllib", "http", "pathlib", "io", "shutil", "twisted", "zeroconf", "ifaddr"}
"""Modules a pure layer must not import: clocks, sockets, files, processes, randomness."""
PURE = ("sensor.detect",)


def _modules() -> dict[str, set[str]]:
    found = {}
    for path in [*ROOT.joinpath("sensor").rglob("*.py"), *ROOT.joinpath("honeyports").rglob("*.py")]:
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        imports = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imports.add(node.module)
            elif isinstance(node, ast.Import):
                imports.update(alias.name for alias in node.names)
        found[name] = imports
    return found


MODULES = _modules()


def _layer(module: str) -> str | None:
    if module in WIRING:
        return None
    matches = [layer for layer in LAYERS if module == layer or module.startswith(layer + ".")]
    return max(matches, key=len) if matches else None


def _within(imported: str, allowed: set[str]) -> bool:
    return any(imported == a or imported.startswith(a + ".") for a in allowed)


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _layer(m)))
def test_imports_follow_the_diagram(module: str) -> None:
    layer = _layer(module)
    assert layer is not None
    allowed = LAYERS[layer] | {layer}
    ours = {m for m in MODULES[module] if m.split(".")[0] in ("sensor", "honeyports")}
    upward = sorted(m for m in ours if not _within(m, allowed))
    assert not upward, f"{module} ({layer}) imports {upward}"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith(PURE)))
def test_the_correlator_reads_no_clock_and_does_no_io(module: str) -> None:
    forbidden = sorted(m for m in MODULES[module] if m.split(".")[0] in NO_IO)
    assert not forbidden, f"{module} imports {forbidden}"


def test_the_layout_test_would_catch_a_sink_imported_by_the_correlator() -> None:
    assert not _within("sensor.outputs.sink", LAYERS["sensor.detect"] | {"sensor.detect"})
    assert _layer("sensor.detect.correlator") == "sensor.detect"
    assert "socket" in NO_IO and "time" in NO_IO
@pytest.mark.parametrize("path", sorted(p for p in [*ROOT.joinpath("sensor").rglob("*.py"),
                                                    *ROOT.joinpath("honeyports").rglob("*.py")]),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_each_module_is_a_room_of_readable_size_with_a_docstring(path: Path) -> None:
    tree = ast.parse(path.read_text())
    lines = len(path.read_text().splitlines())
    assert lines <= 420, f"{lines} lines"
    if path.name != "__main__.py":
        assert ast.get_docstring(tree), "a docstring saying what the module owns"
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            size = (node.end_lineno or node.lineno) - node.lineno + 1
            assert size <= 260, f"class {node.name}: {size} lines"
