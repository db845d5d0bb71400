"""The YAML sections that need more than one converter: allowlist entries, mDNS decoys, outputs, the node
link (``nodes:`` and ``node:``) and ``detection``.

Each function reads its part of the parsed YAML through a :class:`~sensor.config.values._Reader`, which
collects every problem with its path, and returns the typed object (or None when it cannot be made).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

from sensor.config.model import (
    CLOUD_LATENESS,
    FLOW_FORMATS,
    FORMATS,
    HTTP_KINDS,
    KNOWN_SETTINGS,
    OUTPUT_TYPES,
    S3_POLL,
    SEVERITIES,
    SPOOL_POLICIES,
    SYSLOG_FACILITIES,
    SYSLOG_PROTOCOLS,
    AllowlistEntry,
    DetectionConfig,
    FlowConfig,
    MdnsDecoy,
    NodeConfig,
    NodesConfig,
    OutputConfig,
    S3Prefix,
)
from sensor.config.values import (
    _NO_PORTS,
    _at_least,
    _boolean,
    _choice,
    _headers,
    _host_port,
    _listen_address,
    _network,
    _networks,
    _path,
    _port,
    _ports,
    _positive_int,
    _positive_number,
    _Reader,
    _schedule,
    _string_list,
    _text,
    _url,
)


def aws_fields_of(text: str) -> tuple[str, ...] | None:
    """The field names of an AWS flow log format string, or None (kept here: the configuration reads no source)."""
    from sensor.flows.aws import fields_of

    return fields_of(text)


def _allowlist_entry(reader: _Reader, item: Any, path: str) -> AllowlistEntry | None:
    if not isinstance(item, dict):
        reader.problem(path, "must be a mapping like {cidr: 10.9.9.9/32, reason: vulnerability scanner}")
        return None
    for extra in sorted(set(item) - {"cidr", "reason", "ports", "schedule"}):
        reader.problem(f"{path}.{extra}", "unknown key (known: cidr, reason, ports, schedule)")
    if "cidr" not in item:
        reader.problem(f"{path}.cidr", "is required")
        return None
    if not item.get("reason"):
        reader.problem(f"{path}.reason", "is required: say why this scanner is authorized")
    network = reader.value(item, "cidr", path, _network, None)
    reason = reader.value(item, "reason", path, _text, "")
    ports = frozenset(reader.value(item, "ports", path, _ports, _NO_PORTS))
    schedule = reader.value(item, "schedule", path, _schedule, None)
    if network is None:
        return None
    return AllowlistEntry(network=network, reason=reason, ports=ports, schedule=schedule)


def _decoy(reader: _Reader, item: Any, path: str) -> MdnsDecoy | None:
    if not isinstance(item, dict):
        reader.problem(path, "must be a mapping like {instance: backup-nas, type: _smb._tcp, port: 4445}")
        return None
    missing = [key for key in ("instance", "type", "port") if key not in item]
    for key in missing:
        reader.problem(f"{path}.{key}", "is required")
    for extra in sorted(set(item) - {"instance", "type", "port"}):
        reader.problem(f"{path}.{extra}", "unknown key (known: instance, type, port)")
    if missing:
        return None
    service_type = reader.value(item, "type", path, _text, "")
    if not re.fullmatch(r"_[a-z0-9-]+\._(tcp|udp)", service_type):
        reader.problem(f"{path}.type", f"{service_type!r} is not a service type like _ssh._tcp")
    port = reader.value(item, "port", path, _port, 0)
    if not port:
        return None
    return MdnsDecoy(instance=reader.value(item, "instance", path, _text, ""), service_type=service_type, port=port)



_OUTPUT_CHECKS: dict[str, Callable[[Any], Any]] = {
    "name": _text, "batch_size": _at_least(1), "spool_max_bytes": _at_least(4096),
    "spool_full": _choice(SPOOL_POLICIES), "retry_max_seconds": _at_least(1),
    "path": _text, "max_bytes": _at_least(0), "keep": _at_least(1), "group": _text,
    "host": _text, "port": _port,
    "protocol": _choice(SYSLOG_PROTOCOLS), "facility": _choice(tuple(SYSLOG_FACILITIES)), "app_name": _text,
    "hostname": _text, "ca_file": _text, "cert_file": _text, "key_file": _text, "server_name": _text,
    "insecure": _boolean, "url": _url, "kind": _choice(HTTP_KINDS), "token_env": _text, "token_file": _text,
    "username": _text, "password_env": _text, "password_file": _text, "index": _text, "sourcetype": _text,
    "timeout": _positive_number, "headers": _headers, "max_message": _at_least(480),
}
_OUTPUT_REQUIRED = {"file": ("path",), "syslog": ("host",), "http": ("url",)}


def _output(reader: _Reader, item: Any, path: str) -> OutputConfig | None:
    if not isinstance(item, dict) or "type" not in item:
        reader.problem(path, "must be a mapping with a type (one of " + ", ".join(OUTPUT_TYPES) + ")")
        return None
    kind = reader.value(item, "type", path, _choice(OUTPUT_TYPES), "")
    if not kind:
        return None
    known = KNOWN_SETTINGS[kind]
    for extra in sorted(set(item) - {"type", "format", *known}):
        reader.problem(f"{path}.{extra}", f"unknown key for a {kind} output (known: {', '.join(known)})")
    for key in _OUTPUT_REQUIRED.get(kind, ()):
        if not item.get(key):
            reader.problem(f"{path}.{key}", f"is required for a {kind} output")
    if "token_env" in item and "token_file" in item:
        reader.problem(f"{path}.token_file", "give token_env or token_file, not both")
    settings = {key: reader.value(item, key, path, _OUTPUT_CHECKS[key], item[key])
                for key in known if key in item}
    fmt = reader.value(item, "format", path, _choice(FORMATS), "ecs")
    return OutputConfig(type=kind, format=fmt, settings=settings)


def _names_unique(reader: _Reader, outputs: list[OutputConfig]) -> None:
    seen: dict[str, int] = {}
    for index, output in enumerate(outputs):
        name = output.settings.get("name")
        if isinstance(name, str):
            if name in seen:
                reader.problem(f"outputs[{index}].name", f"{name!r} is already the name of outputs[{seen[name]}]")
            seen[name] = index



def _token_source(reader: _Reader, section: Mapping[str, Any], path: str,
                  required: str = "is required (or token_file): the node token") -> tuple[str | None, Path | None]:
    if "token_env" in section and "token_file" in section:
        reader.problem(f"{path}.token_file", "give token_env or token_file, not both")
    elif "token_env" not in section and "token_file" not in section and required:
        reader.problem(f"{path}.token_env", required)
    return (reader.value(section, "token_env", path, _text, None),
            reader.value(section, "token_file", path, _path, None))


_NODES_KEYS = tuple(field.name for field in fields(NodesConfig))
_NODE_KEYS = tuple(field.name for field in fields(NodeConfig))


def _nodes(reader: _Reader, data: Mapping[str, Any]) -> NodesConfig | None:
    if data.get("nodes") is None:
        return None
    section = reader.section(data, "nodes", "", _NODES_KEYS)
    for key in ("listen", "cert_file", "key_file"):
        if key not in section:
            reader.problem(f"nodes.{key}", "is required")
    token_env, token_file = _token_source(
        reader, section, "nodes",
        "" if "node_tokens_file" in section else "is required (or token_file, or node_tokens_file): the node tokens")
    base = NodesConfig(listen=("", 0), cert_file=Path(), key_file=Path())
    return NodesConfig(
        listen=reader.value(section, "listen", "nodes", _listen_address, base.listen),
        cert_file=reader.value(section, "cert_file", "nodes", _path, base.cert_file),
        key_file=reader.value(section, "key_file", "nodes", _path, base.key_file),
        token_env=token_env, token_file=token_file,
        node_tokens_file=reader.value(section, "node_tokens_file", "nodes", _path, None),
        max_nodes=reader.value(section, "max_nodes", "nodes", _positive_int, base.max_nodes),
        max_message_bytes=reader.value(section, "max_message_bytes", "nodes", _at_least(1024),
                                       base.max_message_bytes),
        rate=reader.value(section, "rate", "nodes", _positive_number, base.rate),
        dedupe_nodes=reader.value(section, "dedupe_nodes", "nodes", _positive_int, base.dedupe_nodes),
    )


def _node(reader: _Reader, data: Mapping[str, Any]) -> NodeConfig | None:
    if data.get("node") is None:
        return None
    section = reader.section(data, "node", "", _NODE_KEYS)
    if "central" not in section:
        reader.problem("node.central", "is required: HOST:PORT of the central daemon's nodes.listen")
    token_env, token_file = _token_source(reader, section, "node")
    base = NodeConfig(central=("", 0))
    return NodeConfig(
        central=reader.value(section, "central", "node", _host_port, base.central),
        ca_file=reader.value(section, "ca_file", "node", _path, None),
        server_name=reader.value(section, "server_name", "node", _text, None),
        token_env=token_env, token_file=token_file,
        spool_max_bytes=reader.value(section, "spool_max_bytes", "node", _at_least(4096), base.spool_max_bytes),
        spool_full=reader.value(section, "spool_full", "node", _choice(SPOOL_POLICIES), base.spool_full),
    )


_DETECTION_NUMBERS = (
    "window",
    "slow_window",
    "idle_timeout",
    "lateness",
    "final_update_after",
    "update_every",
    "escalation_every",
    "served_memory",
    "spray_window",
    "identity_hold",
)
_DETECTION_COUNTS = (
    "port_scan_ports",
    "address_scan_targets",
    "half_open_probes",
    "stealth_probes",
    "honeyport_scan_ports",
    "spray_sources",
    "slow_scan_pairs",
    "slow_port_scan_ports",
    "slow_address_scan_targets",
    "max_served",
    "mdns_distinct_types",
    "max_sources",
    "max_incidents",
    "max_identities",
    "max_profiles",
    "max_pairs_per_source",
    "sample_size",
)


def _detection(reader: _Reader, data: Mapping[str, Any], decoys: tuple[MdnsDecoy, ...]) -> DetectionConfig:
    known = ("local_nets", "allowlist", "allowlist_mode", "outbound_scans", "outbound_severity",
             "mdns_sensitive_types", *_DETECTION_NUMBERS, *_DETECTION_COUNTS)
    section = reader.section(data, "detection", "", known)
    base = DetectionConfig()
    local_nets = reader.value(section, "local_nets", "detection", _networks, base.local_nets)
    numbers = {key: reader.value(section, key, "detection", _positive_number, getattr(base, key))
               for key in _DETECTION_NUMBERS}
    counts = {key: reader.value(section, key, "detection", _positive_int, getattr(base, key))
              for key in _DETECTION_COUNTS}
    sensitive = reader.value(section, "mdns_sensitive_types", "detection", _string_list, base.mdns_sensitive_types)
    return DetectionConfig(
        local_nets=local_nets,
        allowlist=tuple(reader.items(section, "allowlist", "detection",
                                     lambda item, path: _allowlist_entry(reader, item, path))),
        allowlist_mode=reader.value(section, "allowlist_mode", "detection", _choice(("label", "suppress")), "label"),
        outbound_scans=reader.value(section, "outbound_scans", "detection", _boolean, base.outbound_scans),
        outbound_severity=reader.value(section, "outbound_severity", "detection", _choice(SEVERITIES),
                                       base.outbound_severity),
        mdns_sensitive_types=tuple(t.lower().removesuffix(".").removesuffix(".local") for t in sensitive),
        mdns_decoy_names=tuple(f"{d.instance}.{d.service_type}.local".lower() for d in decoys),
        **numbers,
        **counts,
    )



_FLOW_KEYS = ("format", "path", "name", "aws_fields", "answer_wait", "pair_within", "lateness", "max_pending")
_S3_KEYS = ("endpoint_url", "region", "poll")
"""The keys of a ``flows[]`` entry whose path is an ``s3://`` prefix only."""
_CREDENTIALS = ("aws_access_key_id", "aws_secret_access_key", "aws_session_token", "access_key", "secret_key")


