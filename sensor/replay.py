"""``t1046-sensor replay``: Zeek logs and flow logs in, alerts out, with the logs' own timestamps as the clock.

The correlator's clock is the same watermark ``run`` keeps (:mod:`sensor.detect.watermark`), moved by the
records alone; at the end of the logs every incident that grew since its last update gets one (as ``run``
does at shutdown), and incidents are closed only where the logs themselves went quiet for ``idle_timeout``.

Flow logs (a firewall's, a cloud's: :mod:`sensor.flows`) among the inputs are told by their content or the
configuration's ``flows[]`` and read beside the Zeek logs, their records merged by time with Zeek's.

Each input file is read once, however it was named (a directory and a file in it); the summary names the
Zeek logs that were not read because of their type (``http.log``: replay reads conn, notice, dns, t1046,
t1046_mdns, dhcp, ntlm, kerberos and software logs) and counts the scanners and incidents behind the alerts.
"""

from __future__ import annotations

import contextlib
import heapq
import logging
import os
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TextIO

from sensor.alerts.alert import Alert
from sensor.alerts.render import render_line
from sensor.config import FlowConfig, SensorConfig
from sensor.detect.correlator import Correlator
from sensor.detect.watermark import Watermark
from sensor.errors import LogReadError
from sensor.flows.discover import flow_config, group, in_directory
from sensor.flows.read import FlowReader
from sensor.observations import ConnRows, Intake
from sensor.wording import counted
from sensor.workers import Fallback, judge_in_workers
from sensor.zeek.logs import ZeekLog, discover, listing, log_kind, open_log
from sensor.zeek.malformed import MalformedLog
from sensor.zeek.readahead import read_ahead
from sensor.zeek.records import observations, wanted_fields

log = logging.getLogger(__name__)

_SNIFF_BYTES = 64 << 10
"""Bytes read of each input to tell whether it can be a Zeek log at all."""
PROGRESS_BYTES = 64 << 20
PARALLEL_BYTES = 64 << 20
"""Inputs at least this large are judged in as many processes as the machine has cores unless ``workers`` is
given: below it, starting the processes costs more than they save."""
"""Inputs at least this large (on disk) get a progress bar when stderr is a terminal."""


@dataclass(frozen=True, slots=True)
class ReplaySummary:
    """What a replay read and produced."""

    files: int
    records: int
    malformed: int
    observations: int
    alerts: int
    suppressed: int
    seconds: float
    scanners: int = 0
    """Distinct scanners (sources) the alerts are about."""
    incidents: int = 0
    """Distinct incidents the alerts are updates of."""
    ignored: tuple[Path, ...] = ()
    """Zeek logs not read because of their type (``http.log``, or one ``zeek.logs`` leaves out), each once."""
    skipped: tuple[tuple[Path, str], ...] = ()
    """Files of a given directory that are not Zeek logs, or empty, with the reason, each once."""
    unusable: tuple[str, ...] = ()
    """One line for each log without a single usable record (every line malformed): an input that could
    not be read, so the command's exit status is 1."""

    def line(self) -> str:
        """The one-line summary printed on stderr."""
        line = (f"replay: {counted(self.records, 'record')} from {counted(self.files, 'file')}, "
                f"{self.malformed} malformed, {counted(self.observations, 'observation')}, "
                f"{counted(self.alerts, 'alert')} about {counted(self.scanners, 'scanner')} "
                f"in {counted(self.incidents, 'incident')} ({self.suppressed} suppressed as authorized) in "
                f"{self.seconds:.1f}s")
        if self.ignored:
            kinds: dict[str, int] = {}
            for path in self.ignored:
                kind = log_kind(path.name) or path.name
                kinds[kind] = kinds.get(kind, 0) + 1
            listed = ", ".join(f"{kind}.log" + (f" ({count} files)" if count > 1 else "")
                               for kind, count in kinds.items())
            line += f"; ignored by type: {listed}"
        if self.skipped:
            line += "; skipped: " + ", ".join(f"{path} ({reason})" for path, reason in self.skipped)
        return line



