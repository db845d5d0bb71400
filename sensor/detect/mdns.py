"""Pure detection of DNS-SD service browsing from :class:`~sensor.observations.MdnsQuery` observations.

An mDNS link is noisy on purpose: printers, Chromecasts and AirPlay speakers are browsed for all day,
every host probes and announces its own names, and macOS Finder browses ``_smb._tcp`` and
``_afpovertcp._tcp`` for ever, backing off exponentially (RFC 6762 §5.2). So the detector does not alert
on a browse as such; it learns, per host, what that host usually asks, and weighs what is rare:

* **Habit.** A (host, service type) pair is *habitual* once the host has asked for it in at least
  :data:`HABIT_EPISODES` separate episodes (queries more than :data:`EPISODE_GAP` seconds apart) over at
  least :data:`HABIT_SPAN` seconds. A habitual question weighs nothing: the periodic browsing of a
  desktop or of a monitoring script stops counting once it has shown itself to be periodic.
* **Weight.** A browse for a configured sensitive type (``_ssh._tcp``, ``_rfb._tcp`` …) weighs 1: it
  alerts on its own. The sensitive types that desktops browse by themselves (:data:`ROUTINE_TYPES`:
  Finder's file shares, Time Machine, device sync) weigh :data:`ROUTINE_WEIGHT` each, so one host has to
  ask for several of them within the window. Everyday consumer types (:data:`CHATTER_TYPES`) weigh
  nothing; any other type weighs ``1 / mdns_distinct_types``, so that many distinct unusual types alert.
* **Rarity on the link.** A type that is habitual for :data:`POPULAR_HOSTS` other hosts weighs half.
* The weights of the distinct types one host browsed within ``window`` add up; at 1 the host alerts
  (``T1046-MDNS-SENSITIVE`` when a sensitive type contributed, ``T1046-MDNS-MANY-TYPES`` otherwise, and
  ``T1046-MDNS-LEGACY`` instead of the latter, or beside the former, when a tool's browse did).
* **Tools.** A browse sent from a port other than 5353 (legacy unicast: dig, nmap's scripts, a router's
  firmware) weighs :data:`LEGACY_FACTOR` times as much, since a host's mDNS stack sends from 5353; when such
  browses bring a host's weights to 1, ``T1046-MDNS-LEGACY`` says so. One tool question for one
  non-sensitive type is weak evidence that needs corroboration (more types within the window): it never
  alerts alone, however often it repeats, so a router asking for ``_daap._tcp`` a few times an hour from an
  ephemeral port is quiet from its first question on; a tool's browse for a sensitive type, for many types
  or for the type list still alerts at its first question.
* Service-type enumeration (``T1046-MDNS-ENUM``) alerts on its own unless habitual for the host, and a
  lookup of a decoy (``T1046-MDNS-DECOY``) always does.

State is bounded: at most ``max_sources`` hosts (least recently active evicted first), at most
:data:`MAX_TYPES_PER_HOST` types per host, :data:`MAX_POPULAR_TYPES` types in the link-wide table; hosts
idle for ``slow_window`` are forgotten. No clock is read: ``now`` is an argument (the watermark), and the
weights are added up within one window around each question's own time.
"""

from __future__ import annotations

from collections import OrderedDict

from sensor.config import DetectionConfig
from sensor.detect.windows import densest_weight
from sensor.observations import IPAddress, MdnsQuery, decoy_host

ENUMERATION_NAME = "_services._dns-sd._udp.local"
ROUTINE_TYPES = frozenset({
    "_smb._tcp", "_afpovertcp._tcp", "_adisk._tcp", "_apple-mobdev2._tcp", "_webdav._tcp", "_webdavs._tcp",
    "_ftp._tcp", "_nfs._tcp",
})
"""Sensitive types that desktops browse unprompted (Finder, Time Machine, device sync, GVFS)."""
CHATTER_TYPES = frozenset({
    "_airplay._tcp", "_raop._tcp", "_googlecast._tcp", "_ipp._tcp", "_ipps._tcp", "_printer._tcp",
    "_pdl-datastream._tcp", "_scanner._tcp", "_uscan._tcp", "_uscans._tcp", "_spotify-connect._tcp",
    "_companion-link._tcp", "_homekit._tcp", "_hap._tcp", "_hap._udp", "_sleep-proxy._udp",
    "_touch-able._tcp", "_airport._tcp", "_daap._tcp", "_dpap._tcp", "_home-sharing._tcp", "_matter._tcp",
    "_matterc._udp", "_meshcop._udp", "_trel._udp", "_sonos._tcp", "_amzn-wplay._tcp",
    "_androidtvremote2._tcp", "_googlezone._tcp", "_mediaremotetv._tcp", "_rdlink._tcp",
})
"""Everyday consumer service types: browsing for them is not reconnaissance."""
ROUTINE_WEIGHT = 0.25
LEGACY_FACTOR = 2.0
"""How much more a browse sent from a port other than 5353 (a tool, not an mDNS stack) weighs."""
EPISODE_GAP = 10.0
"""Seconds of silence that separate two episodes of one host asking for one type."""
HABIT_EPISODES = 4
HABIT_SPAN = 900.0
"""Seconds between the first and the latest episode before a question becomes habitual."""
POPULAR_HOSTS = 3
MAX_TYPES_PER_HOST = 64
MAX_POPULAR_TYPES = 4096
_BROWSE_TYPES = frozenset({"PTR", "ANY", "*"})
_LOOKUP_TYPES = frozenset({"SRV", "TXT", "A", "AAAA", "ANY", "*"})