def _s3_url(value: Any) -> tuple[str, str]:
    """``s3://bucket/prefix`` as (bucket, prefix)."""
    bucket, _, prefix = _text(value).removeprefix("s3://").partition("/")
    if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", bucket):
        raise ValueError(f"{value!r} does not name a bucket (s3://BUCKET/PREFIX)")
    return bucket, prefix


def _endpoint(value: Any) -> str:
    text = _url(value)
    if "@" in text.split("/", 3)[2]:
        raise ValueError("credentials are never part of this file: boto3 takes them from the environment, "
                         "~/.aws or the instance role")
    return text


def _flow(reader: _Reader, item: Any, path: str) -> FlowConfig | None:
    """One ``flows[]`` entry: a format and a path (a file, a directory, or an S3 prefix)."""
    if not isinstance(item, dict):
        reader.problem(path, "must be a mapping like {format: netfilter, path: /var/log/t1046/kern.log}")
        return None
    for extra in sorted(set(item) - {*_FLOW_KEYS, *_S3_KEYS}):
        reader.problem(f"{path}.{extra}", "credentials are never part of this file: boto3 takes them from the "
                       "environment, ~/.aws or the instance role" if extra in _CREDENTIALS else
                       f"unknown key (known: {', '.join((*_FLOW_KEYS, *_S3_KEYS))})")
    fmt = reader.value(item, "format", path, _choice(FLOW_FORMATS), "") if "format" in item else ""
    if not fmt:
        reader.problem(f"{path}.format", f"is required (one of {', '.join(FLOW_FORMATS)})")
    if "path" not in item:
        reader.problem(f"{path}.path", "is required: the log file, the directory flow logs are delivered into, "
                       "or an s3://bucket/prefix")
    fields = reader.value(item, "aws_fields", path, _text, "")
    names = aws_fields_of(fields) if fields else None
    if fields and names is None:
        reader.problem(f"{path}.aws_fields", "is not an AWS flow log format (${version} ${srcaddr} …)")
    s3 = _s3_prefix(reader, item, path)
    location = None if s3 is not None else reader.value(item, "path", path, _path, None)
    base = FlowConfig(format=fmt or "aws")
    cloud = fmt in ("aws", "gcp", "azure")
    if not fmt:
        return None
    where = s3.url if s3 is not None else location.name if location else ""
    return FlowConfig(
        format=fmt, path=location, s3=s3,
        name=reader.value(item, "name", path, _text, "") or f"{fmt}:{where}",
        aws_fields=names,
        answer_wait=reader.value(item, "answer_wait", path, _positive_number, base.answer_wait),
        pair_within=reader.value(item, "pair_within", path, _positive_number, base.pair_within),
        lateness=reader.value(item, "lateness", path, _positive_number, CLOUD_LATENESS if cloud else 0.0),
        max_pending=reader.value(item, "max_pending", path, _positive_int, base.max_pending),
    )


def _s3_prefix(reader: _Reader, item: dict[str, Any], path: str) -> S3Prefix | None:
    """The S3 prefix of a ``flows[]`` entry whose path is ``s3://…`` (None otherwise: then the S3 keys are
    problems)."""
    if not (isinstance(item.get("path"), str) and item["path"].startswith("s3://")):
        for key in sorted(set(item) & set(_S3_KEYS)):
            reader.problem(f"{path}.{key}", "is only for a path that is an s3://bucket/prefix")
        return None
    bucket, prefix = reader.value(item, "path", path, _s3_url, ("", ""))
    if not bucket:
        return None
    return S3Prefix(bucket=bucket, prefix=prefix,
                    endpoint_url=reader.value(item, "endpoint_url", path, _endpoint, None),
                    region=reader.value(item, "region", path, _text, None),
                    poll=reader.value(item, "poll", path, _positive_number, S3_POLL))
