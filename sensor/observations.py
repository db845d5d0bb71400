"""Typed observations: the one vocabulary every source speaks to the correlator.

Each observation is born at its source (a Zeek log line, a honeyport transport, an mDNS packet) and
carries the identity taken there — the source and target address and port — which nothing downstream
overwrites. Times are POSIX seconds as floats, the same clock as Zeek's ``ts``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import partial
from ipaddress import IPv4Address, IPv6Address
from operator import itemgetter
from typing import NamedTuple, TypeVar

IPAddress = IPv4Address | IPv6Address
_IPV6_KEYS = 1 << 128
MDNS_PORT = 5353
"""UDP port of multicast DNS (RFC 6762)."""
PAYLOAD_LIMIT = 64
"""Bytes a honeyport hit keeps of what the client sent (a UDP datagram; a TCP connection's first bytes), the
same for a local listener and a remote node's (an alert's size has a bound: docs/alerts.md)."""
_HOST_LABEL = re.compile(r"[^a-z0-9-]+")


class Transport(StrEnum):
    """Transport protocol of a probe."""

    TCP = "tcp"
    UDP = "udp"
    ICMP = "icmp"


class Outcome(StrEnum):
    """What came of a first contact, as a scan detector sees it."""

    ESTABLISHED = "established"
    """The target answered and the originator went on: a working service."""
    REJECTED = "rejected"
    """TCP RST to the SYN, or ICMP unreachable to a UDP datagram: nothing listens."""
    UNANSWERED = "unanswered"
    """No reply at all: no host, a filtered port, or a closed UDP port behind a silent host."""
    HALF_OPEN = "half_open"
    """SYN-ACKed, then reset by the originator before the handshake completed (nmap -sS). A SYN-ACK the
    capture saw nothing after is not one: a lossy capture shows that of a working connection."""
    STEALTH = "stealth"
    """A TCP probe with no handshake at all -- FIN, NULL, Xmas, ACK, Maimon, CWR- or ECE-only flags --
    answered by a reset or by nothing (nmap -sF/-sN/-sX/-sA/-sM, hping3 -Y/-X). Found nothing, but is not a
    first contact a benign stack makes, so the random walk leaves it to its own rule."""
    OTHER = "other"
    """Nothing a scan detector can judge (mid-stream pickup, ICMP messages, unknown states)."""


class Touch(StrEnum):
    """How a honeyport was touched, which says whether the toucher's address is proven."""

    CONNECT = "connect"
    """A completed TCP handshake (the listener accepted it): the client acknowledged the honeyport's SYN-ACK,
    so the source address is the client's own."""
    HALF_OPEN = "half_open"
    """A SYN answered by the honeyport's SYN-ACK and then reset or abandoned (nmap -sS, masscan): a SYN
    can carry any source address."""
    SYN = "syn"
    """A SYN that got no SYN-ACK (a dark address or port, as Zeek saw it): it can carry any source address."""
    DATAGRAM = "datagram"
    """A UDP datagram: it can carry any source address."""
    UNKNOWN = "unknown"
    """A TCP touch reported by a node that does not say which kind it was: judged as unproven."""


FAILED_OUTCOMES = frozenset({Outcome.REJECTED, Outcome.UNANSWERED})
"""The outcomes of first contacts that found no working service (a set, for hot paths: reading an enum
member off its class costs a Python-level lookup on every access)."""


class ConnAttempt(NamedTuple):
    """One connection (or UDP/ICMP flow) from Zeek's conn.log or a flow log, judged as a first contact.

    A named tuple rather than a frozen dataclass like the other observations: there is one per conn.log
    record, and a tuple is built in C (``tuple.__new__``, 0.25 us) where a frozen dataclass's ``__init__``
    sets each field through ``object.__setattr__`` (1.3 us) -- a fifth of a replay's time. It is as
    immutable; copy one with ``_replace``.
    """

    ts: float
    source: IPAddress
    source_port: int
    target: IPAddress
    target_port: int
    transport: Transport
    outcome: Outcome
    uid: str = ""
    service: str = ""
    zeek_tags: frozenset[str] = frozenset()
    """Values of the package's ``t1046_tags`` conn.log field, empty when Zeek ran without it."""
    via: str = "zeek"
    """Which sensor saw it: ``zeek`` (conn.log), or a flow source (:data:`FLOW_SOURCES`): what the record
    adds to the incident's evidence sources."""
    origin: CloudIdentity | None = None
    """The cloud identity of the scanner's interface or instance, when the flow record names it."""
    source_mac: str = ""
    """The MAC of the first frame's sender (conn.log ``orig_l2_addr``, Zeek's ``mac-logging``), or empty."""


