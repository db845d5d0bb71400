"""One host, several addresses: which IPv4 and IPv6 addresses the correlator takes for one scanner.

An IPv4 address and an IPv6 address are linked when both ends say so: the IPv4 address announced an
mDNS name listing the IPv6 address among its address records (avahi publishes its AAAA records over IPv4
by default), and the IPv6 address announced the same name with itself. So a sender can vouch only for
addresses to be named after *it*: an IPv6 host that lists a victim's IPv4 address links nothing. The
linked group's canonical address (the lowest IPv4 address) names the scanner; the others are its
aliases. Bounded: at most :data:`MAX_NAMES` names and :data:`MAX_LINKED` linked addresses, the least
recently announced forgotten first.
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
        for v4, listed in senders.items():
            if v4.version != 4:
                continue
            vouched = {v6 for v6 in listed if v6.version == 6 and v6 in senders.get(v6, ())}
            if vouched:
                self._link({v4, *vouched})

    def _link(self, addresses: set[IPAddress]) -> None:
        group = {self.canonical(address) for address in addresses}
        group |= {address for address, canonical in self.canonical_of.items() if canonical in group}
        group |= addresses
        canonical = min(group, key=_rank)
        for address in sorted(group, key=_rank):
            if address not in self.canonical_of and len(self.canonical_of) >= MAX_LINKED:
                self.canonical_of.popitem(last=False)
            self.canonical_of[address] = canonical
