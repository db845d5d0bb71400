"""conn.log records into the correlator's state, one at a time (:meth:`ConnJudge.one`) or a block at a time
(:meth:`ConnJudge.many`, the same verdicts and state, with the common record judged without a tuple of its
own): scope, outages (:mod:`sensor.detect.served`), the source's track, its evidence and the scan rules
(:mod:`sensor.detect.scans`). Pure: times are the records' and the watermark, passed in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from sensor.alerts.alert import Alert
from sensor.config import DetectionConfig
from sensor.detect import scans
from sensor.detect.evidence import SERVICES_CAP, Track
from sensor.detect.history import USUAL_CAP
from sensor.detect.lifecycle import CorrelatorStats, Incidents
from sensor.detect.lockstep import Lockstep
from sensor.detect.order import Order
from sensor.detect.scope import Reach, Scope
from sensor.detect.served import ServedPorts
from sensor.detect.tracks import Tracks
from sensor.observations import (
    FAILED_OUTCOMES,
    ConnAttempt,
    ConnRows,
    IdentitySeen,
    IPAddress,
    Outcome,
    Touch,
    Transport,
)

_TOUCH_TAGS = frozenset({"honeyport", "dark_address"})
"""Values of the Zeek package's conn.log ``t1046_tags`` that make any touch significant."""
_ESTABLISHED, _HALF_OPEN, _STEALTH, _OTHER = Outcome.ESTABLISHED, Outcome.HALF_OPEN, Outcome.STEALTH, Outcome.OTHER
_NONE, _INSIDE, _OUTSIDE = Reach.NONE, Reach.INSIDE, Reach.OUTSIDE
"""Module constants: reading an enum member off its class is a Python-level lookup, and a record's outcome
and its addresses' reach are compared with them for every conn.log record."""
TrackOf = Callable[[IPAddress, int | None, float, float, int | None], tuple[Track, list[Alert]]]
"""The correlator's track of a source for evidence at a time (its links and allowlist decide the key)."""
_ANSWERED = frozenset({Outcome.ESTABLISHED, Outcome.HALF_OPEN})
"""Outcomes in which the target answered: a handshake, a SYN-ACK, a UDP reply."""
_DOUBTS = {
    (Transport.TCP, Outcome.UNANSWERED): "syn_only", (Transport.TCP, Outcome.REJECTED): "syn_only",
    (Transport.TCP, Outcome.HALF_OPEN): "syn_only", (Transport.TCP, Outcome.STEALTH): "no_handshake",
    (Transport.UDP, Outcome.UNANSWERED): "udp", (Transport.UDP, Outcome.REJECTED): "udp",
    (Transport.UDP, Outcome.ESTABLISHED): "udp", (Transport.ICMP, Outcome.UNANSWERED): "icmp",
    (Transport.ICMP, Outcome.ESTABLISHED): "icmp",
}
"""What a probe that proves nothing of its source address is (``t1046.certainty.unproven``): a TCP contact
whose handshake the source never completed, or any UDP or ICMP one (a reply goes to whatever address the
request named, and proves nothing of who sent it)."""
_TOUCH_OF = {(Transport.TCP, Outcome.ESTABLISHED): Touch.CONNECT, (Transport.TCP, Outcome.HALF_OPEN): Touch.HALF_OPEN}
"""How Zeek saw a honeyport or dark address touched (a TCP SYN left unanswered is ``syn``, UDP a datagram)."""