FLOW_SOURCES = ("firewall", "aws_vpc_flow", "gcp_vpc_flow", "azure_flow")
"""The ``via`` of connection attempts read from flow logs (:mod:`sensor.flows`): a Linux firewall's log (netfilter
LOG lines, ulogd2's JSON), AWS VPC Flow Logs, Google Cloud VPC Flow Logs, Azure NSG/VNet flow logs."""


@dataclass(frozen=True, slots=True)
class CloudIdentity:
    """Where in a cloud a flow record was captured, when it is the scanner's own interface or instance: what an
    alert names in ECS ``cloud.*`` and ``host.id``. Every field is the provider's own identifier, or empty."""

    provider: str
    """``aws``, ``gcp`` or ``azure``."""
    account: str = ""
    """AWS account id, Google Cloud project id, Azure subscription id."""
    region: str = ""
    zone: str = ""
    instance: str = ""
    """EC2 instance id, Compute Engine VM name, Azure VM (resource) name."""
    interface: str = ""
    """AWS network interface id (``eni-…``), Azure NIC MAC address."""
    network: str = ""
    """VPC id, VPC network name, Azure virtual network or NSG."""


@dataclass(frozen=True, slots=True)
class ZeekNotice:
    """A scan notice from notice.log: Zeek's ``Scan::*``, simple-scan's, or this package's ``T1046::*``."""

    ts: float
    note: str
    message: str
    source: IPAddress
    target: IPAddress | None = None
    target_port: int | None = None
    count: int | None = None
    uid: str = ""
    sub: str = ""
    """The notice's ``sub`` field: this package writes ``arp`` for an ARP sweep, ``half-open`` for SYN probes."""


@dataclass(frozen=True, slots=True)
class ZeekDetection:
    """One line of this package's t1046.log: a detection (or update) Zeek made itself."""

    ts: float
    scanner: IPAddress
    kind: str
    n_targets: int
    n_ports: int
    n_probes: int
    n_failed: int
    targets: tuple[IPAddress, ...] = ()
    ports: tuple[int, ...] = ()
    first_seen: float = 0.0
    last_seen: float = 0.0
    uids: tuple[str, ...] = ()
    message: str = ""


@dataclass(frozen=True, slots=True)
class HoneyportHit:
    """A touch of a honeyport; addresses and ports come from the transport, never from payload."""

    ts: float
    source: IPAddress
    source_port: int
    target: IPAddress
    target_port: int
    transport: Transport
    profile: str
    payload: bytes = b""
    """The first bytes received, capped by the listener."""
    node: str = ""
    """Name of the honeyport node that saw the touch."""
    touch: Touch = Touch.CONNECT
    """How the honeyport was touched: a completed handshake, a half-open SYN, a datagram."""
    follow_up: bool = False
    """True for a later report of a TCP connection carrying what the client sent after the touch was
    reported (the listener waits up to a second for the first bytes before it reports the touch; a client
    that speaks later is reported again when it does): the touch itself was counted already."""
    mac: str = ""
    """The MAC the listener's host has for the toucher in its neighbour table (lower case, colons), or empty."""


@dataclass(frozen=True, slots=True)
class MdnsQuery:
    """One question of an mDNS query packet (port 5353), as seen by the watcher or by Zeek."""

    ts: float
    source: IPAddress
    source_port: int
    name: str
    qtype: str
    unicast_response: bool = False
    """The QU bit (top bit of qclass): the asker wants a unicast reply."""
    legacy_unicast: bool = False
    """Sent from a port other than 5353 (``dig -p 5353 @224.0.0.251``, nmap's scripts)."""
    target: IPAddress | None = None
    """Destination of the packet: the multicast group or, for a direct query, one host."""
    via: str = "watcher"
    """Which sensor saw it: ``watcher`` (our multicast listener) or ``zeek``."""
    uid: str = ""
    mac: str = ""
    """The MAC the watcher's host has for the asker in its neighbour table (lower case, colons), or empty."""


@dataclass(frozen=True, slots=True)
class MdnsHost:
    """A host's own mDNS announcement of its addresses: the A/AAAA records of one name in a response sent
    from one of those addresses (what avahi and mDNSResponder multicast on every address family they use)."""

    ts: float
    source: IPAddress
    """The packet's sender, from the socket: one of :attr:`addresses`."""
    name: str
    addresses: tuple[IPAddress, ...]


