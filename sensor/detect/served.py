"""What the network has been seen serving: (target, transport, port) with the time of its latest working
connection, from any client. A failed contact to a port seen serving recently is evidence of an outage
(a server down, a service restarting), not of a probe, and is counted apart from the scan rules' failures.
Bounded: the least recently served entries are forgotten first.
"""

from __future__ import annotations

from collections import OrderedDict

from sensor.observations import IPAddress, Transport

_Service = tuple[IPAddress, Transport, int]


class ServedPorts:
    """A bounded memory of working services, judged at each contact's own time."""

    __slots__ = ("_capacity", "_memory", "_served")

    def __init__(self, memory: float, capacity: int) -> None:
        self._memory = memory
        self._capacity = capacity
        self._served: OrderedDict[_Service, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._served)

    def serving(self, target: IPAddress, transport: Transport, port: int, ts: float) -> None:
        """A connection to the service at ``ts`` worked."""
        key = (target, transport, port)
        served = self._served
        when = served.get(key)
        if when is None:
            if len(served) >= self._capacity:
                served.popitem(last=False)
            served[key] = ts
        else:
            served[key] = max(when, ts)
            served.move_to_end(key)

    def recently(self, target: IPAddress, transport: Transport, port: int, ts: float) -> bool:
        """True when the service worked within ``memory`` seconds of ``ts`` (before it or after)."""
        when = self._served.get((target, transport, port))
        return when is not None and abs(ts - when) <= self._memory