def service_type(name: str) -> str | None:
    """The DNS-SD service type a browse name asks for (``_ssh._tcp`` of ``_ssh._tcp.local``), if any."""
    labels = name.lower().rstrip(".").split(".")
    if len(labels) < 3 or labels[-1] != "local" or labels[-2] not in ("_tcp", "_udp"):
        return None
    if not labels[-3].startswith("_"):
        return None
    return f"{labels[-3]}.{labels[-2]}"


class _Habit:
    """How one host has asked one question over time."""

    __slots__ = ("episodes", "first", "last")

    def __init__(self, ts: float) -> None:
        self.first = ts
        self.last = ts
        self.episodes = 1

    def note(self, ts: float) -> None:
        if ts - self.last >= EPISODE_GAP:
            self.episodes += 1
        self.first = min(self.first, ts)
        self.last = max(self.last, ts)

    @property
    def habitual(self) -> bool:
        return self.episodes >= HABIT_EPISODES and self.last - self.first >= HABIT_SPAN


class _Host:
    """What one host usually asks, and the weighed browses it made within the window."""

    __slots__ = ("habits", "last_seen", "recent")

    def __init__(self, ts: float) -> None:
        self.last_seen = ts
        self.habits: OrderedDict[str, _Habit] = OrderedDict()
        self.recent: dict[str, tuple[float, float, bool]] = {}
        """Service type to (last time, weight, whether that weight is a tool's) of the non-habitual browses within
        the window."""

    def note(self, key: str, ts: float) -> _Habit:
        habit = self.habits.get(key)
        if habit is None:
            if len(self.habits) >= MAX_TYPES_PER_HOST:
                evicted, _ = self.habits.popitem(last=False)
                self.recent.pop(evicted.removeprefix("legacy:"), None)
            habit = self.habits[key] = _Habit(ts)
        else:
            habit.note(ts)
            self.habits.move_to_end(key)
        self.last_seen = max(self.last_seen, ts)
        return habit


