"""The correlator: a pure object that turns observations into one incident per scanner.

It reads no clock and does no I/O. Every observation is judged at its own event time (a Zeek record's
``ts``, a honeyport touch or mDNS packet at capture): the windows of every rule are spans around that
time (:mod:`sensor.detect.windows`), whatever order the records come in. ``now``, an argument of
:meth:`Correlator.observe`, :meth:`~Correlator.tick` and :meth:`~Correlator.flush`, is the watermark over
the inputs' event times (:mod:`sensor.detect.watermark`); it only drives what time alone decides —
a quiet incident's final-extent update, closing it, expiry — and it does so on its own every
:data:`HOUSEKEEPING_EVERY` seconds of event time, so how often a caller ticks changes nothing.

Rule families: :mod:`sensor.detect.scans` (TRW, vertical, horizontal, half-open, stealth, slow),
:mod:`sensor.detect.zeekview` (Zeek's notices and t1046.log), :mod:`sensor.detect.touches` (honeyport
touches, the aggregate of unproven touchers), :mod:`sensor.detect.mdns` (mDNS browsing);
:mod:`sensor.detect.incidents` says what an incident's alert reports, and :mod:`sensor.detect.tracks`
keeps every source's track. conn.log records come one at a time
(:meth:`Correlator.observe`) or a block at a time (:meth:`Correlator.observe_many`, the same verdicts with
the common record -- a working connection of a source with no evidence -- judged without a tuple of its own);
their state is keyed by integers (:func:`~sensor.observations.address_key`), which hash in C.

Incident lifecycle (:mod:`sensor.detect.lifecycle`): one incident per scanner while its evidence counts;
the first alert at once, then an update at once only when the incident escalates or its scanner resumes
after its final extent, one for growth per ``update_every``, the final extent when the scanner is quiet by
its own cadence, ``closed: true`` when its evidence no longer counts.

Every piece of per-source state is bounded: idle sources expire, and hard caps evict the least recently
active source (or close the least recently active incident) first.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from sensor.alerts.alert import Alert
from sensor.config import DetectionConfig
from sensor.detect import scans
from sensor.detect.conns import ConnJudge
from sensor.detect.evidence import MAX_NAME, Track
from sensor.detect.history import Profiles
from sensor.detect.hosts import HostLinks
from sensor.detect.identity import Identities
from sensor.detect.lifecycle import CorrelatorStats, Incidents, Key
from sensor.detect.lockstep import Lockstep
from sensor.detect.mdns import MdnsBrowseDetector
from sensor.detect.order import Bounds, Expiry, Order, OrderKey, bounds
from sensor.detect.scope import Scope
from sensor.detect.served import ServedPorts
from sensor.detect.told import Told, ToldLockstep, served_by_nobody
from sensor.detect.touches import TouchJudge
from sensor.detect.tracks import Tracks
from sensor.detect.watermark import Watermark
from sensor.detect.zeekview import detection_evidence, notice_evidence, notice_shape, rule_for_zeek, zeek_report
from sensor.observations import (
    ConnAttempt,
    ConnRows,
    HoneyportHit,
    IdentitySeen,
    Intake,
    IPAddress,
    MdnsHost,
    MdnsQuery,
    Observation,
    ZeekDetection,
    ZeekNotice,
    address_key,
    key_address,
    service_key,
)

STATE_VERSION = 9
"""Layout of the correlator's state: bump it when a change makes older checkpoints' pickles unusable, so a
restarted daemon drops their incidents instead of failing on them."""
HOUSEKEEPING_EVERY = 10.0
"""Seconds of event time between the correlator's own passes over quiet incidents and idle sources."""
PRUNE_EVERY = 300.0
"""Seconds of event time between passes that forget failed contacts older than the long window."""


