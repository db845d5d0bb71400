"""Following flow logs live with the Zeek follower's machinery (:class:`~sensor.zeek.follow.LogFollower`: inode
and fingerprint positions, rotation by rename, copytruncate and gzip, checkpoints): a firewall's log is one live
file and its rotated copies (``kern.log``, ``kern.log.1``, ``kern.log.2.gz``; ``ulogd.json``, ``ulogd.json.1``);
a directory of delivered cloud flow logs has no live file, and each new file in it (at any depth) is read once,
whole, oldest first (an S3 prefix's new objects likewise: :mod:`sensor.flows.s3`).

Each source is one stream named after it (``flows[].name``), so its position sits in the daemon's checkpoint
beside Zeek's. Its join (:mod:`sensor.flows.join`) keeps the connections waiting for an answer or their other
direction across polls; where the log has been quiet for the join's wait (``answer_wait``, ``pair_within``) in
wall time, they are judged as they stand, so a quiet network does not hold its last probes back. What waits in the
join when the daemon is killed is not judged again (at most that wait's worth of records); a stop judges it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from sensor.config import FlowConfig
from sensor.flows.read import FlowParser, make_join
from sensor.flows.records import FlowRecord
from sensor.observations import ConnAttempt, ConnRows
from sensor.zeek.follow import FollowBatch, LogFollower
from sensor.zeek.logs import age_order
from sensor.zeek.malformed import MalformedLog
from sensor.zeek.position import StreamPosition

log = logging.getLogger(__name__)


class FlowIntake:
    """One followed flow source's records on their way to the correlator: its join, the attempts the join made that
    are not handed on yet, and when the source last brought records (a source quiet for the join's wait has its
    waiting connections judged as they stand)."""

    def __init__(self, config: FlowConfig, clock: Callable[[], float]) -> None:
        self.name = config.name
        self._made: list[ConnAttempt] = []
        self.join = make_join(config, self._made.append)
        self._clock = clock
        self._last_read = clock()
        self._wait = config.answer_wait if config.format in ("netfilter", "ulogd") else config.pair_within

    def add(self, records: Iterable[FlowRecord], batch: FollowBatch) -> None:
        """Join ``records``; what they complete goes into ``batch``."""
        count = 0
        for record in records:
            count += 1
            self.join.add(record)
        batch.records[self.name] = batch.records.get(self.name, 0) + count
        self._last_read = self._clock()
        self.hand_on(batch)

    def quiet(self, batch: FollowBatch) -> None:
        """A poll read nothing: where the source has been quiet for the join's wait, judge what waits in it."""
        if self._clock() - self._last_read >= self._wait:
            self.join.flush()
            self.hand_on(batch)

    def close(self) -> FollowBatch:
        """Judge everything the join holds (the daemon is stopping)."""
        batch = FollowBatch([], {}, 0)
        self.join.flush()
        self.hand_on(batch)
        return batch

    def hand_on(self, batch: FollowBatch) -> None:
        if self._made:
            batch.observations.append(ConnRows.of(self._made))
            self._made.clear()


class FlowFollower(LogFollower):
    """Follows one flow source (``flows[]`` with a ``path``): a live file, or a directory of delivered files."""

    def __init__(self, config: FlowConfig, malformed: MalformedLog,
                 streams: Mapping[str, StreamPosition] | None = None, done: frozenset[str] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if config.path is None:
            raise ValueError(f"flows {config.name}: a source without a path cannot be followed")
        self.config = config
        self._path = config.path
        self.delivered = config.path.is_dir()
        self.intake = FlowIntake(config, clock)
        self._parsers: dict[str, FlowParser] = {}
        super().__init__(config.path if self.delivered else config.path.parent, malformed,
                         None if streams is None else {config.name: streams[config.name]} if config.name in streams
                         else {}, done, kinds=(config.name,))
        log.info("flows: following %s (%s%s)", config.path, config.format,
                 ", files delivered into it" if self.delivered else "")

    def live_path(self, kind: str) -> Path | None:
        return None if self.delivered else self._path

    def _candidates(self) -> dict[str, list[Path]]:
        if self.delivered:
            try:
                found = [path for path in self.log_dir.rglob("*") if path.is_file() and not path.name.startswith(".")]
            except OSError as error:
                self._cannot_read(self.log_dir, error)
                found = []
        else:
            live = self._path.name
            try:
                found = [path for path in self.log_dir.iterdir()
                         if path.name == live or (path.name.startswith(f"{live}.") and path.is_file())]
            except OSError as error:
                self._cannot_read(self.log_dir, error)
                found = []
        return {self.config.name: sorted(found, key=age_order)}

    def _parse(self, path: Path, position: StreamPosition, data: bytes, size: int, batch: FollowBatch) -> None:
        parser = self._parsers.get(position.fingerprint)
        if parser is None:
            if len(self._parsers) > 64:
                self._parsers.clear()
            parser = self._parsers[position.fingerprint] = FlowParser(
                self.config.format, self.malformed, str(path), self.config.aws_fields, time.localtime().tm_year)
            if position.offset and self.config.format == "aws":  # the header line, read when the file was begun
                with path.open("rb") as stream:
                    for _ in parser.lines(stream.readline()):
                        pass
        self.intake.add(parser.lines(data[:size]), batch)
        batch.bytes_read += size

    def poll(self) -> FollowBatch:
        """Read what was added since the last poll; judge what waited for an answer that a quiet log no longer
        brings."""
        batch = super().poll()
        if not batch.backlog and not batch.bytes_read:
            self.intake.quiet(batch)
        return batch

    def close(self) -> FollowBatch:
        """Judge everything the join holds (the daemon is stopping)."""
        return self.intake.close()
