"""History: whether the scanner was seen before, since when, its usual peers -- the same from the batch path
and record by record, kept past its track's expiry, bounded."""

from __future__ import annotations

from ipaddress import ip_address

from sensor.config import DetectionConfig
from sensor.detect.correlator import Correlator
from sensor.detect.history import USUAL_CAP
from sensor.observations import ConnAttempt, ConnRows, Outcome, Transport

SCANNER = ip_address("10.0.0.5")
SERVER = ip_address("10.0.0.2")


def _conn(ts: float, target: str, port: int, outcome: Outcome, source: str = "10.0.0.5") -> ConnAttempt:
    return ConnAttempt(ts, ip_address(source), 40000, ip_address(target), port, Transport.TCP, outcome)


def _work(start: float) -> list[ConnAttempt]:
    """A backup server's habit: six working connections to six hosts (more than a profile keeps)."""
    return [_conn(start + index, f"10.0.0.{20 + index}", 873, Outcome.ESTABLISHED) for index in range(6)]


def _scan(start: float) -> list[ConnAttempt]:
    return [_conn(start + port / 100, "10.0.0.99", port, Outcome.REJECTED) for port in range(1, 40)]


def _alerts(correlator: Correlator, records: list[ConnAttempt], batch: bool) -> list:
    if batch:
        return correlator.observe_many(ConnRows.of(records), [record.ts for record in records])
    return [alert for record in records for alert in correlator.observe(record, record.ts)]


def test_a_known_server_that_never_scanned_before_is_named_so_by_either_path() -> None:
    for batch in (False, True):
        correlator = Correlator(DetectionConfig())
        _alerts(correlator, _work(1000.0), batch)
        alerts = _alerts(correlator, _scan(2000.0), batch)
        history = alerts[0].history
        assert history is not None and history.seen_before and history.incidents_before == 0
        assert history.first_seen == 1000.0 and history.evidence_began >= 2000.0
        assert [(str(ip), port) for ip, _, port in history.peers] == [
            (f"10.0.0.{20 + index}", 873) for index in range(USUAL_CAP)]


def test_a_new_source_and_a_connect_scans_open_port_are_no_history() -> None:
    correlator = Correlator(DetectionConfig())
    alerts = _alerts(correlator, [_conn(999.0, "10.0.0.99", 80, Outcome.ESTABLISHED), *_scan(1000.0)], True)
    history = alerts[0].history
    assert history is not None and not history.seen_before, "an open port a second before the scan is no habit"


def test_the_profile_outlives_the_track_and_counts_earlier_incidents() -> None:
    config = DetectionConfig(idle_timeout=600.0)
    correlator = Correlator(config)
    _alerts(correlator, _work(1000.0), True)
    _alerts(correlator, _scan(1100.0), True)
    correlator.tick(1100.0 + config.slow_window + 3 * config.idle_timeout)
    assert correlator.tracked_sources == 0 and len(correlator.profiles) == 1
    later = 1100.0 + config.slow_window + 4 * config.idle_timeout
    alerts = _alerts(correlator, _scan(later), True)
    history = alerts[0].history
    assert history is not None and history.seen_before and history.incidents_before == 1
    assert history.first_seen == 1000.0 and len(history.peers) == USUAL_CAP


def test_profiles_are_bounded() -> None:
    correlator = Correlator(DetectionConfig(max_profiles=50, max_sources=10))
    records = [_conn(float(index), "10.0.0.2", 443, Outcome.ESTABLISHED, f"10.1.{index // 250}.{index % 250 + 1}")
               for index in range(500)]
    _alerts(correlator, records, True)
    assert correlator.tracked_sources == 10 and len(correlator.profiles) == 50