class Correlator:
    """Pure correlator: ``observe(observation, now)``, ``tick(now)`` and ``flush(now)`` return the alerts
    they cause."""

    def __init__(self, config: DetectionConfig, told: Told | None = None) -> None:
        self._config = config
        self._told = told
        """What this correlator is told of the rest of the stream, when it judges only part of it (and then time's
        own work waits for :meth:`housekeep`)."""
        self._order = Order() if told is None else told.order
        """The position in the stream of what is being judged."""
        self._tracks: OrderedDict[Key, Track] = OrderedDict()
        dormant: OrderedDict[Key, Track] = OrderedDict()
        self._mdns = MdnsBrowseDetector(config) if told is None else told.mdns
        self._walk = scans.RandomWalk(config)
        self._served = ServedPorts(config.served_memory, config.max_served) if told is None else served_by_nobody()
        """Services seen working: failed contacts to them are outages, not probes."""
        self._links = HostLinks()
        """IPv4 and IPv6 addresses of one host, from its own mDNS announcements."""
        self._linked = self._links.canonical_of
        """The links' address-to-canonical map itself (read on every record: no method call)."""
        self._scope = Scope(config)
        self._targets = self._scope.memo
        """The scope's memo of scan targets, read directly on every record."""
        self._next_housekeeping = float("-inf")
        self._next_prune = float("-inf")
        self.stats = CorrelatorStats()
        self._identity = Identities(config, self._order, None if told is None else told.owns)
        """Who held each address when: what an alert names its scanner by."""
        self.profiles = Profiles(config)
        """The history of sources whose tracks were forgotten."""
        self._incidents = Incidents(config, self.stats, self._tracks, dormant, self._identity, self._order)
        self._sources = Tracks(config, self._incidents, self._tracks, dormant, self.profiles, self._order)
        lockstep = Lockstep(self._sources) if told is None else ToldLockstep(self._sources, told.partners)
        self._lockstep = lockstep
        """Sources that probe the same services at the same moments (decoys)."""
        self._conns = ConnJudge(config, self.stats, self._scope, self._served, self._walk, self._sources,
                                self._incidents, self._track, self._linked, lockstep, self.identified, self._order)
        self._touches = TouchJudge(config, self.stats, self._sources, self._incidents, self._track, self._linked,
                                   lockstep, self.identified)

    # -- public surface -------------------------------------------------------------------------

    def observe(self, observation: Observation, now: float, at: int | None = None) -> list[Alert]:
        """Judge one observation at its own time, the watermark being ``now``; return the alerts it causes
        (and those that time alone made due, once per :data:`HOUSEKEEPING_EVERY` of event time). ``at`` is its
        position in the stream (:mod:`sensor.detect.order`; the next one when not given)."""
        self.stats.observations += 1
        self._order.next(at)
        alerts = self._housekeeping(now) if now >= self._next_housekeeping and self._told is None else []
        if isinstance(observation, ConnAttempt):
            target_key = address_key(observation.target)
            return alerts + self._conns.one(observation, now, address_key(observation.source), target_key,
                                            service_key(target_key, observation.transport, observation.target_port))
        if isinstance(observation, HoneyportHit):
            return alerts + self._touches.one(observation, now)
        if isinstance(observation, MdnsQuery):
            return alerts + self._mdns_query(observation, now)
        if isinstance(observation, ZeekDetection):
            return alerts + self._zeek_detection(observation, now)
        if isinstance(observation, IdentitySeen):
            self.identified(observation)
            return alerts
        if isinstance(observation, MdnsHost):
            self._links.announced(observation)
            self.identified(IdentitySeen(observation.ts, observation.addresses[:8], "mdns",
                                         host_name=observation.name.lower().rstrip(".")))
            return alerts
        return alerts + self._zeek_notice(observation, now)

    def observe_many(self, rows: ConnRows, nows: Sequence[float], at: Sequence[int] | None = None) -> list[Alert]:
        """Judge many conn records in turn, each at its own time with the watermark ``nows[i]`` (and at the
        position ``at[i]`` in the stream, or the next ones): the verdicts and the state :meth:`observe` reaches on
        each of them (:meth:`sensor.detect.conns.ConnJudge.many`)."""
        self.stats.observations += len(rows)
        if at is None:
            at = range(self._order.at + 1, self._order.at + 1 + len(rows))
        due = self._next_housekeeping if self._told is None else float("inf")
        return self._conns.many(rows, nows, at, due, self._housekeep)

    def observe_read(self, item: Intake, watermark: Watermark, wall: float | None = None) -> list[Alert]:
        """Judge what a log reader handed on -- one observation, or a block of conn records -- each record with
        the watermark its own time sets (read at ``wall``, when the logs are followed live)."""
        if isinstance(item, ConnRows):
            return self.observe_many(item, watermark.logged_many(item.ts, wall))
        return self.observe(item, watermark.logged(item.ts, wall))

    def identified(self, seen: IdentitySeen) -> None:
        """Learn who holds an address; an incident of that address whose evidence lies within the fact's reach
        counts it in its extent (the next update names it, none is sent for it alone)."""
        hold = self._config.identity_hold
        for key in self._identity.learn(seen):
            track = self._sources.live.get(key) or self._sources.dormant.get(key)
            if track is None and self._linked:
                canonical = self._linked.get(key_address(key))
                track = None if canonical is None else self._sources.live.get(address_key(canonical))
            if track is not None and track.detail is not None and \
                    track.first_seen - hold <= seen.ts <= track.last_seen + hold:
                track.detail.identity += 1

    def tick(self, now: float) -> list[Alert]:
        """Let time alone act at ``now``: final-extent updates of quiet incidents, closing and forgetting idle
        sources, forgetting old window entries."""
        return self._housekeeping(now)

    def flush(self, now: float) -> list[Alert]:
        """An update for every open incident that grew or escalated since its last one (shutdown: nothing is held
        back; the incidents stay open)."""
        return [alert for _, alert in self._incidents.flush(now)]

    def flush_placed(self, now: float) -> list[tuple[OrderKey, Alert]]:
        """:meth:`flush`, each update with its place in the order (:mod:`sensor.detect.order`)."""
        return self._incidents.flush(now)

    # -- time's own work over part of the stream (sensor.detect.partition) ---------------------------------

    def expiry(self, now: float, prune: bool) -> Expiry:
        """Where time's own work at ``now`` would stop were this correlator alone (``prune``: identities too)."""
        live, dormant, sleeper, alone = self._sources.expiry(now)
        identity, unmoved = self._identity.expiry(now) if prune else (None, True)
        return Expiry(live, dormant, sleeper, identity, alone and unmoved)

    def housekeep(self, now: float, at: int, agreed: Bounds, prune: bool) -> list[tuple[OrderKey, Alert]]:
        """Time's own work at ``now``, before the observation at position ``at``, stopping where every part agreed
        (:func:`~sensor.detect.order.bounds`); each alert with its place in the order."""
        self._order.next(at)
        alerts = self._sources.expire(now, agreed)
        alerts.extend(self._incidents.due(now))
        if prune:
            self._sources.prune(now)
            self._mdns.expire(now)
            self._identity.expire(now, agreed.identity)
        return alerts

    def partnered(self, partner: Key, prober: int) -> None:
        """``prober``, judged in another part, probed a service in lockstep with ``partner`` (the partner's side)."""
        self._lockstep.partnered(partner, prober)

    @property
    def peaks(self) -> dict[str, int]:
        """The most state of each capped kind kept at once, by the configuration key that caps it."""
        return {"max_sources": self._sources.peak, "max_incidents": self._incidents.peak,
                "max_profiles": self.profiles.peak, "max_identities": self._identity.peak}

    @property
    def open_incidents(self) -> int:
        """Number of incidents open now."""
        return self._incidents.count

    @property
    def tracked_sources(self) -> int:
        """Number of sources whose state is kept now."""
        return len(self._sources)

    # -- evidence intake ------------------------------------------------------------------------

    def _mdns_query(self, query: MdnsQuery, now: float) -> list[Alert]:
        fired = self._mdns.rules_for(query, now)
        if not fired:
            self.stats.ignored += 1
            return []
        track, alerts = self._track(query.source, None, query.ts, now)
        detail = track.evidence()
        if query.mac:
            self.identified(IdentitySeen(query.ts, (query.source,), "neighbour", mac=query.mac))
        detail.sources.setdefault("mdns" if query.via == "watcher" else "zeek")
        detail.proof.setdefault("local_link")
        for name in self._mdns.browsed or (query.name,):
            if len(detail.mdns_names) < self._config.sample_size:
                detail.mdns_names.setdefault(name.lower().rstrip(".")[:MAX_NAME])
        detail.sample_uids((query.uid,), self._config.sample_size)
        return alerts + self._incidents.update(track, fired, now)

    def _zeek_notice(self, notice: ZeekNotice, now: float) -> list[Alert]:
        report = zeek_report(notice.note)
        if report is None or (report[1] and not self._config.outbound_scans):
            self.stats.ignored += 1
            return []
        action, outbound = notice_shape(notice, report[0]), report[1]
        track, alerts = self._track(notice.source, notice.target_port, notice.ts, now)
        notice_evidence(track.evidence(), notice, action, outbound, self._config.sample_size)
        rule = rule_for_zeek(action, "T1046-ZEEK-NOTICE", self._mdns.sensitive(notice.sub))
        return alerts + self._incidents.update(track, [rule], now)

    def _zeek_detection(self, detection: ZeekDetection, now: float) -> list[Alert]:
        report = zeek_report(detection.kind)
        if report is None or (report[1] and not self._config.outbound_scans):
            self.stats.ignored += 1
            return []
        action, outbound = report
        port = detection.ports[0] if len(detection.ports) == 1 else None
        track, alerts = self._track(detection.scanner, port, detection.ts, now)
        track.first_seen = min(track.first_seen, detection.first_seen or detection.ts)
        detection_evidence(track.evidence(), detection, action, outbound, self._config.sample_size)
        return alerts + self._incidents.update(track, [rule_for_zeek(action, "T1046-ZEEK-DETECTION")], now)

    # -- state ----------------------------------------------------------------------------------

    def _track(self, source: IPAddress, port: int | None, ts: float, now: float,
               source_key: int | None = None) -> tuple[Track, list[Alert]]:
        """The track of ``source`` (per authorization at ``ts``; ``source_key`` is its key, when known)."""
        seen_as = source
        if self._linked:
            source = self._linked.get(source, source)
        if source_key is None or source is not seen_as:
            source_key = address_key(source)
        authorized = self._scope.authorization(source, port, ts) if self._config.allowlist else None
        key: Key = source_key if authorized is None else (source_key, authorized)
        return self._sources.keyed(key, source, seen_as, ts, now)

    def _housekeep(self, now: float) -> tuple[list[Alert], float]:
        """Time's own work at ``now``, and when it is due next."""
        return self._housekeeping(now), self._next_housekeeping

    def _housekeeping(self, now: float) -> list[Alert]:
        """Time's own work at ``now``, this correlator being alone (before the observation being judged)."""
        self._next_housekeeping = now + HOUSEKEEPING_EVERY
        prune = now >= self._next_prune
        if prune:
            self._next_prune = now + PRUNE_EVERY
        at = self._order.at
        return [alert for _, alert in self.housekeep(now, at, bounds([self.expiry(now, prune)], at), prune)]
