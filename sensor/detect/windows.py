"""Window counting judged at each event's own time: the densest span around an event, whatever the order.

A rule such as "12 distinct failed ports on one target within 300 s" is asked each time a contact is
remembered, about the spans of ``window`` seconds that contain that contact's own time — not about the
span that ends at the correlator's clock. Every contact is kept with the newest time it was seen, so once
the contacts that make a dense span have all arrived, the last of them to arrive finds the span, in
whichever order a log (written as connections end), a backlog or a restart delivered them.
"""

from __future__ import annotations

from collections.abc import Iterable


def densest(times: Iterable[float], at: float, window: float) -> int:
    """How many of ``times`` one span of ``window`` seconds that contains ``at`` holds, at the most."""
    return int(densest_weight(((when, 1.0) for when in times), at, window))


def densest_weight(points: Iterable[tuple[float, float]], at: float, window: float) -> float:
    """The largest sum of weights of ``(time, weight)`` points within one span of ``window`` seconds that
    contains ``at`` (the span can start at a point: moving its start right onto the first point inside it
    loses none)."""
    near = sorted(point for point in points if at - window <= point[0] <= at + window)
    best = 0.0
    end = 0
    inside = 0.0
    for when, weight in near:
        if when > at:
            break
        while end < len(near) and near[end][0] <= when + window:
            inside += near[end][1]
            end += 1
        if when + window >= at:
            best = max(best, inside)
        inside -= weight
    return best
