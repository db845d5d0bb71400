"""The configuration's typed, frozen objects and the names and choices they use.

What each section of the YAML becomes (:class:`SensorConfig` and its parts) and the constants the rest of
the sensor validates against (output types and their keys, formats, spool policies). Nothing here reads a
file or a YAML tree: :mod:`sensor.config.load` does, through :mod:`sensor.config.sections`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sensor.zeek import KINDS as ZEEK_LOGS

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_LOCAL_NETS = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
SEVERITIES = ("low", "medium", "high", "critical")
"""The names of ``event.severity`` 1 to 4 (``detection.outbound_severity`` is one of them)."""
SENSITIVE_MDNS_TYPES = (
    "_ssh._tcp",
    "_sftp-ssh._tcp",
    "_rfb._tcp",
    "_smb._tcp",
    "_afpovertcp._tcp",
    "_workstation._tcp",
    "_rdp._tcp",
    "_telnet._tcp",
    "_device-info._tcp",
    "_ftp._tcp",
    "_nfs._tcp",
    "_adisk._tcp",
    "_webdav._tcp",
    "_net-assistant._udp",
    "_apple-mobdev2._tcp",
)


@dataclass(frozen=True, slots=True)
class AllowlistEntry:
    """An authorized scanner: a source network, optionally limited to target ports and a daily UTC window."""

    network: IPNetwork
    reason: str
    ports: frozenset[int] = frozenset()
    """Empty: every port."""
    schedule: tuple[int, int] | None = None
    """Daily window in minutes after midnight UTC, ``(start, end)``; it may wrap past midnight."""

    def covers(self, source: ipaddress.IPv4Address | ipaddress.IPv6Address, port: int | None, ts: float) -> bool:
        """True when this entry authorizes a probe from ``source`` to ``port`` at time ``ts``."""
        if source not in self.network:
            return False
        if self.ports and port is not None and port not in self.ports:
            return False
        if self.schedule is None:
            return True
        minute = int(ts // 60) % 1440
        start, end = self.schedule
        return start <= minute < end if start <= end else minute >= start or minute < end


@dataclass(frozen=True, slots=True)
class DetectionConfig:
    """Thresholds and site knowledge for the correlator; the defaults are the documented ones."""

    local_nets: tuple[IPNetwork, ...] = tuple(ipaddress.ip_network(n) for n in DEFAULT_LOCAL_NETS)
    allowlist: tuple[AllowlistEntry, ...] = ()
    allowlist_mode: str = "label"
    """``label``: authorized scans are emitted as ``event.kind: event`` with a tag; ``suppress``: counted only."""
    outbound_scans: bool = True
    """Scans by a source inside ``local_nets`` of targets outside them are judged (``outbound_scan``); off, only
    targets inside ``local_nets`` are scan targets (docs/detection.md, "Outbound scans")."""
    outbound_severity: str = "high"
    """``event.severity`` of an outbound scan (``low``, ``medium``, ``high``, ``critical``): its risk score is
    held within that severity's band."""
    window: float = 300.0
    """Seconds of the short window for distinct-port and distinct-target counting."""
    slow_window: float = 86400.0
    """Seconds of the long window for slow scans."""
    port_scan_ports: int = 6
    """Distinct failed ports on one target within ``window`` that make a vertical scan (failures to ports seen
    serving are outages and do not count)."""
    address_scan_targets: int = 6
    """Distinct failed targets on one port within ``window`` that make a horizontal sweep (likewise)."""
    half_open_probes: int = 3
    """Distinct half-open (SYN-ACKed, then reset by the originator) contacts within ``window``."""
    stealth_probes: int = 6
    """Distinct (target, port) TCP probes without a handshake (FIN, NULL, Xmas, ACK) within ``window``."""
    honeyport_scan_ports: int = 3
    """Distinct honeyports (target, port) one source touched within ``window`` that make a honeyport scan."""
    spray_sources: int = 4
    """Distinct sources whose honeyport touches prove nothing of their address (UDP datagrams, half-open SYNs)
    within ``spray_window`` from which on such touches of sources without evidence of their own make one
    aggregate incident instead of one incident each: they may all be forged by one sender."""
    spray_window: float = 60.0
    """Seconds around a touch in which ``spray_sources`` unproven sources make an aggregate."""
    slow_scan_pairs: int = 60
    """Distinct failed (target, port) pairs within ``slow_window`` that make a slow scan."""
    slow_port_scan_ports: int = 12
    """Distinct failed ports on one target within ``slow_window`` that make a slow vertical scan."""
    slow_address_scan_targets: int = 12
    """Distinct failed targets on one port within ``slow_window`` that make a slow horizontal sweep."""
    served_memory: float = 86400.0
    """Seconds a (target, port) counts as serving after a working connection to it, from any client."""
    max_served: int = 262_144
    """Hard cap on remembered serving (target, port) pairs; the least recently served is forgotten first."""
    trw_theta0: float = 0.8
    trw_theta1: float = 0.2
    trw_detection: float = 0.99
    trw_false_positive: float = 0.01
    mdns_sensitive_types: tuple[str, ...] = SENSITIVE_MDNS_TYPES
    mdns_distinct_types: int = 6
    """Distinct service types browsed by one host within ``window`` that alert on their own."""
    mdns_decoy_names: tuple[str, ...] = ()
    """Instance names of decoy services (lower case, with ``.local``); any lookup of them alerts."""
    idle_timeout: float = 3600.0
    """Seconds without activity after which a source's state is dropped and its incident closed."""
    lateness: float = 15.0
    """Seconds the correlator's clock (the watermark) stays behind the newest event time seen, so records
    that arrive out of order by up to this much (Zeek writes conn.log when connections end) are in before
    time alone acts (final updates, closing, expiry)."""
    final_update_after: float = 30.0
    """Seconds of quiet (event time, behind the watermark) after which an incident that grew since its last
    update gets an update with its final extent; a scanner whose probes come further apart is judged by its
    own cadence (twice its latest gap), so a slow scan's pauses are not its end."""
    escalation_every: float = 10.0
    """Seconds of event time an escalation (the action going further, the severity rising) waits after the
    incident's previous update: a burst of escalations is one update."""
    update_every: float = 60.0
    """Seconds of event time between two updates of one incident for growth alone (an escalation of its
    action or severity, or a scanner starting again after its final extent, is sent at once)."""
    max_sources: int = 200_000
    """Hard cap on sources under observation; the least recently active is evicted first."""
    max_incidents: int = 20_000
    """Hard cap on open incidents; the least recently active is closed first."""
    identity_hold: float = 3600.0
    """Seconds either side of its sighting that a host name, user, client software or MAC is taken to hold for
    its address (a DNS answer at least its TTL on; a DHCP lease from its grant to its end), unless the address
    changed hands in between (a lease released, or granted to another MAC): docs/detection.md, "Identity"."""
    max_identities: int = 65_536
    """Hard cap on addresses whose identity is kept; the least recently learned is forgotten first."""
    max_profiles: int = 200_000
    """Hard cap on the history profiles of sources whose track was forgotten; the oldest is forgotten first."""
    max_pairs_per_source: int = 8192
    """Hard cap on remembered (target, port) pairs per source."""
    sample_size: int = 10
    """Targets, ports, uids and names kept as a sample in each alert."""


