"""Who the scanner is, in the alert: ECS ``source.mac``, ``source.domain``, ``related.hosts`` and ``related.user``
from the identity valid at the evidence's time, the ``t1046.identity`` block with every fact's source and
span (:func:`sensor.alerts.render.identity_block`), and the name a headline calls the scanner by (docs/alerts.md,
"Identity"). It renders only what the Alert says."""

from __future__ import annotations

from typing import Any

from sensor.alerts.alert import Alert, IdentityFact


def ecs_mac(text: str) -> str | None:
    """A MAC address as ECS writes it (``00-0D-3A-F9-DC-A6``), or None when ``text`` is none."""
    digits = "".join(character for character in text.upper() if character in "0123456789ABCDEF")
    return "-".join(digits[at:at + 2] for at in range(0, 12, 2)) if len(digits) == 12 else None


def _first(alert: Alert, kind: str) -> IdentityFact | None:
    """The fact of ``kind`` an alert names the scanner by: the best source's newest (the order the table gave)."""
    return next((fact for fact in alert.identity if fact.kind == kind), None)


def bare_user(user: str) -> str:
    """A user name without its domain or realm (``CORP\\alice``, ``alice@CORP.TEST`` → ``alice``)."""
    return user.rpartition("\\")[2].partition("@")[0] or user


def source_fields(alert: Alert) -> dict[str, Any]:
    """ECS ``source.mac`` and ``source.domain`` of the scanner, where known."""
    fields: dict[str, Any] = {}
    mac = _first(alert, "mac")
    if mac is not None and (text := ecs_mac(mac.value)) is not None:
        fields["mac"] = text
    domain = _first(alert, "domain")
    if domain is not None:
        fields["domain"] = domain.value
    return fields


def related_fields(alert: Alert) -> dict[str, list[str]]:
    """ECS ``related.hosts`` (every host name and FQDN) and ``related.user`` (every user, bare), where known."""
    fields: dict[str, list[str]] = {}
    hosts = list(dict.fromkeys(fact.value.lower() for fact in alert.identity if fact.kind in ("host_name", "domain")))
    if hosts:
        fields["hosts"] = hosts
    users = list(dict.fromkeys(bare_user(fact.value) for fact in alert.identity if fact.kind == "user"))
    if users:
        fields["user"] = users
    return fields


def named(alert: Alert) -> str:
    """The scanner as a headline names it: its address, and its host name where known
    (``10.77.0.136 (wks-17.corp.test)``)."""
    if alert.scanner is None:
        return ""
    name = _first(alert, "domain") or _first(alert, "host_name")
    return f"{alert.scanner} ({name.value})" if name is not None else str(alert.scanner)
