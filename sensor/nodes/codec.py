"""The node link's wire protocol (version 1): one JSON object per line, each with ``"v": 1`` and a ``"type"``.

* node → centre ``hello`` {node, epoch, token}; centre → node ``ready`` {last_seq} or ``refused`` {reason}.
* node → centre ``obs`` {seq, kind: honeyport | mdns, and the observation's fields}; centre → node
  ``ack`` {seq} for every ``obs`` it has handled (observed, a duplicate, or malformed and skipped).

Encoding and strict decoding, every field checked for type and bounds, and the protocol's timings. No
sockets: the listener and the forwarder own the connections.
"""

from __future__ import annotations

import base64
import binascii
import logging
import math
import re
from dataclasses import dataclass
from ipaddress import ip_address
from typing import Any

import orjson

from sensor.errors import SensorError
from sensor.observations import PAYLOAD_LIMIT, HoneyportHit, IPAddress, MdnsQuery, Touch, Transport

log = logging.getLogger(__name__)

PROTOCOL_VERSION = 1
MAX_TEXT = 255
"""Longest text field (an mDNS name is at most 255 octets)."""
HANDSHAKE_SECONDS = 5.0
"""Time a client has to complete the TLS handshake."""
HELLO_SECONDS = 3.0
"""Time a node has, after the TLS handshake, to say hello (a node says it at once: a client that does not
holds a connection nobody has vouched for)."""
IDLE_SECONDS = 300.0
"""A node connection with no line for this long is closed (the node reconnects when it has news)."""
NODE_BATCH = 2000
"""Observations the node sends before it waits for their acknowledgement (the centre acknowledges them
at its next commit, a fraction of a second later when the centre's state is small)."""
Submittable = HoneyportHit | MdnsQuery
NODE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
EPOCH = re.compile(r"[0-9a-f]{16}")
_PROFILE = re.compile(r"[A-Za-z0-9_.-]{1,32}")


class ProtocolError(SensorError):
    """A line that is not a valid message of this protocol."""


class MalformedObservation(ProtocolError):
    """An ``obs`` line with a readable sequence number but an invalid observation: acknowledged, skipped."""

    def __init__(self, seq: int, reason: str) -> None:
        super().__init__(reason)
        self.seq = seq


# -- messages ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Hello:
    node: str
    epoch: str
    token: str

    def __repr__(self) -> str:
        return f"Hello(node={self.node!r}, epoch={self.epoch!r}, token=<hidden>)"


@dataclass(frozen=True, slots=True)
class Ready:
    last_seq: int


@dataclass(frozen=True, slots=True)
class Refused:
    reason: str


@dataclass(frozen=True, slots=True)
class Submission:
    seq: int
    observation: Submittable


@dataclass(frozen=True, slots=True)
class Ack:
    seq: int


Message = Hello | Ready | Refused | Submission | Ack


def _line(document: dict[str, Any]) -> bytes:
    return orjson.dumps({"v": PROTOCOL_VERSION, **document}) + b"\n"


def encode_hello(node: str, epoch: str, token: str) -> bytes:
    return _line({"type": "hello", "node": node, "epoch": epoch, "token": token})


def encode_ready(last_seq: int) -> bytes:
    return _line({"type": "ready", "last_seq": last_seq})


def encode_refused(reason: str) -> bytes:
    return _line({"type": "refused", "reason": reason})


def encode_ack(seq: int) -> bytes:
    return _line({"type": "ack", "seq": seq})


def encode_submission(seq: int, observation: Submittable) -> bytes:
    """The ``obs`` line of an observation, without its newline (it is what the node spools)."""
    fields: dict[str, Any]
    if isinstance(observation, HoneyportHit):
        fields = {"kind": "honeyport", "target": str(observation.target), "target_port": observation.target_port,
                  "transport": observation.transport.value, "profile": observation.profile,
                  "payload": base64.b64encode(observation.payload[:PAYLOAD_LIMIT]).decode(),
                  "touch": observation.touch.value, "follow_up": observation.follow_up}
        if observation.mac:
            fields["mac"] = observation.mac
    else:
        fields = {"kind": "mdns", "name": observation.name, "qtype": observation.qtype,
                  "unicast_response": observation.unicast_response, "legacy_unicast": observation.legacy_unicast,
                  "target": str(observation.target) if observation.target is not None else None}
        if observation.mac:
            fields["mac"] = observation.mac
    return _line({"type": "obs", "seq": seq, "ts": observation.ts, "source": str(observation.source),
                  "source_port": observation.source_port, **fields}).rstrip(b"\n")


_MAC = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}")
"""A MAC as a node's neighbour table gives it (``mac``, optional: older nodes send none)."""


