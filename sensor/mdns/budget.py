"""The mDNS watcher's parsing budget: how many questions the shared event loop spends on, per source and in all.

Every question the watcher takes becomes an observation the correlator judges, on the loop the honeyports
and the sinks share; one 64-question packet costs milliseconds. So each packet is weighed before it is
parsed -- one for the packet, one per question its header announces (at most :data:`MAX_COST`) -- against a
token bucket of its source (:data:`SOURCE_RATE` a second, bursts of :data:`SOURCE_BURST`: a browsing host
asks a few dozen questions at a time) and one of the whole link (:data:`LINK_RATE`, bursts of
:data:`LINK_BURST`: forged sources cannot add up past it). A packet over budget is counted and dropped
unparsed, at the cost of reading its header; the first packets of a flood are observed all the same, so the
flooder is seen. Sources are remembered for at most :data:`MAX_SOURCES`, the least recently heard forgotten
first.
"""

from __future__ import annotations

from collections import OrderedDict

from sensor.observations import IPAddress

SOURCE_RATE = 32.0
SOURCE_BURST = 160.0
LINK_RATE = 1024.0
LINK_BURST = 2048.0
MAX_COST = 65
"""What one packet may cost: itself and the 64 questions the watcher takes of it at the most."""
MAX_SOURCES = 4096


def packet_cost(data: bytes) -> int:
    """What parsing ``data`` costs: 1, plus the questions its DNS header announces (within :data:`MAX_COST`)."""
    questions = int.from_bytes(data[4:6], "big") if len(data) >= 12 else 0
    return min(MAX_COST, 1 + questions)


class _Bucket:
    __slots__ = ("stamp", "tokens")

    def __init__(self, tokens: float, stamp: float) -> None:
        self.tokens = tokens
        self.stamp = stamp

    def take(self, cost: float, now: float, rate: float, burst: float) -> bool:
        self.tokens = min(burst, self.tokens + max(0.0, now - self.stamp) * rate)
        self.stamp = now
        if self.tokens < cost:
            return False
        self.tokens -= cost
        return True


class ParseBudget:
    """Token buckets per source and for the link; :meth:`allows` says whether a packet may be parsed."""

    def __init__(self, source_rate: float = SOURCE_RATE, source_burst: float = SOURCE_BURST,
                 link_rate: float = LINK_RATE, link_burst: float = LINK_BURST) -> None:
        self._source_rate, self._source_burst = source_rate, source_burst
        self._link_rate, self._link_burst = link_rate, link_burst
        self._link: _Bucket | None = None
        self._sources: OrderedDict[IPAddress, _Bucket] = OrderedDict()

    def allows(self, source: IPAddress, cost: int, now: float) -> bool:
        """Take ``cost`` from ``source``'s budget and the link's at ``now``; False (nothing taken from the link)
        when either is spent."""
        bucket = self._sources.get(source)
        if bucket is None:
            if len(self._sources) >= MAX_SOURCES:
                self._sources.popitem(last=False)
            bucket = self._sources[source] = _Bucket(self._source_burst, now)
        else:
            self._sources.move_to_end(source)
        if not bucket.take(cost, now, self._source_rate, self._source_burst):
            return False
        if self._link is None:
            self._link = _Bucket(self._link_burst, now)
        if not self._link.take(cost, now, self._link_rate, self._link_burst):
            bucket.tokens += cost
            return False
        return True
