"""The count of a log's lines that cannot be read: the first few of each file are warned about, the rest
summarised in one line per file, so a garbage file cannot flood stderr. Every reader of logs (replay, the
follower, the report) hands its bad lines here."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


class MalformedLog:
    """Counts unreadable lines and warns about the first few per file, then only summarises."""

    def __init__(self, warn_first: int = 3) -> None:
        self.total = 0
        self._warn_first = warn_first
        self._per_file: dict[str, int] = {}

    def report(self, source: str, line_number: int, reason: str) -> None:
        """Count one bad line of ``source``; log it if it is among the first few of that file."""
        self.total += 1
        seen = self._per_file.get(source, 0) + 1
        self._per_file[source] = seen
        if seen <= self._warn_first:
            log.warning("%s:%d: skipped malformed line: %s", source, line_number, reason)

    def summarise(self) -> None:
        """Log one line per file whose bad lines were not all shown."""
        for source, count in self._per_file.items():
            if count > self._warn_first:
                log.warning("%s: %d malformed lines skipped in all", source, count)
