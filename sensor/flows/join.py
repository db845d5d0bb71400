"""Flow records → connection attempts, judged as first contacts (docs/sources.md, "What a record means").

A firewall logs packets and a flow log aggregates them per direction, so neither sees a connection whole. Two
joins put one together, each in bounded state (at most ``cap`` connections waiting; past that the oldest is
judged early) and driven by the records' own times, never the clock:

* :class:`PacketJoin` (a firewall's log): a dropped new connection is a failed contact at once (``drop``:
  unanswered, ``reject``: refused); an accepted one waits ``answer_wait`` seconds for its logged answer -- a
  SYN-ACK or a UDP reply makes it a working connection, a reset or an ICMP unreachable a refused one -- and
  without one it is unanswered. A TCP packet of a new connection without SYN (FIN, NULL, Xmas, ACK) is a
  stealth probe.
* :class:`FlowJoin` (a flow log): the records of both directions of one 5-tuple (from every interface that
  logged them, counted once) within ``pair_within`` seconds make one connection: rejected by a filter, it is an
  unanswered probe (cloud filters drop silently); accepted with no reply and few packets, unanswered; answered by
  a bare reset (TCP flags, or one header-sized packet where the log has no flags), refused; answered by a SYN-ACK
  the originator reset, half-open; else working.

Every source address here is one the packet headers claimed: nothing in a flow log proves it (a SYN-only contact).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from sensor.flows.records import ACK, RST, SYN, FlowRecord, Verdict
from sensor.observations import CloudIdentity, ConnAttempt, IPAddress, Outcome, Transport

ICMP_ECHO = {8: 0, 128: 129}
"""ICMP echo request type → its reply's type (ICMP, ICMPv6)."""
ICMP_UNREACHABLE = frozenset({3, 1})
"""ICMP and ICMPv6 destination unreachable (ICMPv6's 1 is an error only over IPv6: an ICMP error has ``inner``)."""
PROBE_PACKETS = 4
"""An accepted flow without a reply is an unanswered probe up to this many packets (more: a one-way stream)."""
HEADER_BYTES = {4: 40, 6: 60}
"""IP and TCP headers without options: a reset carries nothing more; a SYN-ACK carries at least an MSS option."""
DEFAULT_CAP = 100_000
"""Connections waiting to be judged, at the most."""

Key = tuple[Transport, IPAddress, int, IPAddress, int]
Made = Callable[[ConnAttempt], None]


def _attempt(record: FlowRecord, outcome: Outcome, via: str, origin: CloudIdentity | None = None) -> ConnAttempt:
    return ConnAttempt(record.ts, record.source, record.source_port, record.target, record.target_port,
                       record.transport, outcome, "", "", frozenset(), via, origin)


def _key(record: FlowRecord) -> Key:
    if record.transport is Transport.ICMP:
        return Transport.ICMP, record.source, 0, record.target, 0
    return record.transport, record.source, record.source_port, record.target, record.target_port


