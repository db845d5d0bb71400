"""The MAC a local listener's host has for a peer: its IPv4 neighbour table (``/proc/net/arp``), read at the
source edge (a honeyport or the mDNS watcher stamps what it observes; the correlator reads no file).

Only complete entries count (the kernel resolved them: flag ``0x2``); the table is read at most once per
:data:`REFRESH` seconds however many touches come in, and a peer it does not hold -- beyond a router, or not
resolved yet -- has no MAC. IPv6 neighbours are not in ``/proc`` and are not read.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TypeVar, overload

from sensor.observations import HoneyportHit, IPAddress, MdnsHost, MdnsQuery

log = logging.getLogger(__name__)

ARP_TABLE = Path("/proc/net/arp")
REFRESH = 1.0
"""Seconds between two reads of the table."""
TABLE_CAP = 65536
"""Entries read from the table, at the most."""
_COMPLETE = 0x2
T = TypeVar("T", HoneyportHit, MdnsQuery)


def parse_arp(text: str) -> dict[str, str]:
    """Address → MAC (lower case, colons) of the complete entries of ``/proc/net/arp``'s text."""
    found: dict[str, str] = {}
    for line in text.splitlines()[1:TABLE_CAP + 1]:
        fields = line.split()
        if len(fields) < 4:
            continue
        try:
            flags = int(fields[2], 16)
        except ValueError:
            continue
        mac = fields[3].lower()
        if flags & _COMPLETE and len(mac) == 17 and mac != "00:00:00:00:00:00":
            found[fields[0]] = mac
    return found


class Neighbours:
    """This host's neighbour table, read when a lookup finds it older than :data:`REFRESH` seconds."""

    def __init__(self, path: Path = ARP_TABLE, clock: Callable[[], float] = time.monotonic) -> None:
        self._path = path
        self._clock = clock
        self._table: dict[str, str] = {}
        self._read_at = float("-inf")
        self._warned = False

    def mac(self, address: IPAddress) -> str:
        """The MAC the table holds for ``address``, or ""."""
        if address.version != 4:
            return ""
        now = self._clock()
        if now >= self._read_at + REFRESH:
            self._read_at = now
            try:
                self._table = parse_arp(self._path.read_text(errors="replace"))
            except OSError as error:
                if not self._warned:
                    self._warned = True
                    log.warning("neighbour table %s unreadable (%s): touches carry no MAC", self._path, error)
                self._table = {}
        return self._table.get(str(address), "")

    @overload
    def stamped(self, observation: T) -> T: ...

    @overload
    def stamped(self, observation: MdnsHost) -> MdnsHost: ...

    def stamped(self, observation: HoneyportHit | MdnsQuery | MdnsHost) -> HoneyportHit | MdnsQuery | MdnsHost:
        """``observation`` with the MAC of its source, where the table has one (an mDNS host announcement is
        passed on as it is)."""
        if isinstance(observation, MdnsHost) or observation.mac:
            return observation
        mac = self.mac(observation.source)
        return replace(observation, mac=mac) if mac else observation
