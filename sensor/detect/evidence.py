"""What the correlator remembers of one source: its track (the random walk over its first contacts) and,
from its first piece of evidence on, an evidence record. Plain bounded state; no rule lives here.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from sensor.alerts.catalogue import Action
from sensor.observations import CloudIdentity, IPAddress, Touch, Transport, key_address

DISTINCT_CAP = 65536
"""Distinct targets and ports counted per source, at the most."""
SERVICES_CAP = 4096
"""Distinct services (answering ones, honeyports touched) remembered per incident, at the most."""
NOTES_CAP = 32
"""Distinct Zeek notes kept per incident."""
Service = tuple[IPAddress, Transport, int]
"""A service: target address, transport, port."""
Extent = tuple[int, int, int, int, int, int, int, int]
"""(probes, payloads sampled, targets, ports, services that answered, honeyports touched, mDNS names, identity
learned)."""
NO_EXTENT: Extent = (0, 0, 0, 0, 0, 0, 0, 0)
MAX_NOTE = 64
"""Characters kept of a Zeek note (``Scan::Port_Scan``, ``t1046.log:port_scan``)."""
MAX_UID = 32
"""Characters kept of a Zeek uid (Zeek's own are 18)."""
MAX_NAME = 255
"""Characters kept of an mDNS name (a DNS name has at most 255 octets)."""


class Evidence:
    """What one source did that a detector can judge; created at its first piece of evidence, so the many
    sources that only ever make working connections cost a few bytes."""

    __slots__ = (
        "alerted", "alerted_at", "alerted_extent", "answered", "arp", "began", "cloud", "doubt", "failed",
        "failed_by_port", "failed_by_target", "failed_pairs", "first_peer", "gap", "generation", "half_open",
        "half_open_pairs", "honeyport_hits", "honeyport_pairs", "identity", "incident_id", "lockstep", "mdns_names",
        "nodes", "outside", "payloads", "ports", "profiles", "proof", "reported", "rules", "settled", "sources",
        "stealth_pairs", "targets", "touch_kinds", "touched", "transports", "uids", "update", "zeek_action",
        "zeek_notes", "zeek_outbound",
    )

    def __init__(self, began: float = 0.0) -> None:
        self.began = began
        """The time of the source's first evidence (its track's latest record then)."""
        self.identity = 0
        """How many times something new was learned of who holds the source's address while the incident ran
        (:mod:`sensor.detect.identity`): part of the extent, so the next update carries it."""
        self.failed = 0
        self.half_open = 0
        self.targets: set[IPAddress] = set()
        self.outside = 0
        """How many of :attr:`targets` lie outside ``local_nets`` (an outbound scan's)."""
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
        self.honeyport_pairs: dict[tuple[IPAddress, int], float] = {}
        """Distinct honeyports touched, by (target, port), at their latest touch (for the short window)."""
        self.touched: dict[Service, tuple[float, str, Touch, bytes]] = {}
        """Each honeyport service touched: its first touch's time, its profile, how it was touched (``connect``
        once any touch completed a handshake) and the first bytes any touch sent."""
        self.touch_kinds: dict[Touch, None] = {}
        """Every kind of honeyport touch seen, in the order first seen."""
        self.answered: dict[Service, str] = {}
        """Services that answered the scanner (a handshake, a SYN-ACK, a UDP reply), with the name Zeek gave."""
        self.proof: dict[str, None] = {}
        """What proves the source address is the scanner's own: ``tcp_handshake``, ``local_link``."""
        self.doubt: dict[str, None] = {}
        """Evidence whose source address could be forged: ``syn_only``, ``half_open``, ``no_handshake``,
        ``udp_no_reply``, ``icmp_no_reply``, ``udp_datagram``, ``zeek_report``."""
        self.lockstep: dict[int, int] = {}
        """Other sources (by key) that probed the same services at the same moment, and how many times
        (nmap -D sends every probe from its decoys too); a few at the most."""
        self.arp = 0
        """Most addresses Zeek saw this source ask for by ARP (the package's ARP sweep notices)."""
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
        """What Zeek first reported the source for (a scan's shape, never ``outbound_scan``)."""
        self.zeek_outbound = False
        """Zeek's first report was of an outbound scan."""
        self.sources: dict[str, None] = {}
        """Which sensors contributed: zeek, honeyport, mdns, or a flow source (firewall, aws_vpc_flow, …)."""
        self.cloud: dict[CloudIdentity, None] = {}
        """The scanner's cloud interfaces or instances that flow records named (a sample)."""
        self.rules: dict[str, None] = {}
        self.incident_id = ""
        self.generation = 0
        """How many incidents of this source closed before the current one (their evidence goes on counting)."""
        self.update = 0
        self.alerted: tuple[int, int] | None = None
        """(action rank, severity) reached by the alerts sent: going past either makes an update due at once."""
        self.alerted_extent = NO_EXTENT
        """The :data:`Extent` at the last alert: doubled targets or ports make an update due for growth, any
        other material move (:func:`~sensor.detect.lifecycle.grew`) one for the final extent."""
        self.alerted_at = float("-inf")
        """The correlator's clock at the last alert (updates for growth alone are spaced by ``update_every``)."""
        self.gap = 0.0
        """The scanner's cadence: its longest pause between pieces of evidence, less the time it has been
        active since (a pause of 90 minutes counts until 90 minutes of activity have followed it). Its
        incident's quiet spell is judged by it, so a slow scan's pauses are not the end of it; it depends on
        the evidence's times alone, not on how its records are read."""
        self.settled = False
        """The final extent was sent: the scanner's next probe is news and goes out at once."""

    def reopen(self) -> None:
        """The incident closed; the evidence stays for the slow rules and the next incident starts from it."""
        self.generation += 1
        self.rules = {}
        self.incident_id = ""
        self.update = 0
        self.alerted = None
        self.alerted_extent = NO_EXTENT
        self.alerted_at = float("-inf")
        self.settled = False

    def count(self, targets: Iterable[IPAddress], ports: Iterable[int], outside: bool = False) -> None:
        """Add probed targets (``outside`` ``local_nets`` or not) and ports to the distinct counts (each capped at
        :data:`DISTINCT_CAP`)."""
        for target in targets:
            if len(self.targets) < DISTINCT_CAP and target not in self.targets:
                self.targets.add(target)
                self.outside += outside
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
                self.uids.append(uid[:MAX_UID])

    def zeek_said(self, note: str, action: Action, outbound: bool) -> None:
        """Zeek itself reported this source (a notice, a t1046.log line) for ``action`` (its shape), an
        ``outbound`` scan or not."""
        self.sources.setdefault("zeek")
        if len(self.zeek_notes) < NOTES_CAP:
            self.zeek_notes.setdefault(note[:MAX_NOTE])
        if self.zeek_action is None:
            self.zeek_action, self.zeek_outbound = action, outbound

    def answered_by(self, service: Service, name: str) -> None:
        """A service answered the scanner (``name``: what Zeek called it, if anything)."""
        known = self.answered.get(service)
        if known is None:
            if len(self.answered) < SERVICES_CAP:
                self.answered[service] = name
        elif name and not known:
            self.answered[service] = name

    @property
    def proven(self) -> bool:
        """True when some evidence proves the source address is the scanner's own."""
        return bool(self.proof)


class Track:
    """One source (per authorization): the random walk over its first contacts, and its evidence if any."""

    __slots__ = ("_source", "aliases", "authorized", "contacted", "detail", "first_seen", "key", "known", "last_seen",
                 "llr", "outbound_failed", "probes", "slept", "touched", "usual")

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
        self.outbound_failed = 0
        """Failed outbound contacts made while failures did not dominate its contacts: the internet's ordinary
        failures, counted against its working connections and no evidence (:func:`~sensor.detect.scans.dominated`)."""
        self.detail: Evidence | None = None
        self.aliases: tuple[IPAddress, ...] = ()
        """Other addresses of the same host this track's evidence came from (:mod:`sensor.detect.hosts`)."""
        self.usual: tuple[int, ...] = ()
        """Services (:func:`~sensor.observations.service_key`) of its first working connections before it left any
        evidence, a few (:mod:`sensor.detect.history`)."""
        self.known: tuple[float, int, tuple[int, ...]] | None = None
        """The profile of the source's earlier, forgotten tracks: first sighting, incidents, usual services."""
        self.touched = 0
        """Position in the merged stream of the observation that last touched it (:mod:`sensor.detect.order`): its
        place among the live tracks, least recently active first, in whichever part of the stream it is judged."""
        self.slept = 0
        """Position of the pass of time's own work that made it dormant: with :attr:`touched`, its place among the
        dormant tracks."""

    @property
    def source(self) -> IPAddress:
        """The source's address (made from the key when the track was made without it: most tracks never
        need it, only those that alert)."""
        if self._source is None:
            self._source = key_address(self.key if isinstance(self.key, int) else self.key[0])
        return self._source

    @property
    def scanner(self) -> IPAddress | None:
        """Who the incident is about: the source (``None`` for an aggregate of many sources)."""
        return self.source

    def members(self) -> tuple[Collection[int], list[IPAddress]] | None:
        """For an aggregate of many sources: their keys and a sample of their addresses; ``None`` otherwise."""
        return None

    def evidence(self) -> Evidence:
        """The evidence record, created on first use."""
        if self.detail is None:
            self.detail = Evidence(self.last_seen)
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

    def extent(self) -> Extent:
        """What an update reports the incident's size by."""
        targets, ports, probes, _ = self.counts()
        detail = self.evidence()
        return (probes, len(detail.payloads), targets, ports, len(detail.answered), len(detail.touched),
                len(detail.mdns_names), detail.identity)
