"""``t1046-sensor report``: inputs in, one HTML file (and optionally one PNG per incident) out.

The incidents come from an alerts JSONL file (``run``'s file sink, ECS) when one is given, else from
running the Zeek logs through :func:`sensor.replay.replay`, exactly as ``replay`` does; the probes drawn
come from the conn logs among the inputs either way. Files are written whole (a temporary file renamed), into
directories that exist (``--png``'s own is made when only it is missing), checked before any work.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sensor.alerts.alert import Alert
from sensor.alerts.render import to_ecs
from sensor.config import SensorConfig
from sensor.errors import SensorError
from sensor.observations import IPAddress
from sensor.replay import replay
from sensor.report.figures import incident_png
from sensor.report.incidents import Incident, Update, fold, is_alerts_file, read_alerts, update_of
from sensor.report.page import Section, page
from sensor.report.probes import collect, no_probes
from sensor.text import file_part
from sensor.wording import counted
from sensor.zeek.logs import is_directory


@dataclass(frozen=True, slots=True)
class ReportSummary:
    """What a report read and wrote."""

    incidents: int
    probes: int
    alerts: int
    """Alerts (incident updates) of the incidents reported."""
    skipped: int
    """Lines of alerts files that were not ECS alerts."""
    out: Path
    size: int
    pngs: tuple[Path, ...]
    unusable: tuple[str, ...] = ()
    """One line for each log without a single usable record (the command's exit status is then 1)."""

    def line(self) -> str:
        """The one-line summary printed on stderr."""
        skipped = f", {counted(self.skipped, 'line')} skipped" if self.skipped else ""
        pngs = f" and {counted(len(self.pngs), 'PNG')}" if self.pngs else ""
        return (f"report: {counted(self.incidents, 'incident')} from {counted(self.alerts, 'alert')}{skipped},"
                f" {counted(self.probes, 'probe')} drawn; wrote {self.out} ({self.size} bytes){pngs}")



def scanner_address(text: str) -> IPAddress:
    """Parse ``--scanner``; raises ``ValueError`` with a readable message."""
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise ValueError(f"not an IP address: {text!r}") from None


def _updates(alerts_files: Sequence[Path], log_paths: Sequence[Path],
             config: SensorConfig, workers: int = 1) -> tuple[list[Update], int, tuple[str, ...]]:
    """The incident updates (from the alerts files, else from replaying the logs, in ``workers`` processes), the
    alerts files' lines that are no alert, and the logs without a usable record."""
    if alerts_files:
        updates: list[Update] = []
        skipped = 0
        for path in alerts_files:
            found, bad = read_alerts(path)
            updates += found
            skipped += bad
        return updates, skipped, ()
    alerts: list[Alert] = []
    with open(os.devnull, "wb") as discard:
        replayed = replay(list(log_paths), config, discard, on_alert=alerts.append, workers=workers)
    return [update_of(to_ecs(alert, config.name)) for alert in alerts], 0, replayed.unusable


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _writable(directory: Path, what: str) -> str | None:
    """Why the report cannot write into ``directory`` (``what`` names the option), or None."""
    try:
        if not directory.is_dir():
            return f"{what}: {directory} is not a directory" if directory.exists() else \
                f"{what}: {directory}: no such directory"
    except OSError as error:
        return f"{what}: {directory}: {error.strerror or error}"
    return None if os.access(directory, os.W_OK | os.X_OK) else f"{what}: {directory} is not writable by this user"


def check_outputs(out: Path, png_dir: Path | None) -> None:
    """Before any work: the directory ``--out`` names exists and is writable, and so is ``--png``'s (made
    when only it is missing). Raises :class:`SensorError` saying which is not."""
    problem = _writable(out.parent, f"--out {out}")
    if problem is None and png_dir is not None:
        try:
            if png_dir.exists() and not png_dir.is_dir():
                raise NotADirectoryError(errno.ENOTDIR, "not a directory")
            png_dir.mkdir(exist_ok=True)
        except OSError as error:
            problem = f"--png {png_dir}: cannot make it: {error.strerror or error}"
        else:
            problem = _writable(png_dir, f"--png {png_dir}")
    if problem is not None:
        raise SensorError(f"cannot write the report: {problem}")


def _write(path: Path, data: bytes) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def png_name(number: int, incident: Incident) -> str:
    """The file name of an incident's PNG: its place in the report, scanner and incident id (both read from
    the input: made safe as file names, they name no other directory)."""
    who = "many-sources" if incident.scanner is None else file_part(str(incident.scanner))
    return f"{number:02d}-{who}-{file_part(incident.incident_id, 64)}.png"


def write_report(paths: Sequence[Path], config: SensorConfig, out: Path, png_dir: Path | None = None,
                 scanners: Sequence[IPAddress] = (), workers: int = 1) -> ReportSummary:
    """Write the report of ``paths`` (Zeek logs and/or ECS alerts JSONL files) to ``out``.

    Raises :class:`~sensor.errors.LogReadError` when an input cannot be read at all and
    :class:`~sensor.errors.SensorError` when an output cannot be written.
    """
    check_outputs(out, png_dir)
    for path in paths:
        is_directory(path)  # a missing or unreadable input is named before anything else
    alerts_files = [path for path in paths if is_alerts_file(path)]
    log_paths = [path for path in paths if path not in alerts_files]
    updates, skipped, unusable = _updates(alerts_files, log_paths, config, workers)
    incidents = fold(updates)
    if scanners:
        incidents = [incident for incident in incidents if incident.scanner in scanners]
    probes = collect(log_paths, incidents) if log_paths else {}
    sections = []
    for incident in incidents:
        drawn = probes[incident.incident_id] if incident.incident_id in probes else no_probes()
        sections.append(Section(incident, drawn, incident_png(incident, drawn)))
    document = page(sections, [str(path) for path in paths]).encode()
    written: list[Path] = []
    target = out
    try:
        _write(out, document)
        if png_dir is not None:
            for number, section in enumerate(sections, 1):
                target = png_dir / png_name(number, section.incident)
                _write(target, section.picture)
                written.append(target)
    except OSError as error:
        raise SensorError(f"cannot write the report: {target}: {error.strerror or error}") from None
    return ReportSummary(
        incidents=len(incidents),
        probes=sum(len(section.probes) for section in sections),
        alerts=sum(incident.updates for incident in incidents),
        skipped=skipped,
        out=out,
        size=len(document),
        pngs=tuple(written),
        unusable=unusable,
    )
