"""What a correlator judging one part of the stream is told instead of finding out: the cross-source facts.

A correlator over the whole stream learns some things from every source at once: which services worked (an
outage is a failed contact to one of them), which probe of a service came just before this one from another
source (lockstep), what the link's hosts usually browse (mDNS). A correlator that judges only some sources
(:mod:`sensor.detect.partition`) cannot learn them from its part, so it is told them, by whoever reads the
whole stream, through these objects, which stand where the learning ones stand:

* :class:`Told` names them, with the addresses the part is about (its identity table learns only of those);
* outages never reach a part (the reader drops them and counts them), so the part's memory of working
  services is :func:`served_by_nobody`;
* :class:`ToldLockstep` answers each unproven probe with the partner the reader found for it;
* :class:`ToldMdns` answers each mDNS question with the rules the reader's detector found it fires.

A new rule whose state crosses sources belongs here too: the reader keeps its state over the whole stream and
the part is told its verdicts (docs/performance.md, "Partitioned replay").
"""

from __future__ import annotations

from collections.abc import Callable

from sensor.config import DetectionConfig
from sensor.detect.lifecycle import Key
from sensor.detect.lockstep import Lockstep
from sensor.detect.mdns import MdnsBrowseDetector
from sensor.detect.order import Order
from sensor.detect.served import ServedPorts
from sensor.detect.tracks import Tracks
from sensor.observations import MdnsQuery


def served_by_nobody() -> ServedPorts:
    """A memory of working services that knows none: no failed contact it judges is an outage (a part is never
    handed one)."""
    return ServedPorts(-1.0, 1)


class ToldLockstep(Lockstep):
    """Lockstep as the reader of the whole stream found it: the partner of each unproven probe, by service,
    source and time (the counting, on this part's tracks, as :class:`~sensor.detect.lockstep.Lockstep` counts)."""

    __slots__ = ("_partners",)

    def __init__(self, tracks: Tracks, partners: dict[tuple[int, Key, float], Key]) -> None:
        super().__init__(tracks)
        self._partners = partners

    def partner(self, service: int, source: Key, ts: float) -> Key | None:
        return self._partners.pop((service, source, ts), None)


class ToldMdns(MdnsBrowseDetector):
    """The mDNS detector as the reader of the whole stream ran it: the rules each question fires, and the
    browses that added up to them."""

    def __init__(self, config: DetectionConfig) -> None:
        super().__init__(config)
        self.fired: dict[MdnsQuery, tuple[list[str], tuple[str, ...]]] = {}
        """Questions that fire rules, to those rules and browses (questions that fire none never reach the part)."""

    def rules_for(self, query: MdnsQuery, now: float) -> list[str]:
        rules, self.browsed = self.fired.pop(query, ([], ()))
        return rules

    def expire(self, now: float) -> None:
        """The reader's detector forgets for itself."""


class Told:
    """What a correlator over one part of the stream is told of the others."""

    __slots__ = ("mdns", "order", "owns", "partners")

    def __init__(self, config: DetectionConfig, owns: Callable[[int], bool]) -> None:
        self.order = Order()
        """The correlator's place in the stream (the part keeps the place of each alert it makes: ``emitted``)."""
        self.owns = owns
        """Whether an address (by :func:`~sensor.observations.address_key`) is one of this part's."""
        self.partners: dict[tuple[int, Key, float], Key] = {}
        """(service, source, time) of a probe to the source that probed it just before, for the probes that have
        one (what :class:`ToldLockstep` answers with)."""
        self.mdns = ToldMdns(config)
