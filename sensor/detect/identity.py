"""Who holds an address, bound to time: a bounded table of address → facts (MAC, host names, FQDN, users,
client software), each with where it was read and the span it is taken to hold, so an alert names the
identity valid at its evidence's time (docs/detection.md, "Identity").

A fact is a value one source gave for an address (:class:`~sensor.observations.IdentitySeen`); sightings of
the same value from the same source widen one fact. It holds from ``identity_hold`` before its first sighting
to ``identity_hold`` after its last one (a DNS answer at least its TTL; a DHCP lease from its grant to its
end). An address changes hands where a lease is released or granted to another MAC: facts never reach
across such a change, so the evidence of a scan is named by the lease of its own time, whatever came after.

Bounds: at most ``max_identities`` addresses (the least recently learned forgotten first), :data:`PER_KIND`
facts of each kind per address (the least recently seen forgotten first), :data:`CHANGES_CAP` lease events
per address; facts whose span ended ``slow_window`` ago are forgotten. Pure: times are the records', ``now``
the watermark, passed in.
"""

from __future__ import annotations

from bisect import bisect_right, insort
from collections import OrderedDict
from collections.abc import Callable, Iterable

from sensor.alerts.alert import IdentityFact
from sensor.config import DetectionConfig
from sensor.detect.order import NONE_AFTER, Order
from sensor.observations import IdentitySeen, address_key

KINDS = ("mac", "host_name", "domain", "user", "software")
"""The kinds of fact, in the order an alert lists them."""
RANK = {"dhcp": 0, "dns_ptr": 1, "neighbour": 2, "conn": 3, "ntlm": 4, "kerberos": 5, "mdns": 6, "dns_a": 7,
        "software": 8}
"""Which source names a kind first (ECS ``source.mac``, ``source.domain``): a lease the DHCP server granted, then a
reverse lookup, then what the link showed, then the client's own claims; an A answer last (any name can point
anywhere)."""
PER_KIND = 4
"""Facts of one kind kept per address (a password spray names many users: the latest few are kept)."""
CHANGES_CAP = 8
"""Lease events (grants, releases) kept per address, the newest."""


class _Fact:
    """One value one source gave for an address, over its sightings."""

    __slots__ = ("first", "last", "until")

    def __init__(self, ts: float, until: float) -> None:
        self.first = ts
        self.last = ts
        self.until = until


class _Holder:
    """What is known of who held one address."""

    __slots__ = ("changes", "facts", "latest", "learned")

    def __init__(self) -> None:
        self.facts: dict[tuple[str, str, str], _Fact] = {}
        """(kind, value, source) → its fact."""
        self.changes: list[tuple[float, str]] = []
        """Lease events in time order: (time, MAC) of a grant, (time, "") of a release."""
        self.latest = float("-inf")
        """The latest end of any fact's span (for expiry)."""
        self.learned = (0, 0)
        """Position of the record that last told something of it, and of the address in that record: its place
        among the holders, least recently learned first."""

    @property
    def counts_until(self) -> float:
        """When the last of its facts or lease events stops counting (before ``slow_window`` passes)."""
        return max(self.latest, self.changes[-1][0] if self.changes else float("-inf"))

    def boundaries(self) -> list[float]:
        """Where the address changed hands: each release, and each grant after a release or to another MAC."""
        found: list[float] = []
        previous: str | None = None
        for when, mac in self.changes:
            if not mac or (previous is not None and mac != previous):
                found.append(when)
            previous = mac
        return found


