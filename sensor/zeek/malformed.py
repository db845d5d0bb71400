"""The count of a log's lines that cannot be read: the first few of each file are warned about, the rest
summarised in one line per file, so a garbage file cannot flood stderr. Every reader of logs (replay, the
follower, the report) hands its bad lines here.

A reader that reads whole files (``replay``, ``report``) holds the warnings of each file until it ends
(``hold=True``, then :meth:`MalformedLog.finish`): a file with no usable record at all is then one error
line of the reader's, not a warning per line; the follower of live logs warns at once.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


class MalformedLog:
    """Counts unreadable lines and warns about the first few per file, then only summarises."""

    def __init__(self, warn_first: int = 3, hold: bool = False) -> None:
        self.total = 0
        self._warn_first = warn_first
        self._hold = hold
        self._per_file: dict[str, int] = {}
        self._held: dict[str, list[tuple[int, str]]] = {}

    def report(self, source: str, line_number: int, reason: str) -> None:
        """Count one bad line of ``source``; warn about it (or hold the warning) if it is among the first few
        of that file."""
        self.total += 1
        seen = self._per_file.get(source, 0) + 1
        self._per_file[source] = seen
        if seen <= self._warn_first:
            if self._hold:
                self._held.setdefault(source, []).append((line_number, reason))
            else:
                log.warning("%s:%d: skipped malformed line: %s", source, line_number, reason)

    def count(self, source: str) -> int:
        """The bad lines of ``source`` so far."""
        return self._per_file.get(source, 0)

    def first(self, source: str) -> tuple[int, str] | None:
        """The first bad line of ``source`` (its number and what is wrong with it), while it is held."""
        held = self._held.get(source)
        return held[0] if held else None

    def finish(self, source: str, usable: bool) -> None:
        """The whole of ``source`` is read: warn about its held lines when it had ``usable`` records (else the
        reader reports the file as unusable, in one line) and summarise the rest."""
        if not usable:
            return  # its first bad line stays for :meth:`first`
        held = self._held.pop(source, [])
        for line_number, reason in held:
            log.warning("%s:%d: skipped malformed line: %s", source, line_number, reason)
        count = self._per_file.get(source, 0)
        if count > self._warn_first:
            log.warning("%s: %d malformed lines skipped in all", source, count)

    def summarise(self) -> None:
        """Log one line per file whose bad lines were not all shown (held files are summarised as each is
        finished)."""
        if self._hold:
            return
        for source, count in self._per_file.items():
            if count > self._warn_first:
                log.warning("%s: %d malformed lines skipped in all", source, count)