@dataclass(frozen=True, slots=True)
class ZeekConfig:
    """Where the daemon follows Zeek's logs; ``log_dir`` None means no Zeek source."""

    log_dir: Path | None = None
    logs: tuple[str, ...] = ZEEK_LOGS
    """The logs followed in ``log_dir``. Without ``conn`` the daemon takes the Zeek package's own detections
    (t1046.log, ``T1046::*`` notices, mDNS questions in dns.log) and judges no conn.log record itself
    (docs/deployment.md, "Sizing")."""


FLOW_FORMATS = ("netfilter", "ulogd", "aws", "gcp", "azure")
"""The flow-log formats (``flows[].format``; docs/sources.md)."""
CLOUD_LATENESS = 900.0
"""Default ``flows[].lateness`` of a cloud flow log: a capture window (up to 10 minutes) and the provider's
delivery (about 5 more)."""


S3_POLL = 60.0
"""Default ``flows[].poll``: seconds between two listings of an S3 prefix (AWS delivers every 5 or 10 minutes)."""


@dataclass(frozen=True, slots=True)
class S3Prefix:
    """An S3 prefix flow logs are delivered under (``flows[].path: s3://bucket/prefix``), read with boto3, whose
    credentials come the standard way (environment, shared configuration, instance role), never from here."""

    bucket: str
    prefix: str = ""
    endpoint_url: str | None = None
    """An S3-compatible store's URL (MinIO, Ceph, a test's server); None: AWS's endpoint for the region."""
    region: str | None = None
    """None: boto3's own (``AWS_REGION``, ``~/.aws/config``)."""
    poll: float = S3_POLL

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


