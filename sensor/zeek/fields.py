"""What the fields of a Zeek record say, shared by the readers of records one by one (:mod:`.records`) and
a block of conn records at a time (:mod:`.conncolumns`): an address (parsed once, cached, carrying the
correlator's integer key), a Zeek time, and a conn record's transport and outcome (:func:`conn_outcome`,
memoised by :func:`verdict`). It reads no log and imports neither reader.

A record may hold anything in any field (a JSON log line is not checked against a schema), so each field is
taken through a checker of its type -- :func:`address`, :func:`timestamp` (between the epoch and year 9999),
:func:`text`, :func:`port`, :func:`count`, :func:`texts` -- which raises ``TypeError`` or ``ValueError`` for
anything else: the mapper counts the record as malformed instead of handing the correlator a value it
cannot judge.
"""

from __future__ import annotations

import ipaddress
import socket
from datetime import datetime
from typing import Any

from sensor.observations import Outcome, Transport, address_key

ICMP_ECHO_REQUESTS = frozenset({8, 128})
_STEALTH_HISTORY = frozenset("FAIQr^")
"""History letters of a probe without a handshake: the originator's FIN (F), ACK (A) or odd flag mixes
(I, Q), at most a reset (r) in answer, and Zeek's direction flip (^). A probe with none of SYN, FIN, RST and
ACK and no payload -- NULL, CWR, ECE, PSH or URG only -- leaves no letter at all: it is a probe when
nothing answered it (an empty history with a reply is something else). Real traffic picked up mid-stream
carries data or the responder's ACK (D, d, a) and stays OTHER."""
_LATER = frozenset("ADFadf")
"""History letters of a handshake that went on after the SYN-ACK: the originator's ACK, data or FIN, the
responder's ACK, data or FIN."""
_GAPS = frozenset("Gg")
"""History letters of a content gap (Zeek's ``missed_bytes``): the capture lost packets."""
ADDRESS_CACHE: dict[str, _Address] = {}
"""Addresses parsed so far, by their text (cleared when it holds :data:`_ADDRESS_CACHE_SIZE`)."""
_ADDRESS_CACHE_SIZE = 1 << 18
LATEST_TIME = 253402300799.0
"""The last second of year 9999: a record's time is between the epoch and this (an alert shows it as a date)."""


class _Prepared:
    """Mixin for address classes: the hash and the correlator's integer key
    (:func:`~sensor.observations.address_key`) are computed once, when the address is made (parsed, or read
    from a checkpoint). The stock hash formats a hex string on every call."""

    __slots__ = ()
    _hash: int

    def __hash__(self) -> int:
        return self._hash


class _PreparedIPv4(_Prepared, ipaddress.IPv4Address):
    __slots__ = ("_hash", "key")

    def __init__(self, address: int | str | bytes) -> None:
        super().__init__(address)
        self._hash = ipaddress.IPv4Address.__hash__(self)
        self.key = address_key(self)


class _PreparedIPv6(_Prepared, ipaddress.IPv6Address):
    __slots__ = ("_hash", "key")

    def __init__(self, address: int | str | bytes) -> None:
        super().__init__(address)
        self._hash = ipaddress.IPv6Address.__hash__(self)
        self.key = address_key(self)


_Address = _PreparedIPv4 | _PreparedIPv6


def _parse_address(text: str) -> _Address:
    try:
        return _PreparedIPv4(socket.inet_pton(socket.AF_INET, text))
    except OSError:
        pass
    try:
        return _PreparedIPv6(socket.inet_pton(socket.AF_INET6, text))
    except OSError:
        parsed = ipaddress.ip_address(text)  # a scoped IPv6 address, or the ValueError for a bad one
        return _PreparedIPv4(text) if parsed.version == 4 else _PreparedIPv6(text)


def packed_address(data: bytes) -> _Address:
    """An address from its packed bytes (4 or 16 of them), or from its text when it has a scope."""
    if len(data) == 4:
        return _PreparedIPv4(data)
    if len(data) == 16:
        return _PreparedIPv6(data)
    return _parse_address(data.decode("ascii"))


def address(text: str) -> _Address:
    """Parse an address (equal to, and hashing like, :func:`ipaddress.ip_address`'s), caching those that
    recur in a log; ``TypeError`` for what is not text, ``ValueError`` for text that is no address."""
    found = ADDRESS_CACHE.get(text) if type(text) is str else None
    if found is None:
        if not isinstance(text, str):
            raise TypeError(f"{type(text).__name__} where an address was expected")
        if len(ADDRESS_CACHE) >= _ADDRESS_CACHE_SIZE:
            ADDRESS_CACHE.clear()
        found = ADDRESS_CACHE[text] = _parse_address(text)
    return found


def timestamp(value: Any) -> float:
    """A Zeek time: epoch seconds (TSV, default JSON) or ISO 8601 (``JSON::TS_ISO8601``), between the epoch
    and :data:`LATEST_TIME`; ``ValueError`` for anything else."""
    if type(value) is float and 0.0 <= value <= LATEST_TIME:
        return value
    found: float
    if isinstance(value, int | float) and not isinstance(value, bool):
        found = float(value)
    elif isinstance(value, str):
        try:
            found = float(value)
        except ValueError:
            try:
                found = datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
            except (ValueError, OverflowError):
                raise ValueError(f"{value[:40]!r} is not a time") from None
    else:
        raise ValueError(f"{type(value).__name__} is not a time")
    if not 0.0 <= found <= LATEST_TIME:  # NaN too
        raise ValueError(f"{found!r} is not a time between the epoch and year 9999")
    return found