def _get(document: dict[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    value = document.get(key)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise ProtocolError(f"{key}: missing or not a {getattr(kind, '__name__', kind)}")
    return value


def _text(document: dict[str, Any], key: str, pattern: re.Pattern[str] | None = None) -> str:
    value: str = _get(document, key, str)
    if len(value) > MAX_TEXT or (pattern is not None and not pattern.fullmatch(value)):
        raise ProtocolError(f"{key}: not a valid value")
    return value


def _count(document: dict[str, Any], key: str, high: int = 2**63 - 1) -> int:
    value: int = _get(document, key, int)
    if not 0 <= value <= high:
        raise ProtocolError(f"{key}: {value} out of range")
    return value


def _address(document: dict[str, Any], key: str) -> IPAddress:
    try:
        return ip_address(_text(document, key))
    except ValueError:
        raise ProtocolError(f"{key}: not an IP address") from None


_TOUCHES = {Transport.TCP: frozenset({Touch.CONNECT, Touch.HALF_OPEN, Touch.UNKNOWN}),
            Transport.UDP: frozenset({Touch.DATAGRAM})}


def _touch(document: dict[str, Any], transport: Transport) -> Touch:
    """How the honeyport was touched; a node that does not say (an older one) is not taken at its word for a
    TCP touch: ``unknown``, which proves nothing about the source address."""
    if "touch" not in document:
        return Touch.DATAGRAM if transport is Transport.UDP else Touch.UNKNOWN
    value = _get(document, "touch", str)
    if value not in _TOUCHES[transport]:
        raise ProtocolError(f"touch: not a {transport.value} touch")
    return Touch(value)


def _observation(document: dict[str, Any]) -> Submittable:
    ts = float(_get(document, "ts", (int, float)))
    if not math.isfinite(ts) or ts < 0:
        raise ProtocolError("ts: not a time")
    source = _address(document, "source")
    source_port = _count(document, "source_port", 65535)
    kind = _get(document, "kind", str)
    if kind == "honeyport":
        transport = _get(document, "transport", str)
        if transport not in (Transport.TCP.value, Transport.UDP.value):
            raise ProtocolError("transport: not tcp or udp")
        try:
            payload = base64.b64decode(_get(document, "payload", str)[: 2 * PAYLOAD_LIMIT], validate=True)
        except (binascii.Error, ValueError):
            raise ProtocolError("payload: not base64") from None
        return HoneyportHit(ts=ts, source=source, source_port=source_port, target=_address(document, "target"),
                            target_port=_count(document, "target_port", 65535), transport=Transport(transport),
                            profile=_text(document, "profile", _PROFILE), payload=payload[:PAYLOAD_LIMIT],
                            touch=_touch(document, Transport(transport)),
                            follow_up=_get(document, "follow_up", bool) if "follow_up" in document else False,
                            mac=_text(document, "mac", _MAC) if "mac" in document else "")
    if kind == "mdns":
        target = None if document.get("target") is None else _address(document, "target")
        return MdnsQuery(ts=ts, source=source, source_port=source_port, name=_text(document, "name"),
                         qtype=_text(document, "qtype")[:16], target=target,
                         unicast_response=_get(document, "unicast_response", bool),
                         legacy_unicast=_get(document, "legacy_unicast", bool),
                         mac=_text(document, "mac", _MAC) if "mac" in document else "")
    raise ProtocolError("kind: not honeyport or mdns")


def decode_message(line: bytes) -> Message:
    """One protocol line as a typed message; raise :class:`ProtocolError` for anything else."""
    try:
        document = orjson.loads(line)
    except orjson.JSONDecodeError:
        raise ProtocolError("not JSON") from None
    if not isinstance(document, dict):
        raise ProtocolError("not a JSON object")
    if document.get("v") != PROTOCOL_VERSION:
        raise ProtocolError(f"unsupported protocol version {str(document.get('v'))[:16]!r}")
    kind = document.get("type")
    if kind == "obs":
        seq = _count(document, "seq")
        try:
            return Submission(seq, _observation(document))
        except ProtocolError as error:
            raise MalformedObservation(seq, str(error)) from None
    if kind == "ack":
        return Ack(_count(document, "seq"))
    if kind == "hello":
        return Hello(_text(document, "node", NODE_NAME), _text(document, "epoch", EPOCH), _text(document, "token"))
    if kind == "ready":
        return Ready(_count(document, "last_seq"))
    if kind == "refused":
        return Refused(_text(document, "reason")[:80])
    raise ProtocolError("type: unknown message type")


# -- the centre's bounds ---------------------------------------------------------------------------------
