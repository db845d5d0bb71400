"""What a checkpoint may hold: the allowlist of :mod:`sensor.daemon.stateform` -- the classes of the
correlator and of every object it keeps state in, of alerts and of stream positions; the enums; the bound
methods the state holds. A class a state object gains is added here (the round-trip tests name it until it
is); nothing outside these lists is ever made from a checkpoint.
"""

from __future__ import annotations

from enum import Enum

from sensor.alerts.alert import Alert, Answered, IdentityFact, Profile, Touched
from sensor.alerts.catalogue import Action
from sensor.detect import identity, mdns, scans
from sensor.detect.conns import ConnJudge
from sensor.detect.correlator import Correlator
from sensor.detect.evidence import Evidence, Track
from sensor.detect.history import Profiles
from sensor.detect.hosts import HostLinks
from sensor.detect.lifecycle import CorrelatorStats, Incidents
from sensor.detect.lockstep import Lockstep
from sensor.detect.order import Order
from sensor.detect.scope import Reach, Scope
from sensor.detect.served import ServedPorts
from sensor.detect.spray import SourceAggregate, Spray
from sensor.detect.touches import TouchJudge
from sensor.detect.tracks import Tracks
from sensor.detect.watermark import Watermark
from sensor.observations import CloudIdentity, Outcome, Touch, Transport
from sensor.zeek.position import StreamPosition

CLASSES: dict[str, type] = {cls.__name__: cls for cls in (
    Correlator, ConnJudge, Incidents, Tracks, Track, Evidence, CorrelatorStats, ServedPorts, HostLinks, Scope,
    Watermark, scans.RandomWalk, mdns.MdnsBrowseDetector, mdns._Host, mdns._Habit, Spray, SourceAggregate,
    Lockstep, identity.Identities, identity._Holder, identity._Fact, Profiles, Alert, Answered, Touched,
    IdentityFact, Profile, CloudIdentity, StreamPosition, TouchJudge, Order,
)}
"""Every class whose instances a checkpoint may hold, by name."""
ENUMS: dict[str, type[Enum]] = {cls.__name__: cls for cls in (Action, Transport, Outcome, Touch, Reach)}
METHODS = frozenset({("Correlator", "_track"), ("Correlator", "identified")})
"""Bound methods the state holds (the correlator's parts call back into it), as (class, name)."""