def text(value: Any) -> str:
    """A text field's value; ``TypeError`` for anything else."""
    if isinstance(value, str):
        return value
    raise TypeError(f"{type(value).__name__} where text was expected")


def port(value: Any) -> int:
    """A port (or an ICMP type) field's value, 0 to 65535; ``TypeError``/``ValueError`` for anything else."""
    if type(value) is not int:
        raise TypeError(f"{type(value).__name__} where a port was expected")
    if not 0 <= value <= 65535:
        raise ValueError(f"{value} is not a port")
    return value


def count(value: Any) -> int:
    """A count field's value (0 for unset); ``TypeError`` for anything else."""
    if value is None:
        return 0
    if type(value) is not int:
        raise TypeError(f"{type(value).__name__} where a count was expected")
    return value


def texts(value: Any) -> list[str]:
    """A set or vector of text (empty for unset); ``TypeError`` for anything else."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise TypeError(f"{type(value).__name__} where a list was expected")
    return [text(item) for item in value]


def conn_outcome(proto: str, state: str, history: str, resp_pkts: int | None, tags: frozenset[str],
                 lossy: bool) -> Outcome:
    """Judge a conn.log record as a first contact, from its ``conn_state`` and ``history``; ``lossy`` when
    Zeek missed bytes of it (``missed_bytes`` > 0).

    ``history`` letters are upper case for the originator, lower case for the responder: ``S`` SYN,
    ``h`` SYN-ACK, ``A`` ACK, ``D`` data, ``R``/``r`` reset, ``F``/``f`` FIN, ``G``/``g`` a content gap.
    A SYN-ACKed contact is half-open only when the originator reset it and nothing else was seen of it (nmap
    -sS to an open port: ``ShR``). A SYN-ACK and nothing more from the originator, no reset, is what a
    capture that lost packets shows (a SPAN port under load; a filtered trace): not a probe. Where the
    responder went on (its ACK, data or FIN) the connection worked, whatever the capture missed.
    """
    if "icmp_unreachable" in tags or "rejected" in tags:
        return Outcome.REJECTED
    if "half_open" in tags:
        return Outcome.HALF_OPEN
    if "stealth" in tags:
        return Outcome.STEALTH
    if proto == "tcp":
        if state == "REJ":
            return Outcome.REJECTED
        if state in ("S0", "RSTOS0", "SH") and "S" in history:  # ACK or data after it: the answer went unseen
            return Outcome.OTHER if "A" in history or "D" in history else Outcome.UNANSWERED
        if "S" not in history:
            if not history.strip("^"):
                return Outcome.STEALTH if not resp_pkts else Outcome.OTHER
            return Outcome.STEALTH if _STEALTH_HISTORY.issuperset(history) else Outcome.OTHER
        if state in ("OTH", "RSTRH", "SHR"):
            return Outcome.OTHER
        if "h" in history and "A" not in history and "D" not in history:
            if not _LATER.isdisjoint(history):
                return Outcome.ESTABLISHED
            if "R" in history and not lossy and _GAPS.isdisjoint(history):
                return Outcome.HALF_OPEN
            return Outcome.OTHER
        return Outcome.ESTABLISHED
    if proto == "udp":
        if "unanswered" in tags or (state == "S0" and not resp_pkts):
            return Outcome.UNANSWERED
        if "d" in history or (resp_pkts or 0) > 0:
            return Outcome.ESTABLISHED
        return Outcome.OTHER
    return Outcome.OTHER


NO_TAGS: frozenset[str] = frozenset()
TRANSPORTS = {"tcp": Transport.TCP, "udp": Transport.UDP}

_Verdict = tuple[Transport | None, Outcome | None]
VerdictKey = tuple[str, str, str, bool, bool]
"""What a conn record's verdict depends on, untagged: (proto, conn_state, history, answered, lossy)."""
NEEDED = frozenset({"ts", "proto", "id.orig_h", "id.resp_h"})
"""The fields a conn record cannot be mapped without."""
def verdict(key: VerdictKey) -> _Verdict:
    """(transport, outcome) of an untagged conn record by (proto, conn_state, history, answered, lossy), memoised;
    ICMP's outcome is judged by its type (the source port), and (None, None) means no evidence."""
    found = _VERDICTS.get(key)
    if found is not None:
        return found
    proto = key[0]
    transport = TRANSPORTS.get(proto)
    if transport is not None:
        found = (transport, conn_outcome(proto, key[1], key[2], int(key[3]), NO_TAGS, key[4]))
    else:
        found = (Transport.ICMP, None) if proto == "icmp" else (None, None)
    if len(_VERDICTS) >= 4096:
        _VERDICTS.clear()
    _VERDICTS[key] = found
    return found


_VERDICTS: dict[VerdictKey, _Verdict] = {}
"""Memo of :func:`verdict`, for records read row by row and column by column alike: a log holds only a
few hundred distinct (proto, state, history, answered, lossy) combinations."""
