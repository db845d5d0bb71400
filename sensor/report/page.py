"""The report page: one self-contained HTML file (inline CSS, one inline script, PNGs as data: URIs).

A summary table lists every incident (sortable by clicking a column heading), then one section per
incident: headline, picture, rules and when they fired, evidence, Zeek uids to pivot on. Every string that
did not come from this module is escaped with :func:`html.escape`, its controls and bidirectional formatting
characters with :func:`sensor.text.visible` -- honeyport payloads and mDNS names are chosen by the scanner.
A Content-Security-Policy allows nothing but the inline style, data: images and the page's own script (by
hash), so the page loads nothing from anywhere.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from sensor.alerts.catalogue import RULES
from sensor.report.incidents import Incident, duration, headline, utc
from sensor.report.probes import Probes
from sensor.text import visible

_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;max-width:1260px;padding:0 16px 48px;color:#1d1d1d}
h1{font-size:22px;margin:20px 0 4px}h2{font-size:17px;margin:0 0 6px}h3{font-size:14px;margin:14px 0 4px}
table{border-collapse:collapse;margin:4px 0 8px}th,td{padding:3px 8px;border-bottom:1px solid #ddd;
text-align:left;vertical-align:top}th{background:#f3f3f3}td.n,th.n{text-align:right}
#summary th{cursor:pointer;user-select:none}#summary th[aria-sort=ascending]::after{content:" \\25B2"}
#summary th[aria-sort=descending]::after{content:" \\25BC"}
section.incident{border-top:3px solid #444;margin-top:28px;padding-top:10px}
img.picture{max-width:100%;height:auto;border:1px solid #ddd}code{font-size:12px;overflow-wrap:anywhere}
.muted{color:#666}.open{color:#b00020;font-weight:600}dl{display:grid;grid-template-columns:max-content auto;
gap:2px 12px;margin:6px 0}dt{font-weight:600}dd{margin:0}
"""
_SCRIPT = """
document.querySelectorAll('#summary th').forEach(function (th, column) {
  th.addEventListener('click', function () {
    var body = th.closest('table').tBodies[0];
    var down = th.getAttribute('aria-sort') === 'ascending';
    th.closest('tr').querySelectorAll('th').forEach(function (h) { h.removeAttribute('aria-sort'); });
    th.setAttribute('aria-sort', down ? 'descending' : 'ascending');
    var key = function (row) { var cell = row.cells[column]; return cell.dataset.sort || cell.textContent; };
    var rows = Array.prototype.slice.call(body.rows);
    var numeric = rows.every(function (row) { return key(row) !== '' && !isNaN(Number(key(row))); });
    rows.sort(function (a, b) {
      var x = key(a), y = key(b);
      var order = numeric ? Number(x) - Number(y) : x.localeCompare(y);
      return down ? -order : order;
    });
    rows.forEach(function (row) { body.appendChild(row); });
  });
});
"""
_ATTACK = ("T1046 Network Service Discovery (tactic TA0007 Discovery)", "https://attack.mitre.org/techniques/T1046/")


@dataclass(frozen=True, slots=True)
class Section:
    """What the page shows of one incident."""

    incident: Incident
    probes: Probes
    picture: bytes
    """PNG bytes."""


def _e(value: object) -> str:
    return escape(visible(str(value)), quote=True)


def _anchor(incident: Incident) -> str:
    return f"incident-{_e(incident.incident_id)}"


def _csp() -> str:
    digest = base64.b64encode(hashlib.sha256(_SCRIPT.encode()).digest()).decode()
    return f"default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'sha256-{digest}'"


