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


def address_packet(host: str, *addresses: str) -> bytes:
    """A host's announcement of its own addresses (A and AAAA records), as avahi sends it."""
    from ipaddress import ip_address

    from zeroconf import DNSAddress

    packet = DNSOutgoing(const._FLAGS_QR_RESPONSE | const._FLAGS_AA)
    for address in addresses:
        parsed = ip_address(address)
        packet.add_answer_at_time(DNSAddress(host, const._TYPE_A if parsed.version == 4 else const._TYPE_AAAA,
                                             const._CLASS_IN | const._CLASS_UNIQUE, 120, parsed.packed), 0)
    return packet.packets()[0]