class PacketJoin:
    """A firewall's logged packets → attempts (see the module's docstring); ``made`` gets each, in the order
    they are judged."""

    def __init__(self, via: str, made: Made, answer_wait: float = 5.0, cap: int = DEFAULT_CAP) -> None:
        self.via = via
        self.made = made
        self.answer_wait = answer_wait
        self.cap = cap
        self.waiting: OrderedDict[Key, FlowRecord] = OrderedDict()
        """Accepted new connections waiting for their answer, oldest first."""
        self.early = 0
        """Connections judged before their wait was over because the state was full."""

    def add(self, record: FlowRecord) -> None:
        """Judge one logged packet (and every waiting connection its time leaves unanswered)."""
        self.due(record.ts)
        if self._answers(record):
            return
        if record.verdict in (Verdict.ANSWER, Verdict.UNKNOWN):
            return
        outcome = _probe(record)
        if outcome is None:
            return
        if outcome is not Outcome.UNANSWERED or record.verdict is not Verdict.ACCEPT:
            self.made(_attempt(record, Outcome.REJECTED if record.verdict is Verdict.REJECT and outcome is
                               Outcome.UNANSWERED else outcome, self.via))
            return
        key = _key(record)
        if key in self.waiting:  # a retransmission: the first packet's time stands
            return
        if len(self.waiting) >= self.cap:
            self.early += 1
            self._settle(next(iter(self.waiting)), Outcome.UNANSWERED)
        self.waiting[key] = record

    def _answers(self, record: FlowRecord) -> bool:
        """True when ``record`` answers a waiting connection (which it then judges)."""
        if not self.waiting:
            return False
        if record.inner is not None:
            transport, source, source_port, target, target_port = record.inner
            key: Key = (transport, source, source_port, target, target_port)
            if record.source_port in ICMP_UNREACHABLE and key in self.waiting:
                self._settle(key, Outcome.REJECTED)
                return True
            return False
        transport = record.transport
        if transport is Transport.ICMP:
            key = (transport, record.target, 0, record.source, 0)
            if key in self.waiting and record.source_port in ICMP_ECHO.values():
                self._settle(key, Outcome.ESTABLISHED)
                return True
            return False
        key = (transport, record.target, record.target_port, record.source, record.source_port)
        if key not in self.waiting:
            return False
        flags = record.flags or 0
        if transport is Transport.UDP or (flags & SYN and flags & ACK):
            self._settle(key, Outcome.ESTABLISHED)
        elif flags & RST:
            self._settle(key, Outcome.REJECTED)
        else:
            return False
        return True

    def _settle(self, key: Key, outcome: Outcome) -> None:
        self.made(_attempt(self.waiting.pop(key), outcome, self.via))

    def due(self, now: float) -> None:
        """Judge the connections whose answer did not come within ``answer_wait`` of ``now`` as unanswered."""
        waiting = self.waiting
        while waiting:
            key, record = next(iter(waiting.items()))
            if record.ts + self.answer_wait > now:
                return
            self._settle(key, Outcome.UNANSWERED)

    def flush(self) -> None:
        """Judge every waiting connection as it stands (the end of the input)."""
        while self.waiting:
            self._settle(next(iter(self.waiting)), Outcome.UNANSWERED)


def _probe(record: FlowRecord) -> Outcome | None:
    """What a logged packet of a new connection is: UNANSWERED for a first contact (judged by its answer),
    STEALTH for a TCP packet with no SYN (and no reset), None for what opens nothing."""
    if record.transport is Transport.TCP:
        flags = record.flags or 0
        if flags & SYN:
            return None if flags & ACK else Outcome.UNANSWERED
        return None if flags & RST else Outcome.STEALTH
    if record.transport is Transport.ICMP:
        return Outcome.UNANSWERED if record.source_port in ICMP_ECHO and record.inner is None else None
    return Outcome.UNANSWERED


@dataclass(slots=True)
class _Side:
    """One direction of a flow: its counts per logger (the largest is taken), flags and verdicts."""

    by_reporter: dict[str, tuple[int, int]] = field(default_factory=dict)
    flags: int | None = None
    rejected: bool = False
    first: float = float("inf")
    origin: CloudIdentity | None = None
    record: FlowRecord | None = None

    def take(self, packets: int, octets: int, record: FlowRecord) -> None:
        before = self.by_reporter.get(record.reporter, (0, 0))
        self.by_reporter[record.reporter] = (before[0] + packets, before[1] + octets)
        if record.flags is not None:
            self.flags = (self.flags or 0) | record.flags
        if record.verdict in (Verdict.DROP, Verdict.REJECT):
            self.rejected = True
        if record.ts < self.first:
            self.first = record.ts
            self.record = record
        self.origin = self.origin or record.origin

    @property
    def counts(self) -> tuple[int, int]:
        return max(self.by_reporter.values(), default=(0, 0))


@dataclass(slots=True)
class _Flow:
    """Both directions of one 5-tuple: ``sides[0]`` from the lower endpoint."""

    sides: tuple[_Side, _Side] = field(default_factory=lambda: (_Side(), _Side()))
    last: float = float("-inf")
    counted: bool = False
    """A record counted packets (Azure's begin-of-flow tuples count none)."""