def _summary(sections: Sequence[Section]) -> str:
    headings = [("#", "n"), ("scanner", ""), ("action", ""), ("first seen (UTC)", ""), ("duration", "n"),
                ("probes", "n"), ("failed", "n"), ("targets", "n"), ("ports", "n"), ("risk", "n"),
                ("rules", ""), ("sources", ""), ("state", "")]
    head = "".join(f'<th class="{cls}" scope="col">{_e(name)}</th>' for name, cls in headings)
    rows = []
    for number, section in enumerate(sections, 1):
        latest = section.incident.latest
        span = latest.last_seen - latest.first_seen
        scanner = latest.scanner
        order = "9" if scanner is None else f"{scanner.version}-{int(scanner):040d}"
        cells = [
            f'<td class="n">{number}</td>',
            f'<td data-sort="{order}"><a href="#{_anchor(section.incident)}">{_e(latest.who)}</a></td>',
            f"<td>{_e(latest.action)}</td>",
            f'<td data-sort="{latest.first_seen:.6f}">{_e(utc(latest.first_seen))}</td>',
            f'<td class="n" data-sort="{span:.6f}">{_e(duration(span))}</td>',
            *(f'<td class="n">{latest.count(name)}</td>'
              for name in ("probes", "failed", "distinct_hosts", "distinct_ports")),
            f'<td class="n">{latest.risk_score}</td>',
            f"<td>{_e(', '.join(latest.rules))}</td>",
            f"<td>{_e(', '.join(latest.evidence_sources))}</td>",
            f"<td>{'closed' if latest.closed else 'open'}</td>",
        ]
        rows.append(f'<tr class="incident-row">{"".join(cells)}</tr>')
    body = "".join(rows) or f'<tr><td colspan="{len(headings)}" class="muted">no incidents</td></tr>'
    return (f'<table id="summary"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
            '<p class="muted">Click a column heading to sort.</p>')


def _facts(section: Section) -> str:
    latest = section.incident.latest
    state = ('<span class="muted">closed: the scanner went quiet</span>' if latest.closed else
             '<span class="open">open at the end of the input: it may still be going</span>')
    who = _e(latest.who) + (f" (authorized: {_e(latest.authorized)})" if latest.authorized else "")
    items = [
        ("who", who),
        ("identity", _identity(latest.identity)),
        ("history", _history(latest.history)),
        ("what", f"{_e(latest.action)}: {_e(latest.rule_name)} ({_e(latest.rule)})"),
        ("when", f"{_e(utc(latest.first_seen))} to {_e(utc(latest.last_seen))}"
                 f" ({_e(duration(latest.last_seen - latest.first_seen))}); {state}"),
        ("ATT&amp;CK", f'<a href="{_ATTACK[1]}">{_e(_ATTACK[0])}</a>'),
        ("counts", _e(", ".join(f"{name.replace('_', ' ')} {value}" for name, value in latest.counts))),
        ("risk", f"{latest.risk_score} ({_e(latest.severity)}), confidence {_e(latest.confidence)};"
                 f" {section.incident.updates} update{'s' if section.incident.updates != 1 else ''} read,"
                 f" the newest is number {latest.update}"),
        ("probes drawn", f"{len(section.probes)} from conn.log" if len(section.probes) else
                         '<span class="muted">none: the input holds no conn.log records of this incident</span>'),
    ]
    return "<dl>" + "".join(f"<dt>{name}</dt><dd>{value}</dd>" for name, value in items) + "</dl>"


_KIND_WORDS = {"mac": "MAC", "host_name": "host", "domain": "FQDN", "user": "user", "software": "software"}


def _identity(facts: Sequence[tuple[str, str, str]]) -> str:
    """Who held the scanner's address at the time of its evidence: each value once, with where it was read."""
    if not facts:
        return '<span class="muted">unknown: no DHCP, DNS, logon or link record names this address then</span>'
    sources: dict[tuple[str, str], list[str]] = {}
    for kind, value, source in facts:
        sources.setdefault((kind, value), []).append(source)
    return "; ".join(f"{_KIND_WORDS.get(kind, _e(kind))} <b>{_e(value)}</b> ({_e(', '.join(where))})"
                     for (kind, value), where in sources.items())


def _history(history: dict[str, object] | None) -> str:
    """Whether the sensor knew the scanner before its evidence."""
    if history is None:
        return '<span class="muted">not in the alerts</span>'
    before = history.get("seconds_before")
    seconds = float(before) if isinstance(before, int | float) else 0.0
    if not history.get("seen_before"):
        return f"new to the sensor: first seen {_e(duration(seconds))} before its first evidence"
    peers = history.get("usual_peers")
    usual = ", ".join(f"{_e(peer.get('ip'))}:{_e(peer.get('port'))}/{_e(peer.get('transport'))}"
                      for peer in peers if isinstance(peer, dict)) if isinstance(peers, list) else ""
    incidents = history.get("incidents_before") or 0
    return (f"seen {_e(duration(seconds))} before its first evidence, since {_e(history.get('first_seen'))}"
            f"{f'; usual peers {usual}' if usual else ''}; "
            f"{f'{_e(incidents)} earlier incidents' if incidents else 'never scanned before'}")


