"""Event time: ``run`` fed the same logs — live, 10 minutes late, days late, in bursts, across a crash and a
restart — ends with the incidents ``replay`` ends with (same scanners, action, rules, counts).

The daemon's own parts do the work (its follower, pipeline, checkpoints and shutdown flush, driven one
step at a time); only the wall clock is the test's, so "late" is exact and the machine's speed is out of
the picture. ``tests/daemon/test_crash.py`` does the same with real processes and ``kill -9``.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from sensor.alerts.alert import Alert
from sensor.alerts.render import to_ecs
from sensor.config import load_config
from sensor.daemon.run import Daemon
from sensor.metrics import Metrics
from sensor.replay import replay
from sensor.zeek import KINDS
from tests.alertcheck import validate_alert
from tests.test_scenarios import late_notices

DATA = Path(__file__).resolve().parents[1] / "data"
LOGS = tuple(f"{kind}.log" for kind in KINDS)
CAPTURE_DIRS = sorted({path.parent for name in LOGS for path in DATA.glob(f"**/{name}")})
DAY = 86400.0


def _ts(line: str) -> float:
    return float(json.loads(line)["ts"]) if line.startswith("{") else float(line.split("\t", 1)[0])


def _pieces(directory: Path, parts: int) -> dict[str, tuple[str, list[list[str]]]]:
    """Each log's header, and its records cut into ``parts`` bursts in file order."""
    pieces = {}
    for name in LOGS:
        path = directory / name
        if not path.exists():
            continue
        lines = path.read_text().splitlines(keepends=True)
        header = "".join(line for line in lines if line.startswith("#") and not line.startswith("#close"))
        body = [line for line in lines if not line.startswith("#")]
        size = len(body) // parts + 1
        pieces[name] = header, [body[i * size:(i + 1) * size] for i in range(parts)]
    return pieces


def final_state(alerts: list[Alert]) -> dict[str, tuple[object, ...]]:
    """The last update per scanner: action, rules, the counts an analyst reads, and who the scanner is."""
    return {str(a.scanner): (a.action.value, tuple(sorted(a.rules)), a.distinct_targets, a.distinct_ports, a.probes,
                             a.failed, tuple(sorted({(fact.kind, fact.value) for fact in a.identity})))
            for a in alerts}


def replayed(directory: Path, config_path: Path) -> dict[str, tuple[object, ...]]:
    alerts: list[Alert] = []
    with open(os.devnull, "wb") as sink:
        replay([directory], load_config(config_path), sink, on_alert=alerts.append)
    return final_state(alerts)


class Run:
    """One ``run`` daemon, stepped by hand, on a wall clock the test sets."""

    def __init__(self, config_path: Path, wall: Callable[[], float]) -> None:
        self.daemon = Daemon(load_config(config_path), config_path, Metrics(), None, clock=wall)
        self.daemon._restore()
        self.committed: list[Alert] = []
        self.loop = asyncio.new_event_loop()
        """Checkpoints are written by a forked child and committed on the daemon's event loop."""

    def read_all(self) -> None:
        """Poll the logs until the follower is caught up, then let the daemon's tick run."""
        while self.loop.run_until_complete(self.daemon._follow()):
            pass
        self.daemon._tick()

    def commit(self) -> None:
        pending = list(self.daemon.outbox.pending)
        self.loop.run_until_complete(self.daemon.commit_wait())
        assert not self.daemon.outbox.pending and self.daemon.seq > 0, "the commit held"
        for alert in pending:
            validate_alert(to_ecs(alert, "event-time"))
        self.committed.extend(pending)

    def stop(self) -> None:
        """What SIGTERM does to the pipeline: an update for every incident not yet reported, a last commit."""
        self.daemon.pipeline.flush()
        self.commit()
        self.loop.close()


def run_live(directory: Path, tmp_path: Path, late: float, gap: float, crash: bool) -> list[Alert]:
    """Feed the logs in three bursts to a daemon whose wall clock is ``late`` seconds past each burst's
    newest record, ``gap`` seconds more between bursts; with ``crash``, the daemon dies after reading the
    second burst (before committing it) and a new one starts from the checkpoint."""
    logs = tmp_path / "zeek"
    logs.mkdir()
    config_path = tmp_path / "sensor.yaml"
    config_path.write_text(f"sensor: {{name: event-time, state_dir: {tmp_path / 'state'}}}\n"
                           f"zeek: {{log_dir: {logs}}}\n"
                           "honeyports: {listen: [], tcp: ''}\n"
                           f"outputs:\n  - {{type: file, path: {tmp_path / 'alerts.jsonl'}}}\n")
    pieces = _pieces(directory, 3)
    for name, (header, _) in pieces.items():
        (logs / name).write_text(header)
    newest = min((_ts(chunk[0]) for _, chunks in pieces.values() for chunk in chunks if chunk), default=0.0)
    wall = [newest + late]
    run = Run(config_path, lambda: wall[0])
    run.read_all()
    run.commit()
    committed: list[Alert] = []
    for burst in range(3):
        for name, (_, chunks) in pieces.items():
            with (logs / name).open("a") as stream:
                stream.writelines(chunks[burst])
            if chunks[burst]:
                newest = max(newest, *(_ts(line) for line in chunks[burst]))
        wall[0] = max(wall[0], newest + late) + gap
        run.read_all()
        if crash and burst == 1:
            committed.extend(run.committed)
            run.loop.close()
            run = Run(config_path, lambda: wall[0])
            run.read_all()
        run.commit()
    run.stop()
    return committed + run.committed


