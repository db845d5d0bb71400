"""One host, several addresses: which IPv4 and IPv6 addresses the correlator takes for one scanner.

Two addresses are linked when the host proved both: it announced the same mDNS name with both among its
address records, once from each of the two addresses (avahi and mDNSResponder announce on every address
family they use). A name announced from one address only links nothing, so no single packet can tie a
victim's address to a scanner's. The linked group's canonical address (the lowest IPv4, else the lowest
IPv6) names the scanner; the others are its aliases. Bounded: at most :data:`MAX_NAMES` names and
:data:`MAX_LINKED` linked addresses, the least recently announced forgotten first.
"""

from __future__ import annotations

from collections import OrderedDict

from sensor.observations import IPAddress, MdnsHost

MAX_NAMES = 4096
MAX_LINKED = 65536
MAX_SENDERS_PER_NAME = 8


def _rank(address: IPAddress) -> tuple[int, IPAddress]:
    return address.version, address


class HostLinks:
    """The address links learnt from hosts' own announcements."""

    __slots__ = ("_announced", "canonical_of")

    def __init__(self) -> None:
        self._announced: OrderedDict[str, dict[IPAddress, frozenset[IPAddress]]] = OrderedDict()
        """Name to the addresses each sender announced for it."""
        self.canonical_of: OrderedDict[IPAddress, IPAddress] = OrderedDict()
        """Linked address to its group's canonical address (canonical addresses map to themselves)."""

    def canonical(self, address: IPAddress) -> IPAddress:
        """The address that names the host ``address`` belongs to (``address`` itself when unlinked)."""
        return self.canonical_of.get(address, address)

    def announced(self, host: MdnsHost) -> None:
        """Take a host's announcement; link the addresses it has now proved from both ends."""
        senders = self._announced.get(host.name)
        if senders is None:
            if len(self._announced) >= MAX_NAMES:
                self._announced.popitem(last=False)
            senders = self._announced[host.name] = {}
        else:
            self._announced.move_to_end(host.name)
        if host.source not in senders and len(senders) >= MAX_SENDERS_PER_NAME:
            return
        senders[host.source] = frozenset(host.addresses)
        proved = {host.source} | {other for other, addresses in senders.items()
                                  if other != host.source and other in senders[host.source]
                                  and host.source in addresses}
        if len(proved) > 1:
            self._link(proved)

    def _link(self, addresses: set[IPAddress]) -> None:
        group = {self.canonical(address) for address in addresses}
        group |= {address for address, canonical in self.canonical_of.items() if canonical in group}
        group |= addresses
        canonical = min(group, key=_rank)
        for address in sorted(group, key=_rank):
            if address not in self.canonical_of and len(self.canonical_of) >= MAX_LINKED:
                self.canonical_of.popitem(last=False)
            self.canonical_of[address] = canonical