@dataclass(frozen=True, slots=True)
class IdentitySeen:
    """Who holds an address, as one record says at its own time: a DHCP lease's MAC and host names, a DNS
    answer's name, the user a Windows or Kerberos logon names, a client's software, the MAC a frame or the
    neighbour table showed. Every value is what the network said (most of it the client's own claim), capped
    and stripped of control characters where it is read; it names the scanner, never proves anything of it."""

    ts: float
    addresses: tuple[IPAddress, ...]
    """The addresses the record speaks of (several for a DNS answer naming many)."""
    via: str
    """Where it was read: one of :data:`IDENTITY_SOURCES`."""
    mac: str = ""
    """A MAC address, lower case with colons (``02:77:00:00:00:17``)."""
    host_name: str = ""
    """A short host name (DHCP option 12, NTLM's workstation, an mDNS host's name)."""
    domain: str = ""
    """A fully qualified name (DHCP's client FQDN, a DNS answer)."""
    user: str = ""
    """A user name as the record gives it (``CORP\\alice`` for NTLM, ``alice@CORP.TEST`` for Kerberos)."""
    software: str = ""
    """Client software and its version as the client announced it (``curl/7.88.1``)."""
    valid_for: float | None = None
    """Seconds from :attr:`ts` the record vouches for (a DHCP lease's time, a DNS answer's TTL); ``None`` when
    it says nothing of how long (the table's default span applies)."""
    lease: str = ""
    """``ack`` for a DHCP lease granted, ``release`` for one given back: where an address changes hands."""


IDENTITY_SOURCES = ("dhcp", "dns_ptr", "dns_a", "ntlm", "kerberos", "software", "conn", "neighbour", "mdns")
"""The :attr:`IdentitySeen.via` values: dhcp.log, a DNS PTR answer, an A/AAAA answer, ntlm.log, kerberos.log,
software.log, conn.log's ``orig_l2_addr`` (Zeek's ``mac-logging``), the neighbour table of a host with a
honeyport or mDNS listener, an mDNS host's own announcement."""

Observation = ConnAttempt | ZeekNotice | ZeekDetection | HoneyportHit | MdnsQuery | MdnsHost | IdentitySeen

def address_key(address: IPAddress) -> int:
    """One integer per address, IPv4 and IPv6 apart: what the correlator keys its per-address state by (an
    integer hashes in C, an address object only in Python). Addresses read from logs carry theirs
    (``key``, :func:`sensor.zeek.records.address`)."""
    return int(address) if address.version == 4 else int(address) | _IPV6_KEYS


_PORT_SPACES = {Transport.TCP: 0, Transport.UDP: 1 << 16, Transport.ICMP: 2 << 16}
PORT_KEYS = 1 << 18
"""Ports of every transport in one integer space (TCP, then UDP, then ICMP types), below this."""


def service_key(target_key: int, transport: Transport, port: int) -> int:
    """One integer per service -- an address's :func:`address_key`, a transport and a port (an ICMP type)."""
    return target_key * PORT_KEYS + _PORT_SPACES[transport] + port


_SPACE_TRANSPORTS = {space: transport for transport, space in _PORT_SPACES.items()}


def service_of(key: int) -> tuple[IPAddress, Transport, int]:
    """The (address, transport, port) whose :func:`service_key` is ``key``."""
    target, rest = divmod(key, PORT_KEYS)
    return key_address(target), _SPACE_TRANSPORTS[rest & ~0xFFFF], rest & 0xFFFF


def key_address(key: int) -> IPAddress:
    """The address whose :func:`address_key` is ``key`` (an IPv6 zone, which Zeek never logs, is not kept)."""
    return IPv4Address(key) if key < _IPV6_KEYS else IPv6Address(key ^ _IPV6_KEYS)


_NEW_CONN = partial(tuple.__new__, ConnAttempt)
"""A :class:`ConnAttempt` from a tuple of all its fields, built in C (``ConnAttempt(...)`` is Python code)."""


