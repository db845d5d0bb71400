"""Pure detection of DNS-SD service browsing from :class:`~sensor.observations.MdnsQuery` observations."""

from __future__ import annotations

from collections import OrderedDict

from sensor.config import DetectionConfig
from sensor.observations import IPAddress, MdnsQuery

ENUMERATION_NAME = "_services._dns-sd._udp.local"
_BROWSE_TYPES = ("PTR", "ANY", "*")
_LOOKUP_TYPES = ("SRV", "TXT", "A", "AAAA", "ANY", "*")


def service_type(name: str) -> str | None:
    """The DNS-SD service type a browse name asks for (``_ssh._tcp`` of ``_ssh._tcp.local``), if any."""
    labels = name.lower().rstrip(".").split(".")
    if len(labels) < 3 or labels[-1] != "local" or labels[-2] not in ("_tcp", "_udp"):
        return None
    if not labels[-3].startswith("_"):
        return None
    return f"{labels[-3]}.{labels[-2]}"


class MdnsBrowseDetector:
    """Turns mDNS questions into the rule ids they fire, keeping a bounded per-host memory of types seen."""

    def __init__(self, config: DetectionConfig) -> None:
        self._config = config
        self._sensitive = frozenset(config.mdns_sensitive_types)
        self._decoys = frozenset(config.mdns_decoy_names)
        self._types_seen: OrderedDict[IPAddress, dict[str, float]] = OrderedDict()

    def rules_for(self, query: MdnsQuery, now: float) -> list[str]:
        """Rule ids this question fires (empty for ordinary chatter)."""
        name = query.name.lower().rstrip(".")
        qtype = query.qtype.upper()
        rules: list[str] = []
        if name in self._decoys and qtype in _LOOKUP_TYPES:
            rules.append("T1046-MDNS-DECOY")
        if qtype not in _BROWSE_TYPES:
            return rules
        if name == ENUMERATION_NAME:
            rules.append("T1046-MDNS-ENUM")
            return rules
        browsed = service_type(name)
        if browsed is None or name.count(".") != 2:
            return rules
        if browsed in self._sensitive:
            rules.append("T1046-MDNS-SENSITIVE")
        if query.legacy_unicast:
            rules.append("T1046-MDNS-LEGACY")
        if self._distinct_types(query.source, browsed, query.ts, now) >= self._config.mdns_distinct_types:
            rules.append("T1046-MDNS-MANY-TYPES")
        return rules

    def _distinct_types(self, source: IPAddress, browsed: str, ts: float, now: float) -> int:
        seen = self._types_seen.get(source)
        if seen is None:
            if len(self._types_seen) >= self._config.max_sources:
                self._types_seen.popitem(last=False)
            seen = self._types_seen[source] = {}
        else:
            self._types_seen.move_to_end(source)
        seen[browsed] = max(ts, seen.get(browsed, ts))
        cutoff = now - self._config.window
        for stale in [t for t, when in seen.items() if when < cutoff]:
            del seen[stale]
        return len(seen)

    def expire(self, now: float) -> None:
        """Forget hosts idle for longer than the idle timeout."""
        cutoff = now - self._config.idle_timeout
        while self._types_seen:
            source, seen = next(iter(self._types_seen.items()))
            if seen and max(seen.values()) >= cutoff:
                break
            del self._types_seen[source]