class FlowJoin:
    """A flow log's records → attempts (see the module's docstring); ``made`` gets each."""

    def __init__(self, via: str, made: Made, pair_within: float = 120.0, cap: int = DEFAULT_CAP) -> None:
        self.via = via
        self.made = made
        self.pair_within = pair_within
        self.cap = cap
        self.flows: OrderedDict[Key, _Flow] = OrderedDict()
        """Flows waiting to be judged, least recently logged first."""
        self.early = 0

    def add(self, record: FlowRecord) -> None:
        """Count one record into its flow (and judge every flow its time leaves complete)."""
        self.due(record.ts)
        forward = (record.source, record.source_port) <= (record.target, record.target_port)
        key: Key = ((record.transport, record.source, record.source_port, record.target, record.target_port)
                    if forward else
                    (record.transport, record.target, record.target_port, record.source, record.source_port))
        flow = self.flows.get(key)
        if flow is None:
            if len(self.flows) >= self.cap:
                self.early += 1
                self._judge(*self.flows.popitem(last=False))
            flow = self.flows[key] = _Flow()
        else:
            self.flows.move_to_end(key)
        near, far = flow.sides if forward else flow.sides[::-1]
        near.take(record.packets, record.bytes, record)
        if record.reply_packets is not None:
            far.take(record.reply_packets, record.reply_bytes or 0, _reply(record))
        flow.counted = flow.counted or record.reply_packets is not None or record.new
        flow.last = max(flow.last, record.end if record.end is not None else record.ts, record.ts)

    def due(self, now: float) -> None:
        """Judge the flows no record came for within ``pair_within`` seconds before ``now``."""
        flows = self.flows
        while flows:
            key, flow = next(iter(flows.items()))
            if flow.last + self.pair_within > now:
                return
            del flows[key]
            self._judge(key, flow)

    def flush(self) -> None:
        """Judge every waiting flow as it stands (the end of the input)."""
        while self.flows:
            self._judge(*self.flows.popitem(last=False))

    def _judge(self, key: Key, flow: _Flow) -> None:
        first, second = flow.sides
        origin_side, reply_side = (first, second) if _originates(first, second) else (second, first)
        record = origin_side.record
        if record is None or not flow.counted:
            return
        outcome = judge_flow(key[0], record.source.version, origin_side.counts, reply_side.counts,
                             origin_side.flags, reply_side.flags, origin_side.rejected or reply_side.rejected)
        if outcome is not None:
            self.made(_attempt(record, outcome, self.via, origin_side.origin))


def _reply(record: FlowRecord) -> FlowRecord:
    """The reverse direction of a record that counts both."""
    return FlowRecord(record.ts, record.transport, record.target, record.target_port, record.source,
                      record.source_port, Verdict.ACCEPT if record.verdict is Verdict.ACCEPT else record.verdict,
                      end=record.end, reporter=record.reporter)


def _originates(first: _Side, second: _Side) -> bool:
    """Whether ``first`` is the originator's side: the one that sent a SYN without ACK where flags say, else the
    only one logged, else the first logged, else the one whose source port is the higher (an ephemeral port)."""
    if second.record is None:
        return True
    if first.record is None:
        return False
    for side, other in ((first, True), (second, False)):
        flags = side.flags
        if flags is not None and flags & SYN and not flags & ACK:
            return other
    if first.first != second.first:
        return first.first < second.first
    return first.record.source_port >= first.record.target_port


def judge_flow(transport: Transport, version: int, sent: tuple[int, int], received: tuple[int, int],
               flags: int | None, reply_flags: int | None, rejected: bool) -> Outcome | None:
    """The outcome of one flow from what its originator ``sent`` and ``received`` (packets, bytes), the TCP flags
    each way where logged, and whether a filter rejected it; None for what a scan detector cannot judge."""
    packets, octets = sent
    reply_packets, reply_bytes = received
    if rejected:
        return Outcome.UNANSWERED
    if reply_packets == 0:
        return Outcome.UNANSWERED if packets <= PROBE_PACKETS else None
    if transport is not Transport.TCP:
        return Outcome.ESTABLISHED
    header = HEADER_BYTES[version]
    bare = packets <= 2 and octets <= packets * (header + 24)
    if reply_flags is not None:
        if reply_flags & SYN and reply_flags & ACK:
            return Outcome.HALF_OPEN if bare and flags is not None and flags & RST else Outcome.ESTABLISHED
        return Outcome.REJECTED if reply_flags & RST else Outcome.ESTABLISHED
    if bare and reply_packets == 1:
        return Outcome.REJECTED if reply_bytes <= header else Outcome.HALF_OPEN
    return Outcome.ESTABLISHED