def _rules(incident: Incident) -> str:
    start = incident.latest.first_seen
    rows = []
    for firing in incident.firings:
        rule = RULES.get(firing.rule)
        name = rule.name if rule is not None else ""
        rows.append(f"<tr><td>{_e(firing.rule)}</td><td>{_e(name)}</td><td>{_e(utc(firing.ts))}</td>"
                    f'<td class="n">+{_e(duration(max(firing.ts - start, 0.0)))}</td>'
                    f'<td class="n">{firing.update}</td></tr>')
    return ('<table class="rules"><thead><tr><th>rule</th><th>name</th><th>first fired (UTC)</th>'
            '<th class="n">after first seen</th><th class="n">update</th></tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table>")


def _listing(values: Sequence[str], empty: str = "none") -> str:
    if not values:
        return f'<span class="muted">{_e(empty)}</span>'
    return ", ".join(f"<code>{_e(value)}</code>" for value in values)


def _evidence(incident: Incident) -> str:
    latest = incident.latest
    items = [
        ("sources", _listing(latest.evidence_sources)),
        ("Zeek notes", _listing(latest.notes)),
        ("honeyports", f"{latest.count('honeyport_hits')} hits; profiles "
                       f"{_listing(latest.honeyport_profiles)}; nodes {_listing(latest.honeyport_nodes)}"),
        ("honeyport payloads", _listing(latest.honeyport_payloads)),
        ("mDNS names browsed", _listing(latest.mdns_names)),
        ("sample of targets", _listing(latest.targets)),
        ("sample of ports", _listing([str(port) for port in latest.ports])),
    ]
    return "<dl>" + "".join(f"<dt>{name}</dt><dd>{value}</dd>" for name, value in items) + "</dl>"


def _pivots(section: Section) -> str:
    rows = [f"<tr><td><code>{_e(p.uid)}</code></td><td>{_e(utc(p.ts))}</td><td>{_e(p.target)}</td>"
            f'<td class="n">{p.port}/{_e(p.transport)}</td><td>{_e(p.outcome.label)}</td></tr>'
            for p in section.probes.pivots]
    uids = list(dict.fromkeys([*(p.uid for p in section.probes.pivots), *section.incident.latest.uids]))
    table = ('<table class="pivots"><thead><tr><th>uid</th><th>time (UTC)</th><th>target</th>'
             '<th class="n">port</th><th>outcome</th></tr></thead>'
             f"<tbody>{''.join(rows)}</tbody></table>") if rows else ""
    command = ("<p>In conn.log: <code>grep -F" + "".join(f" -e {_e(uid)}" for uid in uids[:12])
               + " conn.log</code></p>") if uids else '<p class="muted">no Zeek uids</p>'
    alert_uids = f"<p>Uids the alert sampled: {_listing(section.incident.latest.uids)}</p>"
    return ("<p>The first and last probe, then the first probe of each target and port that found something:"
            "</p>" + table + alert_uids + command) if rows else alert_uids + command


def _section(number: int, section: Section) -> str:
    incident = section.incident
    picture = base64.b64encode(section.picture).decode()
    return (f'<section class="incident" id="{_anchor(incident)}" data-scanner="{_e(incident.latest.who)}">'
            f"<h2>{number}. {_e(headline(incident))}</h2><p>{_e(incident.latest.message)}</p>"
            f"{_facts(section)}"
            f'<img class="picture" alt="what {_e(incident.latest.who)} did: rate, timeline, targets x ports" '
            f'src="data:image/png;base64,{picture}">'
            f"<h3>Rules that fired</h3>{_rules(incident)}"
            f"<h3>Evidence</h3>{_evidence(incident)}"
            f"<h3>Zeek uids to pivot on</h3>{_pivots(section)}"
            f'<p><a href="#top">back to the summary</a></p></section>')


def page(sections: Sequence[Section], inputs: Sequence[str]) -> str:
    """The whole HTML document."""
    count = len(sections)
    title = f"t1046-sensor report: {count} incident{'s' if count != 1 else ''}"
    intro = (f'<p>Read from {_listing(inputs)}. Each incident is one scanner\'s activity as the correlator saw '
             'it (MITRE ATT&amp;CK T1046, Network Service Discovery).</p>')
    empty = '' if count else '<p id="no-incidents">No incidents: nothing in the input looks like scanning.</p>'
    return ("<!doctype html>\n"
            f'<html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{_csp()}">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{_e(title)}</title><style>{_STYLE}</style></head>"
            f'<body><h1 id="top">{_e(title)}</h1>{intro}{empty}'
            f'<h2>Summary</h2>{_summary(sections)}'
            + "".join(_section(number, section) for number, section in enumerate(sections, 1))
            + f"<script>{_SCRIPT}</script></body></html>\n")