VARIANTS = {
    "live": (1.0, 2.0, False),
    "10 minutes late": (600.0, 2.0, False),
    "days late": (3 * DAY, 2.0, False),
    "bursts far apart": (5.0, 120.0, False),
    "crash and restart, late": (600.0, 2.0, True),
}


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("directory", late_notices(CAPTURE_DIRS), ids=lambda d: str(d.relative_to(DATA)))
def test_run_ends_with_the_incidents_of_replay(directory: Path, variant: str, tmp_path: Path) -> None:
    late, gap, crash = VARIANTS[variant]
    alerts = run_live(directory, tmp_path, late, gap, crash)
    want = replayed(directory, tmp_path / "sensor.yaml")
    assert final_state(alerts) == want
    truth = json.loads(next(p for p in (directory / "truth.json", directory.parent / "truth.json") if p.exists())
                       .read_text())
    package = any(directory.glob("t1046*.log"))  # only this repository's Zeek package writes them
    assert set(want) == {scanner["ip"] for scanner in truth["scanners"]
                         if package or not scanner.get("package_only")}, "replay gives the capture's truth"


def test_every_incident_update_is_committed_once_and_in_order_across_the_crash(tmp_path: Path) -> None:
    alerts = run_live(DATA / "captures" / "s2_horizontal_syn_routed" / "zeek", tmp_path, 600.0, 2.0, True)
    by_incident: dict[str, list[int]] = {}
    for alert in alerts:
        by_incident.setdefault(alert.incident_id, []).append(alert.update)
    assert by_incident
    for updates in by_incident.values():
        assert updates == list(range(1, len(updates) + 1)), "no update lost, none repeated"


def test_a_live_scans_final_extent_reaches_the_sinks_within_60_s_of_its_last_probe(tmp_path: Path) -> None:
    """Zeek writes each line a few seconds after its connection; the daemon ticks every 5 s; the update with
    the scan's final extent must be committed within 60 s of the last probe, without waiting for
    ``idle_timeout`` or a shutdown."""
    source = DATA / "captures" / "s1_vertical_syn" / "zeek" / "conn.log"
    lines = source.read_text().splitlines(keepends=True)
    header = "".join(line for line in lines if line.startswith("#") and not line.startswith("#close"))
    body = [line for line in lines if not line.startswith("#")]
    last_probe = max(_ts(line) for line in body)
    logs = tmp_path / "zeek"
    logs.mkdir()
    (logs / "conn.log").write_text(header)
    config_path = tmp_path / "sensor.yaml"
    config_path.write_text(f"sensor: {{name: lifecycle, state_dir: {tmp_path / 'state'}}}\n"
                           f"zeek: {{log_dir: {logs}}}\nhoneyports: {{listen: [], tcp: ''}}\n"
                           f"outputs:\n  - {{type: file, path: {tmp_path / 'alerts.jsonl'}}}\n")
    wall = [min(_ts(line) for line in body)]
    run = Run(config_path, lambda: wall[0])
    with (logs / "conn.log").open("a") as stream:
        for number, line in enumerate(sorted(body, key=_ts), start=1):
            wall[0] = max(wall[0], _ts(line) + 5.0)
            stream.write(line)
            if number % 100 == 0:  # the daemon reads as Zeek writes, each line 5 s after its connection
                stream.flush()
                run.read_all()
                run.commit()
    run.read_all()
    run.commit()
    final_at = None
    while final_at is None and wall[0] < last_probe + 300:
        wall[0] += 5.0
        run.read_all()
        run.commit()
        if any(a.distinct_ports == 1000 and not a.closed for a in run.committed):
            final_at = wall[0]
    assert final_at is not None and final_at - last_probe <= 60.0, final_at
    assert run.committed[0].distinct_ports < 1000, "the incident opened before the scan was over"
    assert not any(a.closed for a in run.committed), "closing waits for idle_timeout"
    run.loop.close()