@dataclass(slots=True)
class ConnRows:
    """Many conn.log records at once, one sequence per :class:`ConnAttempt` field (a structure of arrays),
    in the log's order: what a block of a TSV conn.log becomes. The correlator judges them in one call
    (:meth:`~sensor.detect.correlator.Correlator.observe_many`) without a tuple per record; iterating gives
    the records as :class:`ConnAttempt` tuples, equal to those the line-by-line reader makes.

    The fields every record is judged by are lists; the others (addresses, the source port, uid, service)
    are only read for the records the correlator takes the full way, and a reader may hand them as
    sequences that build a value only when it is read (:mod:`sensor.zeek.conncolumns`)."""

    ts: list[float]
    source: Sequence[IPAddress]
    source_port: Sequence[int]
    target: Sequence[IPAddress]
    target_port: list[int]
    transport: list[Transport]
    outcome: list[Outcome]
    uid: Sequence[str]
    service: Sequence[str]
    zeek_tags: list[frozenset[str]]
    source_key: list[int]
    target_key: list[int]
    """:func:`address_key` of each source and target."""
    service_key: list[int]
    """:func:`service_key` of each record's target, transport and port."""
    via: str = "zeek"
    """The :attr:`ConnAttempt.via` of every record of the block (a block comes from one source)."""
    origin: Sequence[CloudIdentity | None] = ()
    """Each record's :attr:`ConnAttempt.origin`; empty where no record names one (every Zeek block)."""
    source_mac: Sequence[str] = ()
    """Each record's :attr:`ConnAttempt.source_mac`; empty where the log has none (Zeek without ``mac-logging``)."""

    @classmethod
    def of(cls, attempts: Iterable[ConnAttempt]) -> ConnRows:
        """The rows of ``attempts`` (all seen by one sensor: the first one's :attr:`ConnAttempt.via` is the block's)."""
        rows = list(attempts)
        via = rows[0].via if rows else "zeek"
        targets = [address_key(row.target) for row in rows]
        origin = [row.origin for row in rows]
        macs = [row.source_mac for row in rows]
        return cls([row.ts for row in rows], [row.source for row in rows], [row.source_port for row in rows],
                   [row.target for row in rows], [row.target_port for row in rows], [row.transport for row in rows],
                   [row.outcome for row in rows], [row.uid for row in rows], [row.service for row in rows],
                   [row.zeek_tags for row in rows], [address_key(row.source) for row in rows], targets,
                   [service_key(target, row.transport, row.target_port) for target, row in zip(targets, rows,
                                                                                                strict=True)],
                   via, origin if any(found is not None for found in origin) else (), macs if any(macs) else ())

    def __len__(self) -> int:
        return len(self.ts)

    def __iter__(self) -> Iterator[ConnAttempt]:
        return map(self.row, range(len(self.ts)))

    def row(self, index: int) -> ConnAttempt:
        """The record at ``index``."""
        return _NEW_CONN((self.ts[index], self.source[index], self.source_port[index], self.target[index],
                          self.target_port[index], self.transport[index], self.outcome[index], self.uid[index],
                          self.service[index], self.zeek_tags[index], self.via,
                          self.origin[index] if self.origin else None,
                          self.source_mac[index] if self.source_mac else ""))

    def pick(self, indices: Sequence[int], cold_only: bool = False) -> ConnRows:
        """The records at ``indices``, in that order (what one part of a parted replay judges); ``cold_only``: only
        the columns the correlator reads for the records it takes the full way, and the tags (the others left
        empty, for a caller that has them as arrays)."""
        def on(values: Sequence[_T]) -> list[_T]:
            return picked(values, indices)  # type: ignore[return-value]

        def hot(values: list[_T]) -> list[_T]:
            return [] if cold_only else on(values)

        return ConnRows(hot(self.ts), picked(self.source, indices), picked(self.source_port, indices),
                        picked(self.target, indices), hot(self.target_port), hot(self.transport), hot(self.outcome),
                        picked(self.uid, indices), picked(self.service, indices), on(self.zeek_tags),
                        hot(self.source_key), hot(self.target_key), hot(self.service_key), self.via,
                        picked(self.origin, indices) if self.origin else (),
                        picked(self.source_mac, indices) if self.source_mac else ())

    def part(self, start: int, stop: int) -> ConnRows:
        """The records from ``start`` up to ``stop``."""
        span = range(start, stop)
        return ConnRows(self.ts[start:stop], [self.source[row] for row in span],
                        [self.source_port[row] for row in span], [self.target[row] for row in span],
                        self.target_port[start:stop], self.transport[start:stop], self.outcome[start:stop],
                        [self.uid[row] for row in span], [self.service[row] for row in span],
                        self.zeek_tags[start:stop], self.source_key[start:stop], self.target_key[start:stop],
                        self.service_key[start:stop], self.via, self.origin[start:stop] if self.origin else (),
                        [self.source_mac[row] for row in span] if self.source_mac else ())


_T = TypeVar("_T")


def picked(values: Sequence[_T], indices: Sequence[int]) -> Sequence[_T]:
    """A column's values at ``indices``: a column that can pick its own (``pick``, as a lazily read one does) picks
    them."""
    pick = getattr(values, "pick", None)
    if pick is not None:
        found: Sequence[_T] = pick(indices)
        return found
    if len(indices) == 1:
        return [values[int(indices[0])]]
    return list(itemgetter(*(indices.tolist() if hasattr(indices, "tolist") else indices))(values))


Intake = Observation | ConnRows
"""What a log reader hands on: single observations, and conn records a block at a time."""


def decoy_host(instance: str) -> str:
    """The host name a decoy's SRV record points at (``backup-nas.local`` for ``Backup NAS``)."""
    label = _HOST_LABEL.sub("-", instance.lower()).strip("-")[:63] or "decoy"
    return f"{label}.local"
