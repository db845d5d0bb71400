"""The alert: a frozen snapshot of one scanner's incident at one update."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import NamedTuple

from sensor.alerts.catalogue import Action, Rule
from sensor.observations import CloudIdentity, IPAddress, Touch, Transport


class Answered(NamedTuple):
    """A service that answered the scanner: what it now knows is there."""

    target: IPAddress
    transport: Transport
    port: int
    service: str
    """What Zeek named it (``ssh``, ``http``), or empty."""


class Touched(NamedTuple):
    """A honeyport the scanner touched, at its first touch."""

    ts: float
    target: IPAddress
    transport: Transport
    port: int
    profile: str
    touch: Touch
    payload: bytes
    """What the client sent first (attacker-controlled bytes: escape before showing)."""


class IdentityFact(NamedTuple):
    """One thing known of who held the scanner's address at the time of the evidence (``t1046.identity``)."""

    kind: str
    """``mac``, ``host_name``, ``domain``, ``user`` or ``software``."""
    value: str
    """As the network gave it (attacker-influenced text: escape before showing)."""
    source: str
    """Where it was read (:data:`~sensor.observations.IDENTITY_SOURCES`)."""
    first_seen: float
    last_seen: float
    """Its first and last sighting."""
    valid_from: float
    valid_until: float
    """The span it is taken to hold (docs/detection.md, "Identity")."""


class Profile(NamedTuple):
    """What the sensor's state knew of the scanner before its evidence (``t1046.history``)."""

    first_seen: float
    """The source's first sighting the sensor remembers."""
    evidence_began: float
    """The time of the source's first evidence in its current track."""
    seen_before: bool
    """True when it worked normally before it left evidence (or had an earlier incident)."""
    incidents_before: int
    """Incidents of this source that closed before this one."""
    peers: tuple[tuple[IPAddress, Transport, int], ...]
    """The services its first working connections went to (its usual peers and ports), a few."""


SEVERITY_CUTS = (40, 70, 90)
"""The risk scores from which on ``event.severity`` is 2 medium, 3 high, 4 critical (below: 1 low)."""


def severity(risk_score: int) -> int:
    """``event.severity`` of a risk score: 1 low, 2 medium (≥ 40), 3 high (≥ 70), 4 critical (≥ 90)."""
    return 1 + sum(risk_score >= cut for cut in SEVERITY_CUTS)


def severity_band(level: int) -> tuple[int, int]:
    """The risk scores (lowest, highest) whose ``event.severity`` is ``level`` (1 to 4)."""
    bounds = (0, *SEVERITY_CUTS, 101)
    return bounds[level - 1], bounds[level] - 1


@dataclass(frozen=True, slots=True)
class Alert:
    """One update of an incident; ``incident_id`` groups the updates, ``event_id`` names this one."""

    incident_id: str
    update: int
    """1 for the first alert of an incident, then 2, 3, … as it grows."""
    ts: float
    """The correlator's clock when it emitted the update: the watermark over the evidence's event times."""
    action: Action
    rule: Rule
    """The rule that caused this update."""
    rules: tuple[str, ...]
    """Every rule that has fired for this incident, in order."""
    scanner: IPAddress | None
    """The source; ``None`` for the aggregate of many unproven sources (:attr:`sources`)."""
    first_seen: float
    last_seen: float
    probes: int
    failed: int
    half_open: int
    distinct_targets: int
    distinct_ports: int
    targets: tuple[IPAddress, ...]
    ports: tuple[int, ...]
    evidence_sources: tuple[str, ...]
    """Which sensors contributed: ``zeek``, ``honeyport``, ``mdns``, or a flow source (``firewall``,
    ``aws_vpc_flow``, ``gcp_vpc_flow``, ``azure_flow``)."""
    uids: tuple[str, ...]
    honeyport_hits: int
    honeyport_profiles: tuple[str, ...]
    honeyport_nodes: tuple[str, ...]
    """The honeyport nodes that saw the scanner (``name@address`` for remote nodes)."""
    honeyport_payloads: tuple[bytes, ...]
    """A sample of what the scanner sent to honeyports (attacker-controlled bytes: escape before showing)."""
    mdns_names: tuple[str, ...]
    zeek_notes: tuple[str, ...]
    risk_score: int
    confidence: str
    """``low``, ``medium`` or ``high``."""
    authorized: str | None
    """The allowlist reason when the scanner is authorized; ``None`` otherwise."""
    closed: bool = False
    """True for the final update sent when the incident went quiet."""
    shape: Action | None = None
    """An outbound scan's shape (``port_scan``, ``address_scan``, ``network_scan``); ``None`` for any other
    action."""
    transports: tuple[Transport, ...] = ()
    """Transports of the evidence, in the order first seen (empty for mDNS and notices without one)."""
    source_port: int | None = None
    """The scanner's port when the incident is one connection (a single honeyport touch): with the single
    target, port and transport it makes the connection's 5-tuple (``network.community_id``)."""
    aliases: tuple[IPAddress, ...] = ()
    """Other addresses of the scanner's host that evidence came from (linked by its own mDNS announcements)."""
    proven_by: tuple[str, ...] = ()
    """What proves the source address is the scanner's own (``tcp_handshake``, ``local_link``); empty when
    nothing does."""
    unproven: tuple[str, ...] = ()
    """The kinds of evidence whose source address could be forged (``syn_only``, ``udp``, ``lockstep``, …)."""
    lockstep: tuple[IPAddress, ...] = ()
    """Other sources that sent the same probes at the same moments (decoys, as ``nmap -D`` sends)."""
    services_found: int = 0
    """Distinct services that answered the scanner."""
    services: tuple[Answered, ...] = ()
    """A sample of them."""
    honeyports_touched: int = 0
    """Distinct honeyports (target, transport, port) touched."""
    touches: tuple[Touched, ...] = ()
    """A sample of them, first touch first."""
    touch_kinds: tuple[Touch, ...] = ()
    """Every kind of honeyport touch seen (a SYN scan, then nmap -sV's connections: half_open, connect)."""
    arp_asked: int = 0
    """Addresses Zeek saw the scanner ask for by ARP."""
    sources: int = 0
    """For the aggregate of many unproven sources: how many distinct sources (0 for a single scanner)."""
    source_sample: tuple[IPAddress, ...] = ()
    """For the aggregate: a sample of its sources."""
    cloud: tuple[CloudIdentity, ...] = ()
    """The scanner's cloud interfaces or instances named by flow records (ECS ``cloud.*``, ``host.id``)."""
    identity: tuple[IdentityFact, ...] = ()
    """Who held the scanner's address at the time of the evidence (:mod:`sensor.detect.identity`)."""
    history: Profile | None = None
    """What the sensor knew of the scanner before (``None`` for an aggregate of many sources)."""
    created: float | None = None
    """Wall-clock time the sensor emitted the update (``event.created``), set by the live pipeline; ``None``
    in ``replay``, whose ``event.created`` is :attr:`ts`."""

    @property
    def event_id(self) -> str:
        """Deterministic id of this update: a re-delivered alert is recognisably the same one."""
        return hashlib.sha256(f"{self.incident_id}/{self.update}".encode()).hexdigest()[:32]

    @property
    def severity(self) -> int:
        """1 low, 2 medium, 3 high, 4 critical (from ``risk_score``)."""
        return severity(self.risk_score)

    @property
    def proven(self) -> bool:
        """True when some evidence proves the source address."""
        return bool(self.proven_by)

    @property
    def target(self) -> IPAddress | None:
        """The single target of the incident, when there is exactly one."""
        return self.targets[0] if self.distinct_targets == 1 and self.targets else None
