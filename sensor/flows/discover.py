"""Which of the inputs ``replay`` is given are flow logs, and in which format: told from their content
(:func:`~sensor.flows.read.sniff`), or from the configuration's ``flows[]`` entry whose path is the file or holds
it (which also names an AWS format without a header line). A directory is searched at any depth (a synced bucket
keeps its objects under ``AWSLogs/…/YYYY/MM/DD/``); files named as Zeek's logs are left to the Zeek reader.
"""

from __future__ import annotations

from pathlib import Path

from sensor.config import FlowConfig
from sensor.config.model import CLOUD_LATENESS
from sensor.flows.read import sniff_file
from sensor.zeek.logs import age_order


def configured(path: Path, flows: tuple[FlowConfig, ...]) -> FlowConfig | None:
    """The ``flows[]`` entry for a file: the one whose path is the file or one of its directories."""
    resolved = path.resolve()
    for flow in flows:
        if flow.path is not None and (resolved == flow.path.resolve() or flow.path.resolve() in resolved.parents):
            return flow
    return None


def flow_config(path: Path, flows: tuple[FlowConfig, ...]) -> FlowConfig | None:
    """The flow source a file belongs to (configured, or sniffed with the format's defaults), or None."""
    found = configured(path, flows)
    if found is not None:
        return found
    fmt = sniff_file(path)
    if fmt is None:
        return None
    return FlowConfig(format=fmt, name=f"{fmt}:{path.parent.name or path.name}",
                      lateness=CLOUD_LATENESS if fmt in ("aws", "gcp", "azure") else 0.0)


def group(found: list[tuple[FlowConfig, Path]]) -> list[tuple[FlowConfig, list[Path]]]:
    """Files of one source together (one join across them), oldest first."""
    streams: dict[tuple[str, str], tuple[FlowConfig, list[Path]]] = {}
    for config, path in found:
        key = (config.format, config.name)
        streams.setdefault(key, (config, []))[1].append(path)
    return [(config, sorted(files, key=age_order)) for config, files in streams.values()]


def in_directory(directory: Path, taken: set[Path], flows: tuple[FlowConfig, ...],
                 zeek_named: set[Path]) -> list[tuple[FlowConfig, Path]]:
    """The flow logs under ``directory`` (at any depth) that are not ``taken`` already nor Zeek logs by name
    (``zeek_named``, which are sniffed only when their content is no Zeek log)."""
    found = []
    for path in sorted(directory.rglob("*")):
        if not path.is_file() or path.resolve() in taken or path.resolve() in zeek_named:
            continue
        config = flow_config(path, flows)
        if config is not None:
            found.append((config, path))
    return found
