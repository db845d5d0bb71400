"""What the network has been seen serving: each service (:func:`~sensor.observations.service_key`: a
target, transport and port) with the time of its latest working connection, from any client. A failed
contact to a service seen working recently is evidence of an outage (a server down, a service
restarting), not of a probe, and is counted apart from the scan rules' failures. Bounded: past the cap, the
longest-known entries are forgotten first (a service still in use is noted again at its next working
connection).
"""

from __future__ import annotations


class ServedPorts:
    """A bounded memory of working services, judged at each contact's own time."""

    __slots__ = ("_capacity", "_memory", "latest")

    def __init__(self, memory: float, capacity: int) -> None:
        self._memory = memory
        self._capacity = capacity
        self.latest: dict[int, float] = {}
        """The latest working connection's time by service (read directly by the correlator's batch path,
        which writes a time that moved forward itself and leaves a new service to :meth:`serving`)."""

    def __len__(self) -> int:
        return len(self.latest)

    def serving(self, key: int, ts: float) -> None:
        """A connection to the service ``key`` worked at ``ts``."""
        served = self.latest
        when = served.get(key)
        if when is None:
            if len(served) >= self._capacity:
                del served[next(iter(served))]
            served[key] = ts
        elif ts > when:
            served[key] = ts

    def recently(self, key: int, ts: float) -> bool:
        """True when the service ``key`` worked within ``memory`` seconds of ``ts`` (before it or after)."""
        when = self.latest.get(key)
        return when is not None and abs(ts - when) <= self._memory