@dataclass(frozen=True, slots=True)
class FlowConfig:
    """One flow-log source (``flows[]``): a file or directory followed like Zeek's logs, or an S3 prefix."""

    format: str
    path: Path | None = None
    """A file followed live through rotation (a firewall's log), or a directory whose new files are read whole
    (delivered cloud flow logs, e.g. a synced bucket)."""
    s3: S3Prefix | None = None
    """The S3 prefix whose new objects are read whole (``path: s3://…``); then ``path`` is None."""
    name: str = ""
    """The stream's name in checkpoints and metrics (default: the format and the path's name)."""
    aws_fields: tuple[str, ...] | None = None
    """The AWS custom format (``${version} ${srcaddr} …``) of records without a header line."""
    answer_wait: float = 5.0
    """Seconds an accepted new connection in a firewall's log waits for its logged answer."""
    pair_within: float = 120.0
    """Seconds within which the records of one flow's two directions are paired (cloud flow logs)."""
    lateness: float = 0.0
    """Seconds the correlator's clock stays behind this source's newest record (delivery delay); the watermark
    takes the largest of ``detection.lateness`` and every source's."""
    max_pending: int = 100_000
    """Connections waiting for their answer or other direction, at the most."""


@dataclass(frozen=True, slots=True)
class HoneyportsConfig:
    """Honeyport listeners: addresses, ports, service profiles and the limits that keep a node alive."""

    listen: tuple[str, ...] = ()
    tcp: tuple[int, ...] = ()
    udp: tuple[int, ...] = ()
    profiles: Mapping[int, str] = field(default_factory=dict)
    """Port to service profile name; unlisted ports take the profile named after the port's usual service."""
    max_connections: int = 2000
    max_connections_per_source: int = 64
    idle_timeout: float = 10.0
    read_limit: int = 4096


@dataclass(frozen=True, slots=True)
class MdnsDecoy:
    """A bait service advertised over mDNS; its port should be a honeyport."""

    instance: str
    service_type: str
    port: int


@dataclass(frozen=True, slots=True)
class MdnsConfig:
    """The mDNS watcher: interfaces to listen on (empty: off) and decoys to advertise."""

    interfaces: tuple[str, ...] = ()
    decoys: tuple[MdnsDecoy, ...] = ()


