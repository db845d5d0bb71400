"""The checkpoint is data, not code: a correlator restored mid-way through a real capture goes on exactly as
one that never stopped; a planted pickle runs nothing; a file naming a class outside the allowlist, or laid
out by another version, is refused with the reason; an attribute the format cannot carry is named."""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import os
import pickle
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from types import MethodType

import msgpack
import pytest

from sensor.alerts.alert import Alert
from sensor.alerts.render import render_line
from sensor.config import SensorConfig
from sensor.daemon.checkpoint import MAGIC, PICKLED, Checkpoint, _encode, detection_digest, load_checkpoint
from sensor.daemon.stateform import CLASSES, Decoder, Encoder, StateFormatError, expected_layouts
from sensor.detect.correlator import Correlator
from sensor.detect.watermark import Watermark
from sensor.observations import ConnRows, Intake
from sensor.replay import _inputs, _merged, _stream
from sensor.zeek.logs import MalformedLog, ZeekLog
from sensor.zeek.readahead import read_ahead
from tests.conftest import CAPTURES

DATA = CAPTURES.parent
CONFIG = SensorConfig()
RECORDINGS = sorted([*CAPTURES.glob("*/zeek"), *CAPTURES.glob("*/zeek-json"), *DATA.glob("package-logs/*/"),
                     *DATA.glob("arp/*/zeek"), *DATA.glob("identity/*/zeek"), *DATA.glob("identity/*/zeek-json"),
                     *DATA.glob("outage/*/zeek"), *(p for p in DATA.glob("slow/*") if p.is_dir()),
                     *(p for p in DATA.glob("stealth/*") if p.is_dir())])


def _items(path: Path) -> list[Intake]:
    """What replay hands the correlator from ``path``, conn records in blocks of at most 25."""
    streams, _, _, _ = _inputs([path], CONFIG.zeek.logs)
    malformed = MalformedLog()
    merged = _merged([read_ahead(_stream([ZeekLog(p, malformed) for p in files], malformed)) for _, files in streams])
    items: list[Intake] = []
    for item in merged:
        if isinstance(item, ConnRows):
            items += [item.part(start, min(start + 25, len(item))) for start in range(0, len(item), 25)]
        else:
            items.append(item)
    return items


def _checkpoint(correlator: Correlator, clock: float) -> Checkpoint:
    return Checkpoint(seq=3, detection=detection_digest(CONFIG.detection), streams={}, done=frozenset(),
                      correlator=correlator, clock=clock)


def _restored(path: Path, correlator: Correlator, watermark: Watermark) -> tuple[Correlator, Watermark]:
    path.write_bytes(_encode(_checkpoint(correlator, watermark.now)))
    loaded = load_checkpoint(path, CONFIG.detection)
    assert loaded is not None
    return loaded.correlator, Watermark(CONFIG.detection.lateness, start=loaded.clock)


def _alerts(items: list[Intake], stops: set[int], checkpoint: Path) -> list[bytes]:
    correlator, watermark = Correlator(CONFIG.detection), Watermark(CONFIG.detection.lateness)
    lines: list[bytes] = []
    for number, item in enumerate(items):
        if number in stops:
            correlator, watermark = _restored(checkpoint, correlator, watermark)
        lines += [render_line(alert, CONFIG.name) for alert in correlator.observe_read(item, watermark)]
    return lines + [render_line(alert, CONFIG.name) for alert in correlator.flush(watermark.now)]


