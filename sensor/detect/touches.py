"""Honeyport touches into the correlator's state: the toucher's track and evidence (what was touched,
when, how, with what first bytes, and what that proves of the source address), the honeyport rules
(``T1046-HONEYPORT``, ``T1046-HONEYPORTS``), lockstep partners, and the aggregate that many unproven
touchers fold into (:mod:`sensor.detect.spray`). Pure: times are the touches' and the watermark, passed in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from sensor.alerts.alert import Alert
from sensor.config import DetectionConfig
from sensor.detect import scans
from sensor.detect.conns import TrackOf
from sensor.detect.evidence import SERVICES_CAP, Track
from sensor.detect.lifecycle import CorrelatorStats, Incidents
from sensor.detect.lockstep import Lockstep
from sensor.detect.spray import Spray
from sensor.detect.tracks import Tracks
from sensor.observations import PAYLOAD_LIMIT, HoneyportHit, IdentitySeen, IPAddress, Touch, address_key, service_key

_CONNECT = Touch.CONNECT
_DOUBTS = {Touch.HALF_OPEN: "syn_only", Touch.SYN: "syn_only", Touch.DATAGRAM: "udp",
           Touch.UNKNOWN: "unreported_touch"}
"""What a honeyport touch that proves nothing of its source address is, in ``t1046.certainty.unproven``."""


class TouchJudge:
    """The honeyport part of one correlator, sharing its state."""

    def __init__(self, config: DetectionConfig, stats: CorrelatorStats, sources: Tracks, incidents: Incidents,
                 track: TrackOf, linked: dict[IPAddress, IPAddress], lockstep: Lockstep,
                 identified: Callable[[IdentitySeen], None]) -> None:
        self._config = config
        self._stats = stats
        self._sources = sources
        self._incidents = incidents
        self._track = track
        self._linked = linked
        self._lockstep = lockstep
        self._identified = identified
        self._spray = Spray(config)
        """Honeyport touches of many unproven sources at once: one aggregate incident."""

    def one(self, hit: HoneyportHit, now: float) -> list[Alert]:
        """Judge one touch (or the follow-up that brings what its client sent later)."""
        if len(hit.payload) > PAYLOAD_LIMIT:  # what any listener keeps, whoever reported the touch
            hit = replace(hit, payload=hit.payload[:PAYLOAD_LIMIT])
        touch = hit.touch
        if touch is not _CONNECT and not hit.follow_up:
            source_key = address_key(self._linked.get(hit.source, hit.source))
            if self._spray.joins(source_key, hit.ts) and self._has_no_evidence(source_key):
                aggregate, alerts = self._spray.aggregate(self._sources, hit, now)
                self._stats.aggregated += 1
                self._count(aggregate, hit)
                return alerts + self._incidents.update(aggregate, ["T1046-HONEYPORT-MANY-SOURCES"], now)
        track, alerts = self._track(hit.source, hit.target_port, hit.ts, now, None)
        if hit.mac:
            self._identified(IdentitySeen(hit.ts, (hit.source,), "neighbour", mac=hit.mac))
        if hit.follow_up:
            self._late_bytes(track, hit)
            return alerts + self._incidents.update(track, [], now)
        fired = self._count(track, hit)
        if touch is not _CONNECT:
            self._lockstep.probed(service_key(address_key(hit.target), hit.transport, hit.target_port), track, hit.ts)
        return alerts + self._incidents.update(track, fired, now)

    def _late_bytes(self, track: Track, hit: HoneyportHit) -> None:
        """What a client sent after its touch was reported: a sample, tied to the honeyport it touched."""
        detail = track.evidence()
        if hit.payload and len(detail.payloads) < self._config.sample_size:
            detail.payloads.setdefault(hit.payload)
        service = (hit.target, hit.transport, hit.target_port)
        touched = detail.touched.get(service)
        if touched is not None and not touched[3]:
            detail.touched[service] = (*touched[:3], hit.payload)

    def _count(self, track: Track, hit: HoneyportHit) -> list[str]:
        """Count a touch in ``track``'s evidence; the rules it fires."""
        config = self._config
        sample = config.sample_size
        detail = track.evidence()
        track.probes += 1
        detail.count((hit.target,), (hit.target_port,))
        detail.probed(hit.transport, hit.source_port)
        detail.honeyport_hits += 1
        detail.sources.setdefault("honeyport")
        if hit.payload and len(detail.payloads) < sample:
            detail.payloads.setdefault(hit.payload)
        if len(detail.profiles) < sample:
            detail.profiles.setdefault(hit.profile)
        if hit.node and len(detail.nodes) < sample:
            detail.nodes.setdefault(hit.node)
        service = (hit.target, hit.transport, hit.target_port)
        touched = detail.touched.get(service)
        if touched is None:
            if len(detail.touched) < SERVICES_CAP:
                detail.touched[service] = (hit.ts, hit.profile, hit.touch, hit.payload)
        elif (hit.touch is _CONNECT and touched[2] is not _CONNECT) or (hit.payload and not touched[3]):
            first, profile, touch, payload = touched  # a SYN scan's half-open touch, then -sV's connection
            detail.touched[service] = (first, profile, _CONNECT if hit.touch is _CONNECT else touch,
                                       payload or hit.payload)
        detail.touch_kinds.setdefault(hit.touch)
        if hit.touch is _CONNECT:
            detail.proof.setdefault("tcp_handshake")
        else:
            detail.doubt.setdefault(_DOUBTS[hit.touch])
            if hit.touch is Touch.HALF_OPEN:
                detail.half_open += 1
        return ["T1046-HONEYPORT", *scans.distinct_pairs(config, detail, detail.honeyport_pairs, hit.target,
                                                        hit.target_port, hit.ts, config.honeyport_scan_ports,
                                                        "T1046-HONEYPORTS")]

    def _has_no_evidence(self, source_key: int) -> bool:
        """True when the source (unauthorized) has left no evidence of its own yet."""
        track = self._sources.live.get(source_key) or self._sources.dormant.get(source_key)
        return track is None or track.detail is None