class MdnsBrowseDetector:
    """Turns mDNS questions into the rule ids they fire, learning per host what is usual."""

    def __init__(self, config: DetectionConfig) -> None:
        self._config = config
        self._sensitive = frozenset(config.mdns_sensitive_types)
        self._decoys = frozenset(config.mdns_decoy_names)
        self._decoy_hosts = frozenset(decoy_host(name.rsplit(".", 3)[0]) for name in config.mdns_decoy_names)
        self._hosts: OrderedDict[IPAddress, _Host] = OrderedDict()
        self._popular: OrderedDict[str, dict[IPAddress, float]] = OrderedDict()
        """Service type to the hosts (and when) for which it is habitual, at most ``POPULAR_HOSTS + 1``."""
        self.browsed: tuple[str, ...] = ()
        """The browse names whose weights made the latest :meth:`rules_for` fire, oldest first (empty when
        the question fired on its own)."""

    @property
    def tracked_hosts(self) -> int:
        """Hosts whose habits are remembered now."""
        return len(self._hosts)

    def sensitive(self, name: str) -> bool:
        """Whether a browse of ``name`` (``_ssh._tcp.local``) is one for a sensitive or routine type; a name that
        is no service type (the type list, a notice of another package) counts as sensitive."""
        browsed = None if name.lower().rstrip(".") == ENUMERATION_NAME else service_type(name)
        return browsed is None or browsed in self._sensitive or browsed in ROUTINE_TYPES

    def rules_for(self, query: MdnsQuery, now: float) -> list[str]:
        """Rule ids this question fires (empty for ordinary chatter); :attr:`browsed` says which browses
        added up to them."""
        self.browsed = ()
        name = query.name.lower().rstrip(".")
        qtype = query.qtype.upper()
        rules: list[str] = []
        if qtype in _LOOKUP_TYPES and (name in self._decoys or name in self._decoy_hosts):
            rules.append("T1046-MDNS-DECOY")
        if qtype not in _BROWSE_TYPES:
            return rules
        if name == ENUMERATION_NAME:
            browsed: str | None = ENUMERATION_NAME
        else:
            browsed = service_type(name) if name.count(".") == 2 else None
        if browsed is None:
            return rules
        host = self._host(query.source, query.ts)
        key = f"legacy:{browsed}" if query.legacy_unicast else browsed
        habit = host.note(key, query.ts)
        if habit.habitual:
            self._note_popular(browsed, query.source, query.ts)
            return rules
        if browsed == ENUMERATION_NAME:
            return [*rules, "T1046-MDNS-ENUM"]
        return rules + self._weigh(query.source, host, browsed, query.legacy_unicast, query.ts, now)

    def expire(self, now: float) -> None:
        """Forget hosts (and link-wide habits) not seen for ``slow_window``."""
        cutoff = now - self._config.slow_window
        while self._hosts:
            source, host = next(iter(self._hosts.items()))
            if host.last_seen >= cutoff:
                break
            del self._hosts[source]
        for browsed, hosts in list(self._popular.items()):
            for source in [s for s, when in hosts.items() if when < cutoff]:
                del hosts[source]
            if not hosts:
                del self._popular[browsed]

    def weight(self, source: IPAddress, browsed: str, legacy_unicast: bool = False) -> float:
        """How much a browse for ``browsed`` by ``source`` counts towards an alert (1 alerts alone), sent from
        port 5353 or (``legacy_unicast``) from another."""
        if browsed in CHATTER_TYPES:
            return 0.0
        if browsed in ROUTINE_TYPES:
            weight = ROUTINE_WEIGHT
        elif browsed in self._sensitive:
            weight = 1.0
        else:
            weight = 1.0 / self._config.mdns_distinct_types
        if legacy_unicast:
            weight = min(1.0, weight * LEGACY_FACTOR)
        others = self._popular.get(browsed, {})
        if len(others) - (source in others) >= POPULAR_HOSTS:
            weight /= 2
        return weight

    def _weigh(self, source: IPAddress, host: _Host, browsed: str, legacy_unicast: bool, ts: float,
               now: float) -> list[str]:
        weight = self.weight(source, browsed, legacy_unicast)
        if weight <= 0.0:
            return []
        window = self._config.window
        last, weighed, legacy = host.recent.get(browsed, (ts, 0.0, False))
        if weight >= weighed or ts - last > window:
            weighed, legacy = weight, legacy_unicast
        host.recent[browsed] = (max(ts, last), weighed, legacy)
        if len(host.recent) > MAX_TYPES_PER_HOST:  # bounded as its habits are: legacy browses kept it growing
            del host.recent[min(host.recent, key=lambda kind: host.recent[kind][0])]
        cutoff = now - 2 * window
        for stale in [t for t, (when, _, _) in host.recent.items() if when < cutoff]:
            del host.recent[stale]
        if densest_weight(((when, amount) for when, amount, _ in host.recent.values()), ts, window) < 1.0 - 1e-9:
            return []
        near = {kind: legacy for kind, (when, _, legacy) in sorted(host.recent.items(), key=lambda item: item[1][0])
                if abs(when - ts) <= window}
        self.browsed = tuple(f"{kind}.local" for kind in near)
        rules = ["T1046-MDNS-LEGACY"] if any(near.values()) else []
        if any(kind in self._sensitive or kind in ROUTINE_TYPES for kind in near):
            return [*rules, "T1046-MDNS-SENSITIVE"]
        return rules or ["T1046-MDNS-MANY-TYPES"]

    def _host(self, source: IPAddress, ts: float) -> _Host:
        host = self._hosts.get(source)
        if host is None:
            if len(self._hosts) >= self._config.max_sources:
                self._hosts.popitem(last=False)
            host = self._hosts[source] = _Host(ts)
        else:
            self._hosts.move_to_end(source)
        return host

    def _note_popular(self, browsed: str, source: IPAddress, ts: float) -> None:
        hosts = self._popular.get(browsed)
        if hosts is None:
            if len(self._popular) >= MAX_POPULAR_TYPES:
                self._popular.popitem(last=False)
            hosts = self._popular[browsed] = {}
        else:
            self._popular.move_to_end(browsed)
        if source in hosts or len(hosts) <= POPULAR_HOSTS:
            hosts[source] = max(ts, hosts.get(source, ts))