def _not_a_log(path: Path) -> str | None:
    """Why ``path`` cannot be a Zeek log (empty; its first line neither a ``#`` header nor a JSON record),
    or None; told once here rather than as a malformed line and then an error."""
    try:
        with open_log(path) as stream:
            head = stream.read(_SNIFF_BYTES)
    except (OSError, EOFError, zlib.error):
        return None  # reading it reports what is wrong
    first = next((line for line in head.splitlines() if line.strip()), None)
    if first is None:
        return "empty" if len(head) < _SNIFF_BYTES else None
    return None if first[:1] in (b"#", b"{") else "not a Zeek log"


def _inputs(paths: list[Path], kinds: tuple[str, ...], flows: tuple[FlowConfig, ...] = ()) -> tuple[
        list[tuple[str | None, list[Path]]], list[Path], list[tuple[Path, str]], list[tuple[FlowConfig, list[Path]]]]:
    """The streams of ``kinds`` to read, each file once; the Zeek logs of other types in the given
    directories; the files found there that are no Zeek log (nor flow log) or empty; and the flow logs, by
    source. A file named on its own that is neither a Zeek log nor a flow log is an error."""
    named = {path.resolve() for path in paths if not path.is_dir()}
    seen: set[Path] = set()
    streams: list[tuple[str | None, list[Path]]] = []
    skipped: list[tuple[Path, str]] = []
    flow_files: list[tuple[FlowConfig, Path]] = []
    for kind, files in discover(paths, kinds):
        unique = []
        for path in files:
            if path.resolve() in seen:
                continue
            seen.add(path.resolve())
            reason = _not_a_log(path)
            flow = flow_config(path, flows) if reason is not None or kind is None else None
            if flow is not None:
                flow_files.append((flow, path))
            elif reason is None:
                unique.append(path)
            elif path.resolve() in named and reason != "empty":
                raise LogReadError(f"{path}: neither a Zeek log (no #fields header and no JSON records) nor a flow "
                                   "log (firewall, AWS, Google Cloud, Azure)")
            else:
                skipped.append((path, reason))
        if unique:
            streams.append((kind, unique))
    ignored: list[Path] = []
    for directory in (path for path in paths if path.is_dir()):
        zeek_named = {path.resolve() for folder in (directory, directory / "log-queue") if folder.is_dir()
                      for path in folder.iterdir() if log_kind(path.name) in kinds}
        for flow, path in in_directory(directory, seen, flows, zeek_named):
            seen.add(path.resolve())
            flow_files.append((flow, path))
        for folder in (directory, directory / "log-queue"):
            if folder.is_dir():
                ignored += [path for path in listing(folder) if path.is_file()
                            and log_kind(path.name) not in (None, *kinds) and path.resolve() not in seen]
    return streams, ignored, skipped, group(flow_files)


def _deeper(paths: list[Path], kinds: tuple[str, ...]) -> str:
    """A hint naming the subdirectories of the given directories that hold logs of ``kinds``, if any."""
    below = []
    for directory in (path for path in paths if path.is_dir()):
        with contextlib.suppress(OSError):
            below += [folder for folder in sorted(directory.iterdir()) if folder.is_dir() and any(
                log_kind(name) in kinds for name in os.listdir(folder))]
    if not below:
        return ""
    if len(below) == 1:
        return f"; but {below[0]}/ holds some (give that directory)"
    return f"; but {', '.join(f'{folder}/' for folder in below)} hold some (give one of them)"


class _Tally:
    """Counts the scanners and incidents of the alerts said."""

    def __init__(self) -> None:
        self.scanners: set[object] = set()
        self.incidents: set[str] = set()

    def __call__(self, alert: Alert) -> None:
        self.scanners.add(alert.scanner)
        self.incidents.add(alert.incident_id)


def _stream(logs: list[ZeekLog], malformed: MalformedLog) -> Iterator[Intake]:
    """Observations of one log kind, file after file, mapped a batch of records at a time (conn records
    decoded as columns stay a :class:`ConnRows`); records without evidence are dropped. Each file's held
    warnings about malformed lines are given once it is read (none for a file with no usable record)."""
    for log in logs:
        for batch in log.batches(wanted_fields):
            found = observations(log, batch)
            if isinstance(found, ConnRows):
                yield found
            else:
                yield from found
        malformed.finish(str(log.path), usable=log.records_usable > 0)