@dataclass(frozen=True, slots=True)
class OutputConfig:
    """One alert sink: ``type`` plus its own settings (``path``, ``url``, ``format`` …)."""

    type: str
    format: str = "ecs"
    settings: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class NodesConfig:
    """The central daemon's TLS listener for remote honeyport nodes (``nodes:``; docs/deployment.md)."""

    listen: tuple[str, int]
    cert_file: Path
    key_file: Path
    token_env: str | None = None
    """Environment variable holding the shared token (or ``token_file``)."""
    token_file: Path | None = None
    node_tokens_file: Path | None = None
    """File of ``NAME TOKEN`` lines: each node named there must prove its name with its own token (read
    again whenever it changes, so a node is added or revoked without a restart)."""
    max_nodes: int = 64
    """Node connections served at once; more are refused and counted."""
    max_message_bytes: int = 16384
    """Longest protocol line; a longer one closes the connection."""
    rate: float = 1000.0
    """Observations per second one connection may submit; a faster node is slowed down, not dropped."""
    dedupe_nodes: int = 1024
    """Node runs (name and epoch) whose last sequence number is remembered against re-sent batches."""


@dataclass(frozen=True, slots=True)
class NodeConfig:
    """Forwarding of this node's observations to a central daemon (``node:``; docs/deployment.md)."""

    central: tuple[str, int]
    ca_file: Path | None = None
    """CA of the central daemon's certificate; None: the system's CAs."""
    server_name: str | None = None
    """Name checked in the central daemon's certificate; None: the host of ``central``."""
    token_env: str | None = None
    token_file: Path | None = None
    spool_max_bytes: int = 64 << 20
    spool_full: str = "drop_oldest"


@dataclass(frozen=True, slots=True)
class SensorConfig:
    """The whole configuration."""

    name: str = "t1046-sensor"
    state_dir: Path = field(default_factory=lambda: Path("~/.local/state/t1046-sensor").expanduser())
    metrics_listen: tuple[str, int] | None = None
    """Where the Prometheus endpoint listens (``sensor.metrics_listen: 127.0.0.1:9646``); None: off."""
    zeek: ZeekConfig = ZeekConfig()
    detection: DetectionConfig = DetectionConfig()
    honeyports: HoneyportsConfig = HoneyportsConfig()
    mdns: MdnsConfig = MdnsConfig()
    outputs: tuple[OutputConfig, ...] = (OutputConfig(type="stdout"),)
    nodes: NodesConfig | None = None
    """Set on a central daemon that accepts remote honeyport nodes."""
    node: NodeConfig | None = None
    """Set on a honeyport node that forwards its observations to a central daemon."""
    flows: tuple[FlowConfig, ...] = ()
    """Flow-log sources: firewall logs and cloud flow logs (docs/sources.md)."""

    @property
    def lateness(self) -> float:
        """The watermark's lateness: ``detection.lateness``, or a flow source's delivery delay where larger."""
        return max([self.detection.lateness, *(flow.lateness for flow in self.flows)])


OUTPUT_TYPES = ("stdout", "file", "syslog", "http")
FORMATS = ("ecs", "ocsf")
SPOOL_POLICIES = ("drop_oldest", "drop_newest")
HTTP_KINDS = ("hec", "bulk", "webhook")
SYSLOG_PROTOCOLS = ("udp", "tcp", "tls", "relp")
SYSLOG_FACILITIES = {
    "kern": 0, "user": 1, "daemon": 3, "auth": 4, "syslog": 5, "authpriv": 10,
    "local0": 16, "local1": 17, "local2": 18, "local3": 19, "local4": 20, "local5": 21, "local6": 22, "local7": 23,
}
_COMMON_KEYS = ("name", "batch_size", "spool_max_bytes", "spool_full", "retry_max_seconds")
KNOWN_SETTINGS: dict[str, tuple[str, ...]] = {
    "stdout": _COMMON_KEYS,
    "file": (*_COMMON_KEYS, "path", "max_bytes", "keep", "group"),
    "syslog": (*_COMMON_KEYS, "host", "port", "protocol", "facility", "app_name", "hostname", "ca_file",
               "cert_file", "key_file", "server_name", "insecure", "max_message"),
    "http": (*_COMMON_KEYS, "url", "kind", "token_env", "token_file", "username", "password_env",
             "password_file", "index", "sourcetype", "ca_file", "insecure", "timeout", "headers"),
}
"""The ``outputs[]`` keys each sink type understands (besides ``type`` and ``format``)."""
