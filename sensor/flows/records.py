"""What a flow log says of one packet or one flow, before it is judged: :class:`FlowRecord`, and the verdict a
firewall or a cloud filter gave it. Plain values; the formats' parsers make them, :mod:`sensor.flows.join` judges
them."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from sensor.observations import CloudIdentity, IPAddress, Transport

FIN, SYN, RST, PSH, ACK, URG = 1, 2, 4, 8, 16, 32
"""TCP flag bits, as AWS's ``tcp-flags`` and a TCP header number them."""
PROTOCOLS = {6: Transport.TCP, 17: Transport.UDP, 1: Transport.ICMP, 58: Transport.ICMP}
"""IANA protocol numbers of the transports a scan detector judges (ICMP and ICMPv6 alike)."""


class Verdict(StrEnum):
    """What the firewall or cloud filter did with the packet or flow."""

    ACCEPT = "accept"
    DROP = "drop"
    """Discarded silently: the scanner hears nothing."""
    REJECT = "reject"
    """Refused with an answer (a TCP reset, an ICMP unreachable)."""
    ANSWER = "answer"
    """A packet a firewall logged as the answer of a connection (``ct direction reply``): it judges the contact."""
    UNKNOWN = "unknown"
    """The log does not say (a netfilter prefix without a verdict word)."""


@dataclass(frozen=True, slots=True)
class FlowRecord:
    """One logged packet (a firewall's log: ``packets`` 1) or one direction of a flow over a capture window (a
    flow log), with the addresses and ports from the packet headers as the logger saw them.

    ``reply_packets``/``reply_bytes`` are set where one record counts both directions (Azure's flow tuples);
    ``flags`` are the TCP flags seen (OR-ed over the window for a flow), None where the log has none. ICMP
    carries its type as ``source_port`` and code as ``target_port`` (as Zeek's conn.log does); an ICMP error names
    the packet it answers in ``inner``."""

    ts: float
    """The packet's time, or the capture window's start: the event time."""
    transport: Transport
    source: IPAddress
    source_port: int
    target: IPAddress
    target_port: int
    verdict: Verdict
    packets: int = 1
    bytes: int = 0
    flags: int | None = None
    reply_packets: int | None = None
    reply_bytes: int | None = None
    end: float | None = None
    """End of the capture window (flows)."""
    reporter: str = ""
    """Who logged it (a network interface, a reporting side): records of one flow from several loggers are counted
    once, not added up."""
    origin: CloudIdentity | None = None
    """The identity of ``source``'s own interface or instance, where the record was captured there."""
    inner: tuple[Transport, IPAddress, int, IPAddress, int] | None = None
    """For an ICMP error: the (transport, source, port, target, port) of the packet it answers."""
    new: bool = True
    """False for a packet a firewall logged that does not open a connection (Azure's continuing flow states)."""
