"""What the network has been seen serving: (target, transport, port) with the time of its latest working
connection, from any client. A failed contact to a port seen serving recently is evidence of an outage
(a server down, a service restarting), not of a probe, and is counted apart from the scan rules' failures.
Bounded: past the cap, the longest-known entries are forgotten first (a service still in use is noted
again at its next working connection).
"""

from __future__ import annotations

from sensor.observations import Transport

_SPACE = {Transport.TCP: 0, Transport.UDP: 1 << 16, Transport.ICMP: 2 << 16}
"""Port numbers of each transport in one integer space."""
_TARGET = 1 << 18
"""A key is the target's :func:`~sensor.observations.address_key` times this, plus the port's place in that
space: one integer (hashed in C)."""


class ServedPorts:
    """A bounded memory of working services, judged at each contact's own time."""

    __slots__ = ("_capacity", "_memory", "_served")

    def __init__(self, memory: float, capacity: int) -> None:
        self._memory = memory
        self._capacity = capacity
        self._served: dict[int, float] = {}

    def __len__(self) -> int:
        return len(self._served)

    def serving(self, target: int, transport: Transport, port: int, ts: float) -> None:
        """A connection to the service at ``ts`` worked (``target``: the address's key)."""
        key = target * _TARGET + _SPACE[transport] + port
        served = self._served
        when = served.get(key)
        if when is None:
            if len(served) >= self._capacity:
                del served[next(iter(served))]
            served[key] = ts
        elif ts > when:
            served[key] = ts

    def recently(self, target: int, transport: Transport, port: int, ts: float) -> bool:
        """True when the service worked within ``memory`` seconds of ``ts`` (before it or after)."""
        when = self._served.get(target * _TARGET + _SPACE[transport] + port)
        return when is not None and abs(ts - when) <= self._memory