class ConnJudge:
    """The conn.log part of one correlator, sharing its state."""

    def __init__(self, config: DetectionConfig, stats: CorrelatorStats, scope: Scope, served: ServedPorts,
                 walk: scans.RandomWalk, sources: Tracks, incidents: Incidents, track: TrackOf,
                 linked: dict[IPAddress, IPAddress], lockstep: Lockstep,
                 identified: Callable[[IdentitySeen], None], order: Order) -> None:
        self._config = config
        self._order = order
        """The position in the stream of the record being judged (what a track is stamped with when touched)."""
        self._stats = stats
        self._scope = scope
        self._served = served
        self._walk = walk
        self._sources = sources
        self._incidents = incidents
        self._track = track
        self._linked = linked
        """The host links' address-to-canonical map: while it holds anything, keys are the links' to decide."""
        self._lockstep = lockstep
        self._identified = identified
        """Where the MAC a record's frame showed goes (the correlator's identity table)."""

    def one(self, conn: ConnAttempt, now: float, source_key: int, target_key: int, service: int) -> list[Alert]:
        """Judge one record; ``source_key`` and ``target_key`` are its addresses' keys, ``service`` its target
        service's (:func:`~sensor.observations.service_key`)."""
        outcome = conn.outcome
        target = conn.target
        reach = self._scope.contact(conn.source, source_key, target, target_key)
        if outcome is _OTHER or reach is _NONE:
            self._stats.ignored += 1
            return []
        outbound = reach is _OUTSIDE
        if outcome is _ESTABLISHED:
            if not outbound:  # the site's services: the internet's would crowd them out of the memory
                self._served.serving(service, conn.ts)
        elif outcome in FAILED_OUTCOMES and self._served.recently(service, conn.ts):
            self._stats.outages += 1
            return []
        track, alerts = self._track(conn.source, conn.target_port, conn.ts, now, source_key)
        track.probes += 1
        tags = conn.zeek_tags
        if outbound and (outcome is _ESTABLISHED or not scans.dominated(track)):
            if outcome is not _ESTABLISHED:  # the internet's ordinary failure (scans.dominated): counted only
                track.outbound_failed += 1
            return alerts  # a working connection out is the host using the internet: no evidence of a scan
        if outcome is _ESTABLISHED and track.detail is None and not tags:
            if target_key not in track.contacted and len(track.usual) < USUAL_CAP:
                track.usual += (service,)
            fired = self._walk.step(track, target_key, outcome)
            return alerts + self._incidents.update(track, fired, now) if fired else alerts
        config = self._config
        detail = track.evidence()
        detail.count((target,), (conn.target_port,), outside=outbound)
        detail.probed(conn.transport, conn.source_port)
        detail.sample_uids((conn.uid,), config.sample_size)
        detail.sources.setdefault(conn.via)
        if conn.source_mac:
            self._identified(IdentitySeen(conn.ts, (conn.source,), "conn", mac=conn.source_mac))
        if conn.origin is not None and len(detail.cloud) < config.sample_size:
            detail.cloud.setdefault(conn.origin)
        transport = conn.transport
        if outcome is _ESTABLISHED and transport is Transport.TCP:
            if conn.via == "zeek":
                detail.proof.setdefault("tcp_handshake")
            else:  # a firewall or flow log shows the target's answer, not the source's ACK of it
                detail.doubt.setdefault("handshake_unseen")
        else:
            detail.doubt.setdefault(_DOUBTS.get((transport, outcome), "syn_only"))
            if outcome is not _ESTABLISHED:
                self._lockstep.probed(service, track, conn.ts)
        if _TOUCH_TAGS.isdisjoint(tags):
            fired = []
            if outcome in _ANSWERED and transport is not Transport.ICMP:
                detail.answered_by((target, transport, conn.target_port), conn.service)
        else:
            fired = ["T1046-HONEYPORT"]
            detail.honeyport_hits += 1
            key = (target, transport, conn.target_port)
            if key not in detail.touched and len(detail.touched) < SERVICES_CAP:
                touch = _TOUCH_OF.get((transport, outcome), Touch.SYN if transport is Transport.TCP else Touch.DATAGRAM)
                detail.touched[key] = (conn.ts, conn.service, touch, b"")
                detail.touch_kinds.setdefault(touch)
        if "scan" in tags:
            fired.append("T1046-ZEEK-DETECTION")
            detail.zeek_notes.setdefault("conn.log:t1046_tags=scan")
        if outcome is _HALF_OPEN:
            detail.half_open += 1
            fired += scans.distinct_pairs(config, detail, detail.half_open_pairs, target, conn.target_port, conn.ts,
                                          config.half_open_probes, "T1046-HALF-OPEN")
        elif outcome is _STEALTH:
            detail.failed += 1
            fired += scans.distinct_pairs(config, detail, detail.stealth_pairs, target, conn.target_port, conn.ts,
                                          config.stealth_probes, "T1046-STEALTH")
            fired += scans.failed_pair(config, detail, target, conn.transport, conn.target_port, conn.ts)
        elif outcome in FAILED_OUTCOMES:
            detail.failed += 1
            fired += scans.failed_pair(config, detail, target, conn.transport, conn.target_port, conn.ts)
        if outbound:
            fired = scans.outbound_rules(fired)
        else:
            fired += self._walk.step(track, target_key, outcome)
        return alerts + self._incidents.update(track, fired, now, scanning=outcome is not _ESTABLISHED or bool(tags))

    def many(self, rows: ConnRows, nows: Sequence[float], positions: Iterable[int], due: float,
             housekeep: Callable[[float], tuple[list[Alert], float]]) -> list[Alert]:
        """Judge many records in turn, each at its own time with the watermark ``nows[i]`` and at its position
        ``positions[i]`` in the stream: the verdicts and the state :meth:`one` reaches on each of them, at a
        fraction of the cost. ``housekeep(now)`` is time's own work, due first at ``due``, and when it is due
        next. The common record -- a working connection from a source that has left no evidence yet, which only
        moves its random walk -- is judged here; any other (and every record while addresses are linked or an
        allowlist is set, which decide a track's key) goes the way :meth:`one` takes it
        (``tests/detect/test_batch.py`` proves both ways equal)."""
        alerts: list[Alert] = []
        shortcut = not self._linked and not self._config.allowlist
        sources = self._sources
        tracks, dormant, memo, stats = sources.live, sources.dormant, self._scope.memo, self._stats
        serving, latest = self._served.serving, self._served.latest
        walk = self._walk
        step, move_to_end = walk.step, tracks.move_to_end
        cap, success, upper, lower = walk.max_contacts, walk.success, walk.upper, walk.lower
        order = self._order
        for index, (now, ts, source, target, service, outcome, tags, position) in enumerate(zip(
                nows, rows.ts, rows.source_key, rows.target_key, rows.service_key, rows.outcome, rows.zeek_tags,
                positions, strict=True)):
            order.at = position
            if now >= due:
                found, due = housekeep(now)
                alerts += found
            reach = memo.get(target)  # None: not judged yet, which the full way does (and remembers)
            if reach is _OUTSIDE:  # an outbound contact if its source is internal: the full way when unsure
                reach = memo.get(source)
                if reach is _INSIDE and outcome is _ESTABLISHED and shortcut:
                    track = tracks.get(source)
                    if track is not None and track.detail is None:  # a working connection out (ConnJudge.one)
                        move_to_end(source)
                        track.touched = position
                        track.seen(ts)
                        track.probes += 1
                        continue
                reach = _NONE if reach is _OUTSIDE or reach is _NONE else None
            if reach is _NONE or (outcome is _OTHER and reach is _INSIDE):
                stats.ignored += 1
                continue
            if reach is _INSIDE and outcome is _ESTABLISHED and shortcut and not tags:
                track = tracks.get(source)
                if track is None and source not in dormant:  # a new source: its first working connection
                    serving(service, ts)
                    track, found = sources.keyed(source, None, None, ts, now)
                    if found:
                        alerts += found
                    track.probes += 1
                    track.usual = (service,)
                    fired = step(track, target, outcome)
                    if fired:
                        alerts += self._incidents.update(track, fired, now)
                    continue
                if track is not None and track.detail is None:
                    when = latest.get(service)
                    if when is None:
                        serving(service, ts)
                    elif ts > when:
                        latest[service] = ts
                    move_to_end(source)
                    track.touched = position
                    if ts < track.first_seen:
                        track.first_seen = ts
                    elif ts > track.last_seen:
                        track.last_seen = ts
                    track.probes += 1
                    contacted = track.contacted
                    if target not in contacted:  # a working first contact: the walk's step down (RandomWalk.step)
                        known = len(contacted)
                        contacted[target] = None
                        if known >= cap:
                            del contacted[next(iter(contacted))]
                        if len(track.usual) < USUAL_CAP:
                            track.usual += (service,)
                        llr = track.llr + success
                        if llr >= upper:
                            track.llr = llr
                            alerts += self._incidents.update(track, ["T1046-TRW"], now)
                        else:
                            track.llr = 0.0 if llr <= lower else llr
                    continue
            found = self.one(rows.row(index), now, source, target, service)
            if found:
                alerts += found
        return alerts
