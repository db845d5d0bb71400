"""Prometheus metrics of the daemon, in a registry of its own (no global state).

Labels name logs, sinks, actions and transports, never an address: a scanner cannot grow the series.
"""

from __future__ import annotations

import logging
from threading import Thread
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

log = logging.getLogger(__name__)


class Metrics:
    """Every metric the daemon exports."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        self.records_read = Counter("t1046_records_read", "Zeek log records read", ["log"], registry=registry)
        self.lines_malformed = Counter("t1046_lines_malformed", "Zeek log lines skipped as malformed",
                                       registry=registry)
        self.alerts = Counter("t1046_alerts", "Alerts emitted, by event.action", ["action"], registry=registry)
        self.sink_queue = Gauge("t1046_sink_queue_bytes", "Bytes of alerts waiting for a sink", ["sink"],
                                registry=registry)
        self.sink_failures = Counter("t1046_sink_failures", "Failed delivery attempts of a sink", ["sink"],
                                     registry=registry)
        self.sink_delivered = Counter("t1046_sink_delivered", "Alerts a sink delivered", ["sink"],
                                      registry=registry)
        self.sink_resent = Counter(
            "t1046_sink_resent", "Alerts a sink sent again after an attempt that may have delivered them (a connection "
            "lost after writing, a timed-out request): an upper bound of the duplicates its receiver got", ["sink"],
            registry=registry)
        self.sink_duplicates = Counter("t1046_sink_duplicates", "Alerts a receiver reported it already had "
                                       "(a _bulk 409 on create)", ["sink"], registry=registry)
        self.sink_dead_letters = Counter("t1046_sink_dead_letters", "Alerts a receiver refused for good, kept in "
                                         "the sink's dead-letter file", ["sink"], registry=registry)
        self.spool_bytes = Gauge("t1046_spool_bytes", "Bytes in a sink's disk spool", ["sink"], registry=registry)
        self.spool_dropped = Counter("t1046_spool_dropped", "Alerts dropped by a full spool (or refused for good by "
                                     "the receiver of a sink without a dead-letter file)", ["sink"], registry=registry)
        self.honeyport_touches = Counter("t1046_honeyport_touches", "Honeyport touches", ["transport"],
                                         registry=registry)
        self.mdns_queries = Counter("t1046_mdns_queries", "mDNS questions seen by the watcher", registry=registry)
        self.follower_lag = Gauge("t1046_follower_lag_bytes", "Bytes of a Zeek log not read yet", ["log"],
                                  registry=registry)
        self.checkpoints = Counter("t1046_checkpoints", "Checkpoints written", registry=registry)
        self.heartbeat = Gauge("t1046_heartbeat_timestamp_seconds", "Time of the last heartbeat",
                               registry=registry)
        self.open_incidents = Gauge("t1046_open_incidents", "Incidents open in the correlator", registry=registry)
        self.tracked_sources = Gauge("t1046_tracked_sources", "Sources the correlator keeps state for",
                                     registry=registry)
        self.correlator_counts = Gauge(
            "t1046_correlator_count", "Correlator counters since its state began: alerts suppressed as authorized, "
            "sources evicted by the cap, incidents closed, observations ignored", ["counter"], registry=registry)
        self.node_submissions = Counter("t1046_node_submissions", "Submissions from honeyport nodes, by result",
                                        ["result"], registry=registry)
        self.node_connections = Gauge("t1046_node_connections", "Honeyport node connections open at the centre",
                                      registry=registry)


class MetricsServer:
    """The ``/metrics`` HTTP endpoint, served from a thread of prometheus_client."""

    def __init__(self, metrics: Metrics, address: str, port: int) -> None:
        self._server: WSGIServer
        self._thread: Thread
        self._server, self._thread = start_http_server(port, addr=address, registry=metrics.registry)
        self.port = int(self._server.server_port)
        log.info("metrics on http://%s:%d/metrics", address, self.port)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
