"""mDNS packets built with zeroconf's own writer, as real stacks send them."""

from __future__ import annotations

from zeroconf import DNSOutgoing, DNSPointer, DNSQuestion, DNSService, const


def query_packet(*questions: tuple[str, int], unicast: bool = False, probe_of: str | None = None) -> bytes:
    """A query with the given (name, type) questions; ``probe_of`` adds an authority record like a probe."""
    packet = DNSOutgoing(const._FLAGS_QR_QUERY)
    for name, qtype in questions:
        question = DNSQuestion(name, qtype, const._CLASS_IN)
        question.unicast = unicast
        packet.add_question(question)
    if probe_of is not None:
        packet.add_authorative_answer(DNSPointer(probe_of, const._TYPE_PTR, const._CLASS_IN, 120, "host.local."))
    return packet.packets()[0]


def response_packet(name: str) -> bytes:
    """An announcement of one SRV record."""
    packet = DNSOutgoing(const._FLAGS_QR_RESPONSE | const._FLAGS_AA)
    packet.add_answer_at_time(DNSService(name, const._TYPE_SRV, const._CLASS_IN | const._CLASS_UNIQUE, 120, 0, 0,
                                         22, "host.local."), 0)
    return packet.packets()[0]


PTR = const._TYPE_PTR
SRV = const._TYPE_SRV