class Identities:
    """The identity table of one correlator."""

    def __init__(self, config: DetectionConfig, order: Order | None = None,
                 owns: Callable[[int], bool] | None = None) -> None:
        self._order = Order() if order is None else order
        self._owns = owns
        """Which addresses (by key) this table is about (``None``: all): a correlator judging part of the stream
        learns only of its own sources' addresses (:mod:`sensor.detect.partition`)."""
        self.peak = 0
        """The most addresses kept at once (what says whether ``max_identities`` was ever reached)."""
        self._hold = config.identity_hold
        self._cap = config.max_identities
        self._retention = config.slow_window
        self._holders: OrderedDict[int, _Holder] = OrderedDict()
        self.evicted = 0
        """Addresses forgotten because the cap was reached."""

    def __len__(self) -> int:
        return len(self._holders)

    def learn(self, seen: IdentitySeen) -> list[int]:
        """Take in what a record says; the keys of the addresses for which it told something new."""
        values = [(kind, value) for kind, value in (("mac", seen.mac), ("host_name", seen.host_name),
                                                    ("domain", seen.domain), ("user", seen.user),
                                                    ("software", seen.software)) if value]
        changed: list[int] = []
        owns = self._owns
        for index, address in enumerate(seen.addresses):
            key = address_key(address)
            if owns is not None and not owns(key):
                continue
            holder = self._holder(key)
            holder.learned = (self._order.at, index)
            if seen.lease:
                insort(holder.changes, (seen.ts, seen.mac if seen.lease == "ack" else ""))
                del holder.changes[:-CHANGES_CAP]
                changed.append(key)
            if seen.lease == "release":
                continue
            for kind, value in values:
                if self._sighted(holder, kind, value, seen):
                    changed.append(key)
        return list(dict.fromkeys(changed))

    def _holder(self, key: int) -> _Holder:
        holder = self._holders.get(key)
        if holder is None:
            if len(self._holders) >= self._cap:
                self._holders.popitem(last=False)
                self.evicted += 1
            holder = self._holders[key] = _Holder()
            self.peak = max(self.peak, len(self._holders))
        else:
            self._holders.move_to_end(key)
        return holder

    def _sighted(self, holder: _Holder, kind: str, value: str, seen: IdentitySeen) -> bool:
        """One sighting of a value; True when the value is new for the address."""
        hold = self._hold
        if seen.via == "dhcp":
            until = seen.ts + (seen.valid_for if seen.valid_for else hold)
        else:
            until = seen.ts + max(hold, seen.valid_for or 0.0)
        holder.latest = max(holder.latest, until)
        fact = holder.facts.get((kind, value, seen.via))
        if fact is not None:
            fact.first, fact.last = min(fact.first, seen.ts), max(fact.last, seen.ts)
            fact.until = max(fact.until, until)
            return False
        same = [entry for entry in holder.facts if entry[0] == kind]
        if len(same) >= PER_KIND:
            del holder.facts[min(same, key=lambda entry: holder.facts[entry].last)]
        holder.facts[(kind, value, seen.via)] = _Fact(seen.ts, until)
        return True

    def at(self, keys: Iterable[int], start: float, end: float, limit: int) -> tuple[IdentityFact, ...]:
        """The facts that held for any of the addresses ``keys`` during [``start``, ``end``], within the lease of
        ``end`` (the newest evidence): by kind (:data:`KINDS`), then source (:data:`RANK`), newest first; at most
        ``limit`` of each kind."""
        found: list[tuple[int, int, float, IdentityFact]] = []
        for key in keys:
            holder = self._holders.get(key)
            if holder is None:
                continue
            boundaries = holder.boundaries()
            at = bisect_right(boundaries, end)
            low = boundaries[at - 1] if at else float("-inf")
            high = boundaries[at] if at < len(boundaries) else float("inf")
            for (kind, value, via), fact in holder.facts.items():
                first = max(fact.first - (0.0 if via == "dhcp" else self._hold), low)
                until = min(fact.until, high)
                if fact.last < low or fact.first >= high or first > end or until < start:
                    continue
                found.append((KINDS.index(kind), RANK[via], -fact.last,
                              IdentityFact(kind, value, via, fact.first, fact.last, first, until)))
        found.sort(key=lambda entry: entry[:3])
        kept: list[IdentityFact] = []
        counts = dict.fromkeys(KINDS, 0)
        for *_, named in found:
            if counts[named.kind] < limit and named not in kept:
                counts[named.kind] += 1
                kept.append(named)
        return tuple(kept)

    def expiry(self, now: float) -> tuple[tuple[int, int] | None, bool]:
        """Where :meth:`expire` at ``now`` stops when this table is all there is: the place of the least recently
        learned holder whose facts still count; and whether none would go whatever the bound."""
        cutoff = now - self._retention
        for index, holder in enumerate(self._holders.values()):
            if holder.counts_until >= cutoff:
                return holder.learned, index == 0
        return None, not self._holders

    def expire(self, now: float, bound: tuple[float, float] = (NONE_AFTER, NONE_AFTER)) -> None:
        """Forget the addresses all of whose facts ended ``slow_window`` before ``now`` (least recently learned
        first, up to the first that still counts, here or anywhere: ``bound``)."""
        cutoff = now - self._retention
        holders = self._holders
        while holders:
            key, holder = next(iter(holders.items()))
            if holder.counts_until >= cutoff or holder.learned >= bound:
                break
            del holders[key]