def unusable_logs(logs: list[ZeekLog], malformed: MalformedLog) -> tuple[str, ...]:
    """A line for each log of which not one record could be used, all its lines being malformed."""
    found = []
    for log in logs:
        count = malformed.count(str(log.path))
        if count and not log.records_usable:
            first = malformed.first(str(log.path))
            example = f" (line {first[0]}: {first[1]})" if first is not None else ""
            found.append(f"{log.path}: no usable record: {counted(count, 'malformed line')}{example}")
    return tuple(found)


def _merged(streams: list[Iterator[Intake]]) -> Iterator[Intake]:
    """The streams' records in the order of their times, as :func:`heapq.merge` orders them (the earlier
    stream first on equal times): a run of one stream's conn records that no other stream's next record
    comes between is handed on as one :class:`ConnRows`."""
    if len(streams) == 1:
        yield from streams[0]
        return
    heads: list[tuple[float, int, Intake, int]] = []
    """(time of the next record, stream, item, index of that record in the item) per stream not exhausted."""
    for order, stream in enumerate(streams):
        _push(heads, order, next(stream, None), 0)
    while heads:
        _, order, item, start = heapq.heappop(heads)
        if not isinstance(item, ConnRows):
            yield item
            _push(heads, order, next(streams[order], None), 0)
            continue
        stop, times = start + 1, item.ts
        if heads:
            bound = heads[0][:2]
            while stop < len(times) and (times[stop], order) < bound:
                stop += 1
        else:
            stop = len(times)
        yield item if start == 0 and stop == len(times) else item.part(start, stop)
        if stop < len(times):
            _push(heads, order, item, stop)
        else:
            _push(heads, order, next(streams[order], None), 0)


def _push(heads: list[tuple[float, int, Intake, int]], order: int, item: Intake | None, index: int) -> None:
    if item is None:
        return
    if isinstance(item, ConnRows):
        if len(item) == 0:
            return
        heapq.heappush(heads, (item.ts[index], order, item, index))
    else:
        heapq.heappush(heads, (item.ts, order, item, index))


class _Progress:
    """A progress bar on a terminal's stderr, at most twice a second: how much of the logs (by their size on disk)
    was read, the records and records per second, and the time left at that pace."""

    WIDTH = 24

    def __init__(self, stream: TextIO | None, large: bool, logs: list[ZeekLog]) -> None:
        self._stream = stream if large else None
        self._logs = logs
        self._size = sum(log.path.stat().st_size for log in logs) if self._stream is not None else 0
        self._started = time.monotonic()
        self._next = 0.0

    def __call__(self) -> None:
        if self._stream is None or time.monotonic() < self._next:
            return
        now = time.monotonic()
        self._next = now + 0.5
        records = sum(log.records_read for log in self._logs)
        done = min(1.0, sum(log.bytes_read for log in self._logs) / self._size) if self._size else 0.0
        elapsed = max(now - self._started, 1e-9)
        left = f"{_clock(elapsed * (1 - done) / done)} left" if done > 0.01 else "time left unknown"
        bar = "#" * int(done * self.WIDTH)
        self._stream.write(f"\rreplay [{bar:-<{self.WIDTH}}] {done:4.0%}  {records:,} records  "
                           f"{records / elapsed:,.0f} records/s  {left}\x1b[K")
        self._stream.flush()

    def done(self) -> None:
        if self._stream is not None:
            self._stream.write("\r\x1b[K")
            self._stream.flush()


def _clock(seconds: float) -> str:
    """``1:02:03`` for a duration in seconds."""
    minutes, second = divmod(int(seconds), 60)
    hours, minute = divmod(minutes, 60)
    return f"{hours}:{minute:02d}:{second:02d}"


