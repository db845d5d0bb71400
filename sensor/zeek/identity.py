"""Zeek's logs of who holds an address → :class:`~sensor.observations.IdentitySeen`.

dhcp.log (a lease's MAC, host name, FQDN and time, and its release), DNS answers in dns.log (a PTR answer's
name for the address it reverses; an A/AAAA answer's addresses for the name asked), ntlm.log and
kerberos.log (the user and workstation of a logon), software.log (client software). Every value is taken as
the record gives it, stripped of control characters and capped (:data:`VALUE_CAP`); nothing here judges it.
Part of :mod:`sensor.zeek.records`, which registers these mappers beside its own.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

from sensor.observations import IdentitySeen, IPAddress, Observation
from sensor.zeek.fields import address, texts, timestamp
from sensor.zeek.logs import Record

VALUE_CAP = 255
"""Characters kept of a name, user or software value (a DNS name is at most 253)."""
ADDRESSES_CAP = 16
"""Addresses taken from one DNS answer, at the most."""
IDENTITY_FIELDS: dict[str | None, tuple[str, ...]] = {
    "dhcp": ("ts", "client_addr", "assigned_addr", "mac", "host_name", "client_fqdn", "lease_time", "msg_types"),
    "ntlm": ("ts", "id.orig_h", "username", "hostname", "domainname", "success"),
    "kerberos": ("ts", "id.orig_h", "client", "success"),
    "software": ("ts", "host", "host_p", "name", "unparsed_version"),
}
"""The fields each identity log's mapper reads."""


def claimed(value: object) -> str:
    """A value a record gives, as text safe to keep: control characters dropped, surrounding blanks and a DNS
    name's final dot stripped, capped at :data:`VALUE_CAP` characters ("" for none)."""
    if not isinstance(value, str):
        return ""
    text = "".join(character for character in value if character.isprintable()).strip()
    return text.removesuffix(".")[:VALUE_CAP]


def _mac(value: object) -> str:
    """A MAC address as Zeek writes it (``02:77:00:00:00:17``), or "" for anything else."""
    text = claimed(value).lower()
    parts = text.split(":")
    if len(parts) != 6 or not all(len(part) == 2 and all(c in "0123456789abcdef" for c in part) for part in parts):
        return ""
    return "" if text in ("00:00:00:00:00:00", "ff:ff:ff:ff:ff:ff") else text


def _dhcp(record: Record) -> IdentitySeen | None:
    """A lease granted (``ACK``: the address, its holder's MAC and names, the lease time) or released."""
    kinds = record.get("msg_types") or ()
    if "ACK" in kinds:
        lease = "ack"
    elif "RELEASE" in kinds:
        lease = "release"
    else:
        return None
    held = record.get("assigned_addr") or record.get("client_addr")
    if not held:
        return None
    lease_time = record.get("lease_time")
    return IdentitySeen(ts=timestamp(record["ts"]), addresses=(address(held),), via="dhcp",
                        mac=_mac(record.get("mac")), host_name=claimed(record.get("host_name")),
                        domain=claimed(record.get("client_fqdn")), lease=lease,
                        valid_for=float(lease_time) if lease == "ack" and lease_time else None)


def reversed_address(name: str) -> IPAddress | None:
    """The address a reverse-lookup name stands for (``136.0.77.10.in-addr.arpa`` → 10.77.0.136, and the
    nibbles of ``ip6.arpa``), or None for any other name."""
    labels = name.lower().removesuffix(".").split(".")
    try:
        if labels[-2:] == ["in-addr", "arpa"] and len(labels) == 6:
            return ipaddress.IPv4Address(".".join(reversed(labels[:4])))
        if labels[-2:] == ["ip6", "arpa"] and len(labels) == 34 and all(len(label) == 1 for label in labels[:32]):
            return ipaddress.IPv6Address(int("".join(reversed(labels[:32])), 16))
    except ValueError:
        return None
    return None


def _ttl(record: Record, used: list[int]) -> float | None:
    """The shortest TTL of the answers used, or None when the record lists none."""
    ttls = record.get("TTLs") or ()
    found = [float(ttls[index]) for index in used if index < len(ttls) and ttls[index] is not None]
    return min(found) if found else None


def dns_answer(record: Record) -> IdentitySeen | None:
    """The name a DNS answer gives an address: a PTR answer's for the address its question reverses, or the
    question's name for the addresses of an A/AAAA answer."""
    answers = texts(record.get("answers"))
    query = claimed(record.get("query"))
    if not answers or not query:
        return None
    qtype = record.get("qtype_name")
    if qtype == "PTR":
        reversed_ = reversed_address(query)
        names = [(index, claimed(answer)) for index, answer in enumerate(answers) if reversed_address(answer) is None
                 and not _is_address(answer)]
        if reversed_ is None or not names or not names[0][1]:
            return None
        return IdentitySeen(ts=timestamp(record["ts"]), addresses=(reversed_,), via="dns_ptr",
                            domain=names[0][1], valid_for=_ttl(record, [names[0][0]]))
    if qtype not in ("A", "AAAA"):
        return None
    found = [(index, answer) for index, answer in enumerate(answers) if _is_address(answer)][:ADDRESSES_CAP]
    if not found:
        return None
    return IdentitySeen(ts=timestamp(record["ts"]),
                        addresses=tuple(address(answer) for _, answer in found), via="dns_a",
                        domain=query, valid_for=_ttl(record, [index for index, _ in found]))


def _is_address(text: object) -> bool:
    try:
        ipaddress.ip_address(text if isinstance(text, str) else "")
    except ValueError:
        return False
    return True


def _ntlm(record: Record) -> IdentitySeen | None:
    """The user and workstation an NTLM logon names (one the server refused names nobody)."""
    if record.get("success") is False:
        return None
    user, domain = claimed(record.get("username")), claimed(record.get("domainname"))
    host = claimed(record.get("hostname"))
    if not user and not host:
        return None
    return IdentitySeen(ts=timestamp(record["ts"]), addresses=(address(record["id.orig_h"]),),
                        via="ntlm", host_name=host, user=f"{domain}\\{user}"[:VALUE_CAP] if user and domain else user)


def _kerberos(record: Record) -> IdentitySeen | None:
    """The client principal a KDC issued a ticket to (``alice/CORP.TEST`` in the log: ``alice@CORP.TEST``)."""
    client = claimed(record.get("client"))
    if record.get("success") is False or not client:
        return None
    name, _, realm = client.rpartition("/")
    return IdentitySeen(ts=timestamp(record["ts"]), addresses=(address(record["id.orig_h"]),),
                        via="kerberos", user=f"{name}@{realm}" if name and realm else client)


def _software(record: Record) -> IdentitySeen | None:
    """Client software a host announced (software.log rows with a port are servers', left out)."""
    if record.get("host_p") is not None or not record.get("host"):
        return None
    software = claimed(record.get("unparsed_version")) or claimed(record.get("name"))
    if not software:
        return None
    return IdentitySeen(ts=timestamp(record["ts"]), addresses=(address(record["host"]),),
                        via="software", software=software)


IDENTITY_MAPPERS: dict[str, Callable[[Record], Observation | None]] = {
    "dhcp": _dhcp,
    "ntlm": _ntlm,
    "kerberos": _kerberos,
    "software": _software,
}
