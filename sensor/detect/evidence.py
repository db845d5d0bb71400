"""What the correlator remembers of one source: its track (the random walk over its first contacts) and,
from its first piece of evidence on, an evidence record. Plain bounded state; no rule lives here.
"""

from __future__ import annotations

from collections.abc import Iterable

from sensor.alerts.catalogue import Action
from sensor.observations import CloudIdentity, IPAddress, Transport, key_address

DISTINCT_CAP = 65536
"""Distinct targets and ports counted per source, at the most."""


class Evidence:
    """What one source did that a detector can judge; created at its first piece of evidence, so the many
    sources that only ever make working connections cost a few bytes."""

    __slots__ = (
        "alerted", "alerted_at", "alerted_extent", "cloud", "failed", "failed_by_port", "failed_by_target",
        "failed_pairs",
        "first_peer", "generation", "half_open", "half_open_pairs", "honeyport_hits", "incident_id", "mdns_names",
        "nodes", "payloads", "ports", "profiles", "reported", "rules", "sources", "stealth_pairs", "targets",
        "transports", "uids", "update", "zeek_action", "zeek_notes",
    )

    def __init__(self) -> None:
        self.failed = 0
        self.half_open = 0
        self.targets: set[IPAddress] = set()
        self.ports: set[int] = set()
        self.transports: dict[Transport, None] = {}
        self.first_peer: int | None = None
        """The scanner's port of its first probe: the 5-tuple of a one-connection incident."""
        self.failed_by_target: dict[IPAddress, dict[int, float]] = {}
        self.failed_by_port: dict[tuple[Transport, int], dict[IPAddress, float]] = {}
        self.failed_pairs = 0
        self.half_open_pairs: dict[tuple[IPAddress, int], float] = {}
        self.stealth_pairs: dict[tuple[IPAddress, int], float] = {}
        self.honeyport_hits = 0
        self.profiles: dict[str, None] = {}
        self.nodes: dict[str, None] = {}
        """Honeyport nodes that saw the scanner (``name@address`` for remote ones)."""
        self.payloads: dict[bytes, None] = {}
        """Distinct first bytes clients sent to honeyports (a sample, each capped by the listener)."""
        self.mdns_names: dict[str, None] = {}
        self.zeek_notes: dict[str, None] = {}
        self.uids: list[str] = []
        self.reported = (0, 0, 0, 0)
        """Largest (targets, ports, probes, failed) that Zeek itself reported for this scanner."""
        self.zeek_action: Action | None = None
        self.sources: dict[str, None] = {}
        """Which sensors contributed: zeek, honeyport, mdns, or a flow source (firewall, aws_vpc_flow, …)."""
        self.cloud: dict[CloudIdentity, None] = {}
        """The scanner's cloud interfaces or instances that flow records named (a sample)."""
        self.rules: dict[str, None] = {}
        self.incident_id = ""
        self.generation = 0
        """How many incidents of this source closed before the current one (their evidence goes on counting)."""
        self.update = 0
        self.alerted: tuple[Action, int, int] | None = None
        """(action, rules, evidence sources) at the last alert: a change makes an update due at once."""
        self.alerted_extent = (0, 0, 0, 0)
        """(probes, payloads, targets, ports) at the last alert: new payloads make an update due at once,
        doubled targets or ports one for growth, and any other move one for the final extent."""
        self.alerted_at = float("-inf")
        """The correlator's clock at the last alert (updates for growth alone are spaced by ``update_every``)."""

    def reopen(self) -> None:
        """The incident closed; the evidence stays for the slow rules and the next incident starts from it."""
        self.generation += 1
        self.rules = {}
        self.incident_id = ""
        self.update = 0
        self.alerted = None
        self.alerted_extent = (0, 0, 0, 0)
        self.alerted_at = float("-inf")

    def count(self, targets: Iterable[IPAddress], ports: Iterable[int]) -> None:
        """Add probed targets and ports to the distinct counts (each capped at :data:`DISTINCT_CAP`)."""
        for target in targets:
            if len(self.targets) < DISTINCT_CAP:
                self.targets.add(target)
        for port in ports:
            if len(self.ports) < DISTINCT_CAP:
                self.ports.add(port)

    def probed(self, transport: Transport, source_port: int) -> None:
        """Note a probe's transport, and the scanner's port of its first probe."""
        self.transports.setdefault(transport)
        if self.first_peer is None:
            self.first_peer = source_port

    def sample_uids(self, uids: Iterable[str], limit: int) -> None:
        """Keep Zeek uids up to ``limit`` of them."""
        for uid in uids:
            if uid and len(self.uids) < limit:
                self.uids.append(uid)

    def zeek_said(self, note: str, action: Action) -> None:
        """Zeek itself reported this source (a notice, a t1046.log line)."""
        self.sources.setdefault("zeek")
        self.zeek_notes.setdefault(note)
        self.zeek_action = self.zeek_action or action


class Track:
    """One source (per authorization): the random walk over its first contacts, and its evidence if any."""

    __slots__ = ("_source", "aliases", "authorized", "contacted", "detail", "first_seen", "key", "last_seen", "llr",
                 "probes")

    def __init__(self, source: IPAddress | None, authorized: str | None, key: int | tuple[int, str],
                 ts: float) -> None:
        self._source = source
        self.authorized = authorized
        self.key = key
        """The correlator's key of this track (:data:`sensor.detect.lifecycle.Key`)."""
        self.first_seen = ts
        self.last_seen = ts
        self.llr = 0.0
        self.contacted: dict[int, None] = {}
        """Keys of the targets of its first contacts (:func:`~sensor.observations.address_key`)."""
        self.probes = 0
        self.detail: Evidence | None = None
        self.aliases: tuple[IPAddress, ...] = ()
        """Other addresses of the same host this track's evidence came from (:mod:`sensor.detect.hosts`)."""

    @property
    def source(self) -> IPAddress:
        """The source's address (made from the key when the track was made without it: most tracks never
        need it, only those that alert)."""
        if self._source is None:
            self._source = key_address(self.key if isinstance(self.key, int) else self.key[0])
        return self._source

    def evidence(self) -> Evidence:
        """The evidence record, created on first use."""
        if self.detail is None:
            self.detail = Evidence()
        return self.detail

    def also(self, address: IPAddress) -> None:
        """Evidence came from another address of the same host."""
        if address not in self.aliases and len(self.aliases) < 8:
            self.aliases = (*self.aliases, address)

    def seen(self, ts: float) -> None:
        """Widen the track's span to an observation's own time."""
        if ts < self.first_seen:
            self.first_seen = ts
        elif ts > self.last_seen:
            self.last_seen = ts

    def counts(self) -> tuple[int, int, int, int]:
        """(distinct targets, distinct ports, probes, failed), Zeek's own figures included."""
        detail = self.evidence()
        targets, ports, probes, failed = detail.reported
        return (max(len(detail.targets), targets), max(len(detail.ports), ports),
                max(self.probes, probes), max(detail.failed, failed))

    def extent(self) -> tuple[int, int, int, int]:
        """(probes, payloads sampled, targets, ports): what an update reports the incident's size by."""
        targets, ports, probes, _ = self.counts()
        return probes, len(self.evidence().payloads), targets, ports