def replay(paths: list[Path], config: SensorConfig, out: BinaryIO, fmt: str = "ecs",
           progress: TextIO | None = None, progress_bytes: int = PROGRESS_BYTES,
           on_alert: Callable[[Alert], None] | None = None, workers: int | None = None, skip: int = 0,
           engine: str = "processes", scheduler: str | None = None) -> ReplaySummary:
    """Replay Zeek logs through the correlator, writing alerts as JSON lines to ``out``.

    ``progress`` (a terminal's stderr) gets a progress line when the input holds at least
    ``progress_bytes``; ``on_alert`` sees every alert as it is written. With ``workers`` above 1 (by default:
    the machine's cores for inputs of :data:`PARALLEL_BYTES` or more, else 1) the records are judged in that
    many processes by source (:mod:`sensor.workers`), or parts on a Dask cluster with
    ``engine="dask"`` (:mod:`sensor.engine`: a local one, or the one at ``scheduler``), with the same output; where that
    cannot go on (a cap the parts may have reached) the logs are judged again in one process, the ``skip``
    alerts already written left out. Raises :class:`LogReadError` when an input cannot be read at all.
    """
    started = time.monotonic()
    malformed = MalformedLog(hold=True)
    flow_malformed = MalformedLog()
    """Flow logs' bad lines, warned about as they are read (their readers read several files as one)."""
    streams, ignored, skipped, flow_streams = _inputs(paths, config.zeek.logs, config.flows)
    tally = _Tally()
    all_logs: list[ZeekLog] = []
    merged_inputs: list[Iterator[Intake]] = []
    for _kind, files in streams:
        logs = [ZeekLog(path, malformed) for path in files]
        all_logs.extend(logs)
        merged_inputs.append(read_ahead(_stream(logs, malformed)))
    flow_readers = [FlowReader(flow, files, flow_malformed) for flow, files in flow_streams]
    merged_inputs += [read_ahead(reader.blocks()) for reader in flow_readers]
    if not all_logs and not flow_readers:
        *others, last = config.zeek.logs
        kinds = f"{', '.join(others)} or {last}" if others else last
        found = f" (only {', '.join(sorted({path.name for path in ignored}))})" if ignored else ""
        empty = [str(path) for path, reason in skipped if reason == "empty"]
        found += f" ({', '.join(empty)}: empty)" if empty and not ignored else ""
        raise LogReadError(f"no {kinds} logs in {', '.join(map(str, paths))}{found}{_deeper(paths, config.zeek.logs)}")
    size = sum(log.path.stat().st_size for log in all_logs)
    large = progress is not None and size >= progress_bytes
    if workers is None:
        workers = (os.cpu_count() or 1) if size >= PARALLEL_BYTES else 1
    show_progress = _Progress(progress, large, all_logs)
    lateness = max([config.lateness, *(reader.config.lateness for reader in flow_readers)])
    written = 0

    def write(alert: Alert) -> None:
        nonlocal written
        tally(alert)
        written += 1
        if written > skip:
            out.write(render_line(alert, config.name, fmt))
            if on_alert is not None:
                on_alert(alert)

    def read() -> Iterator[Intake]:
        show_progress()
        for item in _merged(merged_inputs):
            yield item
            show_progress()

    if workers > 1 or engine == "dask":
        try:
            if engine == "dask":
                from sensor.engine import judge_on_dask

                judged, alerts, suppressed = judge_on_dask(read(), config.detection, lateness, workers, scheduler,
                                                           write)
            else:
                judged, alerts, suppressed = judge_in_workers(read(), config.detection, lateness, workers, write)
        except Fallback as fallback:
            show_progress.done()
            log.warning("replay: %s; judging the logs again in one process (the %s written stay as they are)",
                        fallback.reason, counted(fallback.written, "alert"))
            return replay(paths, config, out, fmt, progress, progress_bytes, on_alert, skip=fallback.written)
    else:
        correlator = Correlator(config.detection)
        watermark = Watermark(lateness)
        for item in read():
            for alert in correlator.observe_read(item, watermark):
                write(alert)
        if correlator.stats.observations:
            for alert in correlator.flush(watermark.now):
                write(alert)
        judged, alerts, suppressed = correlator.stats.observations, correlator.stats.alerts, correlator.stats.suppressed
    show_progress.done()
    flow_malformed.summarise()
    return ReplaySummary(
        files=len(all_logs) + sum(len(reader.files) for reader in flow_readers),
        records=sum(log.records_usable for log in all_logs) + sum(reader.records_read for reader in flow_readers),
        malformed=malformed.total + flow_malformed.total,
        observations=judged,
        alerts=alerts,
        suppressed=suppressed,
        seconds=time.monotonic() - started,
        scanners=len(tally.scanners),
        incidents=len(tally.incidents),
        ignored=(*ignored, *(log.path for log in all_logs if log.kind not in config.zeek.logs)),
        skipped=tuple(skipped),
        unusable=unusable_logs(all_logs, malformed),
    )
