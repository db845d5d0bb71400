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
SHARED = {"sensor.observations", "sensor.errors", "sensor.config", "sensor.metrics", "sensor.wording",
          "sensor.neighbours", "sensor.files", "sensor.text"}
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
                imports.update(f"{node.module}.{alias.name}" for alias in node.names)  # a module, maybe
            elif isinstance(node, ast.Import):
                imports.update(alias.name for alias in node.names)
        found[name] = imports
    return found


MODULES = _modules()


def _layer(module: str) -> str | None:
    matches = [layer for layer in LAYERS if module == layer or module.startswith(layer + ".")]
    return max(matches, key=len) if matches else None


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The circles of ``graph`` (modules that import one another, directly or round about), each sorted
    (Tarjan's strongly connected components of more than one module)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for imported in sorted(graph[module]):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return sorted(found)


def test_no_modules_import_one_another() -> None:
    """Not even for type checking only: a circle means two rooms that are one, or one reaching back."""
    graph = {module: {m for m in imports if m in MODULES and m != module} for module, imports in MODULES.items()}
    assert _circles(graph) == []


def test_the_circle_finder_finds_a_circle_round_about() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e"}}
    assert _circles(graph) == [["a", "b", "c"]]


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