@pytest.mark.parametrize("recording", RECORDINGS, ids=lambda path: str(path.relative_to(DATA)))
def test_a_correlator_restored_mid_way_through_a_capture_gives_byte_identical_alerts(
        recording: Path, tmp_path: Path) -> None:
    items = _items(recording)
    whole = _alerts(items, set(), tmp_path / "checkpoint")
    assert _alerts(items, {len(items) // 3, len(items) // 2, 2 * len(items) // 3}, tmp_path / "checkpoint") == whole


def test_every_capture_gives_alerts_and_state_to_restore() -> None:
    """The test above restores real state: most recordings alert, and their correlators hold sources."""
    alerting = [path for path in RECORDINGS if _alerts(_items(path), set(), Path("/nonexistent"))]
    assert len(alerting) >= len(RECORDINGS) // 2


def _everything() -> Iterator[Correlator]:
    """One correlator that has taken every recording: every kind of state a detector keeps."""
    correlator, watermark = Correlator(CONFIG.detection), Watermark(CONFIG.detection.lateness)
    for recording in RECORDINGS:
        for item in _items(recording):
            correlator.observe_read(item, watermark)
    yield correlator


def test_the_format_carries_every_attribute_of_every_state_object() -> None:
    """Each recording's correlator comes back deeply equal, and together they hold every kind of state (one
    correlator over them all would not: a recording dated days after another has forgotten its identities)."""
    classes: set[str] = set()
    for recording in RECORDINGS:
        correlator, watermark = Correlator(CONFIG.detection), Watermark(CONFIG.detection.lateness)
        for item in _items(recording):
            correlator.observe_read(item, watermark)
        encoder = Encoder()
        data = encoder.pack(correlator)
        layouts = [[name, list(names)] for name, names in encoder.layouts]
        restored = Decoder(layouts, expected_layouts(CONFIG.detection), CONFIG.detection).unpack(data)
        classes |= {name for name, _ in encoder.layouts}
        assert _plain(restored, {}) == _plain(correlator, {}), f"{recording}: restored state equal, deeply"
    assert {"Correlator", "Track", "Evidence", "Incidents", "Tracks", "ServedPorts", "HostLinks", "_Host",
            "_Habit", "Identities", "_Holder", "_Fact", "Profiles", "Lockstep", "Spray"} <= classes


def _plain(value: object, seen: dict[int, int]) -> object:
    """``value`` as nested plain data, to compare two state graphs (shared objects and mutable containers by
    their first place)."""
    kind = type(value)
    if id(value) in seen and (kind in CLASSES.values() or isinstance(value, (dict, list, set))):
        return ("shared", seen[id(value)])
    if kind in CLASSES.values():
        seen[id(value)] = len(seen)
        names = getattr(kind, "__slots__", None) or vars(value)
        return (kind.__name__, [(name, _plain(getattr(value, name), seen)) for name in names if hasattr(value, name)])
    if isinstance(value, dict):
        seen[id(value)] = len(seen)
        return (kind.__name__, [(_plain(k, seen), _plain(v, seen)) for k, v in value.items()])
    if isinstance(value, (set, frozenset)):
        if kind is set:
            seen[id(value)] = len(seen)
        return (kind.__name__, sorted(repr(_plain(item, seen)) for item in value))
    if isinstance(value, (list, tuple)):
        if kind is list:
            seen[id(value)] = len(seen)
        return (kind.__name__, [_plain(item, seen) for item in value])
    if isinstance(value, MethodType):
        return ("method", value.__name__, _plain(value.__self__, seen))
    if isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address):  # the readers' prepared ones too
        return ("address", str(value))
    return (kind.__name__, repr(value))


def test_a_value_the_format_cannot_carry_names_the_attribute_that_holds_it() -> None:
    correlator = next(_everything())
    track = next(track for track in correlator._sources.live.values() if track.detail is not None)
    track.detail.uids.append(object())  # type: ignore[arg-type]
    with pytest.raises(StateFormatError, match=r"Evidence\.uids: a builtins\.object has no place in a checkpoint"):
        Encoder().pack(correlator)


def _layout_of(correlator: Correlator) -> tuple[list[list[object]], bytes]:
    encoder = Encoder()
    data = encoder.pack(correlator)
    return [[name, list(names)] for name, names in encoder.layouts], data


def test_a_file_laid_out_by_another_version_is_refused_naming_the_attribute() -> None:
    layouts, _ = _layout_of(next(_everything()))
    for entry in layouts:
        if entry[0] == "Evidence":
            entry[1] = [name for name in entry[1] if name != "zeek_notes"]  # type: ignore[attr-defined]
    with pytest.raises(StateFormatError, match="Evidence is laid out differently in this version: attribute "
                                               "zeek_notes missing"):
        Decoder(layouts, expected_layouts(CONFIG.detection), CONFIG.detection)


def test_a_class_outside_the_allowlist_is_refused_before_anything_is_made() -> None:
    with pytest.raises(StateFormatError, match="class 'system' is not one a checkpoint may hold"):
        Decoder([["system", []]], expected_layouts(CONFIG.detection))


def _planted(path: Path, payload: bytes, magic: bytes) -> None:
    path.write_bytes(magic + hashlib.sha256(payload).hexdigest().encode() + b"\n" + payload)


class _RunsCode:
    """Unpickling this runs a shell command (``os.system``), as a planted checkpoint would."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, (f"touch {self.marker}",)


def test_a_planted_pickle_checkpoint_runs_no_code_and_is_refused_clearly(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    marker = tmp_path / "code-ran"
    checkpoint = tmp_path / "checkpoint"
    _planted(checkpoint, pickle.dumps(_RunsCode(marker)), PICKLED)
    with caplog.at_level(logging.ERROR):
        assert load_checkpoint(checkpoint, CONFIG.detection) is None
    assert not marker.exists(), "loading the checkpoint ran the planted command"
    assert "written by an earlier version as a pickle, which is never loaded (unpickling can run code)" in caplog.text
    assert not checkpoint.exists() and (tmp_path / "checkpoint.unusable").exists(), "noticed once, then moved aside"
    caplog.clear()
    assert load_checkpoint(checkpoint, CONFIG.detection) is None
    assert caplog.text == "", "said once"


def test_a_planted_checkpoint_of_this_version_naming_a_code_path_is_refused(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    marker = tmp_path / "code-ran"
    checkpoint = tmp_path / "checkpoint"
    part = {"classes": [["posix.system", []]], "data": msgpack.packb(f"touch {marker}")}
    document = {"seq": 1, "detection": detection_digest(CONFIG.detection), "clock": 0.0, "saved_at": 0.0,
                "extra": {}, "positions": part, "outbox": part, "correlator": part}
    _planted(checkpoint, msgpack.packb(document, use_bin_type=True), MAGIC)
    with caplog.at_level(logging.ERROR):
        assert load_checkpoint(checkpoint, CONFIG.detection) is None
    assert not marker.exists()
    assert "class 'posix.system' is not one a checkpoint may hold" in caplog.text


@pytest.mark.parametrize("damage", ["torn", "garbage", "typed value outside"])
def test_a_damaged_checkpoint_is_refused_with_a_one_line_reason(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, damage: str) -> None:
    checkpoint = tmp_path / "checkpoint"
    data = _encode(_checkpoint(next(_everything()), 5.0))
    if damage == "torn":
        checkpoint.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        _planted(checkpoint, os.urandom(4096), MAGIC)
    else:
        _planted(checkpoint, msgpack.packb({"seq": msgpack.ExtType(9, b"\0" * 8)}), MAGIC)
    with caplog.at_level(logging.ERROR):
        assert load_checkpoint(checkpoint, CONFIG.detection) is None
    assert len(caplog.records) == 1 and "moved to" in caplog.text and "\n" not in caplog.records[0].getMessage()


def test_the_offsets_survive_a_correlator_laid_out_by_another_version(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    checkpoint = tmp_path / "checkpoint"
    checkpoint.write_bytes(_encode(_checkpoint(next(_everything()), 5.0)))
    real = expected_layouts

    def changed(config: object) -> object:
        expected = real(CONFIG.detection)
        return lambda kind: (*expected(kind), "new_slot") if kind.__name__ == "Track" else expected(kind)

    monkeypatch.setattr("sensor.daemon.checkpoint.expected_layouts", changed)
    with caplog.at_level(logging.WARNING):
        loaded = load_checkpoint(checkpoint, CONFIG.detection)
    assert loaded is not None and loaded.seq == 3 and loaded.clock == 5.0
    assert loaded.correlator.tracked_sources == 0
    assert "Track is laid out differently in this version: attribute new_slot missing" in caplog.text


def test_every_alert_of_every_recording_survives_the_outbox_as_it_was(tmp_path: Path) -> None:
    """The outbox holds alerts with everything they carry (services found, touches, identities)."""
    alerts = [alert for recording in RECORDINGS for alert in _alerts_of(recording)]
    assert len(alerts) > 20
    checkpoint = tmp_path / "checkpoint"
    checkpoint.write_bytes(_encode(replace(_checkpoint(Correlator(CONFIG.detection), 1.0), outbox=tuple(alerts))))
    loaded = load_checkpoint(checkpoint, CONFIG.detection)
    assert loaded is not None and list(loaded.outbox) == alerts
    assert [render_line(alert, "s") for alert in loaded.outbox] == [render_line(alert, "s") for alert in alerts]


def _alerts_of(recording: Path) -> list[Alert]:
    correlator, watermark = Correlator(CONFIG.detection), Watermark(CONFIG.detection.lateness)
    found: list[Alert] = []
    for item in _items(recording):
        found += correlator.observe_read(item, watermark)
    return found + correlator.flush(watermark.now)


def test_a_state_class_outside_the_allowlist_is_named_with_the_attribute_that_holds_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The day a state object gains a class of its own, the encoder says which (the correlator's parts refer
    back to it through callbacks, so naming the attribute must not walk those cycles for ever)."""
    correlator = next(_everything())
    held = type(correlator._incidents).__name__
    monkeypatch.delitem(CLASSES, held)
    with pytest.raises(StateFormatError, match=rf"Correlator\._incidents: a sensor\.detect\.lifecycle\.{held} has no "
                                               "place in a checkpoint: add its class to sensor.daemon.stateclasses"):
        Encoder().pack(correlator)
