"""The follower reads every line once through rename, copytruncate, gzip and log-queue/ rotation."""

from __future__ import annotations

import gzip
import logging
import os
import shutil
import time
from pathlib import Path

import pytest

from sensor.observations import ConnAttempt, ConnRows
from sensor.zeek.follow import LogFollower
from sensor.zeek.malformed import MalformedLog
from tests.fixtures import conn_log

PACKAGE_LOGS = Path(__file__).resolve().parents[1] / "data" / "package-logs"


def _uids(follower: LogFollower) -> list[str]:
    """The uids of the conn records one poll read (a TSV block comes as one ConnRows)."""
    found = follower.poll().observations
    return [obs.uid for item in found for obs in (item if isinstance(item, ConnRows) else [item])
            if isinstance(obs, ConnAttempt)]


def _expected(lines: list[str]) -> list[str]:
    """Uids of the written lines in order, read off their columns: every TCP and UDP line is a connection
    attempt (the captures' ICMP lines are router solicitations and errors, which are not)."""
    columns = [line.split("\t") for line in lines]
    uids = [fields[1] for fields in columns if fields[6] in ("tcp", "udp")]
    assert len(uids) > len(lines) * 0.9
    return uids


def test_follows_rename_copytruncate_gzip_and_log_queue(tmp_path: Path) -> None:
    data = conn_log(time.time() + 86400)
    chunks = [data.lines[i:i + 150] for i in range(0, len(data.lines), 150)]
    assert len(chunks) >= 8
    live = tmp_path / "conn.log"
    (tmp_path / "conn.2020-01-01-00-00-00.log").write_text(data.header_for(1) + "".join(data.lines[:5]))
    live.write_text(data.header_for(2))
    follower = LogFollower(tmp_path, MalformedLog(), kinds=("conn",))
    seen = _uids(follower)
    assert seen == [], "rotated files already there at the first start are not read"

    def append(chunk: list[str]) -> None:
        with live.open("a") as stream:
            stream.write("".join(chunk))

    written: list[str] = []
    append(chunks[0])
    written += chunks[0]
    seen += _uids(follower)
    # Zeek's rotation: more lines, rename, new file; the follower catches up on the renamed file.
    append(chunks[1])
    written += chunks[1]
    live.rename(tmp_path / "conn.2030-01-01-00-00-00.log")
    live.write_text(data.header_for(3) + "".join(chunks[2]))
    written += chunks[2]
    seen += _uids(follower)
    # The renamed file is gzipped while more is written: nothing is read twice.
    append(chunks[3])
    written += chunks[3]
    live.rename(tmp_path / "conn.2030-01-01-01-00-00.log")
    live.write_text(data.header_for(4))
    with (tmp_path / "conn.2030-01-01-01-00-00.log").open("rb") as plain, \
            gzip.open(tmp_path / "conn.2030-01-01-01-00-00.log.gz", "wb") as packed:
        shutil.copyfileobj(plain, packed)
    (tmp_path / "conn.2030-01-01-01-00-00.log").unlink()
    seen += _uids(follower)
    # copytruncate: copy, then truncate in place and start over with a new header.
    append(chunks[4])
    written += chunks[4]
    shutil.copy(live, tmp_path / "conn.log.1")
    with live.open("w") as stream:
        stream.write(data.header_for(5) + "".join(chunks[5]))
    written += chunks[5]
    seen += _uids(follower)
    # A cluster logger rotates into log-queue/.
    append(chunks[6])
    written += chunks[6]
    (tmp_path / "log-queue").mkdir()
    live.rename(tmp_path / "log-queue" / "conn__2030-01-01-02-00-00__2030-01-01-03-00-00__.log")
    live.write_text(data.header_for(6) + "".join(chunks[7]))
    written += chunks[7]
    seen += _uids(follower)
    seen += _uids(follower)
    assert seen == _expected(written)


def test_resumes_mid_file_with_its_header_and_never_reads_a_partial_line(tmp_path: Path) -> None:
    data = conn_log(time.time() + 86400)
    live = tmp_path / "conn.log"
    live.write_text(data.header_for(1) + "".join(data.lines[:10]) + data.lines[10][:20])
    first = LogFollower(tmp_path, MalformedLog(), kinds=("conn",))
    seen = _uids(first)
    with live.open("a") as stream:
        stream.write(data.lines[10][20:] + "".join(data.lines[11:30]))
    resumed = LogFollower(tmp_path, MalformedLog(), streams=first.streams, done=frozenset(first.done),
                          kinds=("conn",))
    seen += _uids(resumed)
    assert seen == _expected(data.lines[:30])
    assert resumed.malformed.total == 0
    assert resumed.lag() == {"conn": 0}


def test_a_restart_before_the_first_read_still_follows_the_live_log_through_rotation(tmp_path: Path) -> None:
    data = conn_log(time.time() + 86400)
    old, first, second = data.lines[:5], data.lines[5:200], data.lines[200:400]
    (tmp_path / "conn.2020-01-01-00-00-00.log").write_text(data.header_for(1) + "".join(old))
    live = tmp_path / "conn.log"
    live.write_text(data.header_for(2) + "".join(first))
    started = LogFollower(tmp_path, MalformedLog(), kinds=("conn",))
    saved = (dict(started.streams), frozenset(started.done))  # the checkpoint a first start writes at once
    live.rename(tmp_path / "conn.2030-01-01-00-00-00.log")  # the daemon died before reading; Zeek rotated
    live.write_text(data.header_for(3) + "".join(second))
    restarted = LogFollower(tmp_path, MalformedLog(), *saved, kinds=("conn",))
    seen = _uids(restarted) + _uids(restarted)
    assert seen == _expected(first + second), "all of the rotated live log, then the new"


def test_a_line_longer_than_a_read_is_skipped_and_the_stream_goes_on(tmp_path: Path) -> None:
    data = conn_log(time.time() + 86400)
    live = tmp_path / "conn.log"
    live.write_text(data.header_for(1))
    malformed = MalformedLog()
    follower = LogFollower(tmp_path, malformed, kinds=("conn",), read_budget=4096)
    assert _uids(follower) == []
    with live.open("a") as stream:
        stream.write("x" * 10_000 + "\n" + "".join(data.lines[:20]))
    seen = [uid for _ in range(10) for uid in _uids(follower)]
    assert seen == _expected(data.lines[:20])
    assert malformed.total == 1


def test_a_rotated_file_gone_before_it_was_read_is_reported_and_the_next_oldest_is_read(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """logrotate (create mode, rotate 2) ran three times while the daemon was stalled: the file it was
    reading was rotated away and deleted with unread lines. Those lines are lost, loudly; the two rotated
    files and the live one are read oldest first."""
    data = conn_log(time.time() + 86400)
    chunks = [data.lines[i:i + 40] for i in range(0, 200, 40)]
    live = tmp_path / "conn.log"
    live.write_text(data.header_for(1) + "".join(chunks[0]))
    follower = LogFollower(tmp_path, MalformedLog(), kinds=("conn",))
    seen = _uids(follower)
    offset = follower.streams["conn"].offset
    with live.open("a") as stream:
        stream.write("".join(chunks[1]))  # never read: its file is deleted before the next poll
    for opened, chunk in ((2, chunks[2]), (3, chunks[3]), (4, chunks[4])):
        if (tmp_path / "conn.log.2").exists():
            (tmp_path / "conn.log.2").unlink()
        if (tmp_path / "conn.log.1").exists():
            (tmp_path / "conn.log.1").rename(tmp_path / "conn.log.2")
        live.rename(tmp_path / "conn.log.1")
        live.write_text(data.header_for(opened) + "".join(chunk))
    with caplog.at_level(logging.ERROR):
        seen += _uids(follower)
    assert seen == _expected(chunks[0] + chunks[2] + chunks[3] + chunks[4])
    (lost,) = [record.getMessage() for record in caplog.records if "is gone" in record.getMessage()]
    assert f"{live} (inode" in lost and f"lines written to it after byte {offset} are lost" in lost
    assert lost.endswith(f"going on with {tmp_path / 'conn.log.2'}")


def test_a_live_log_gone_with_nothing_after_it_is_reported_once_and_the_next_one_read_from_its_start(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """zeekctl moved conn.log to its archive and Zeek has not written the next one yet."""
    data = conn_log(time.time() + 86400)
    live = tmp_path / "conn.log"
    live.write_text(data.header_for(1) + "".join(data.lines[:30]))
    follower = LogFollower(tmp_path, MalformedLog(), kinds=("conn",))
    seen = _uids(follower)
    live.unlink()
    with caplog.at_level(logging.ERROR):
        for _ in range(5):
            seen += _uids(follower)
        live.write_text(data.header_for(2) + "".join(data.lines[30:60]))
        seen += _uids(follower)
    assert seen == _expected(data.lines[:60])
    gone = [record.getMessage() for record in caplog.records if "is gone" in record.getMessage()]
    assert len(gone) == 1 and gone[0].endswith("going on with nothing yet"), gone


def test_a_log_read_in_pieces_of_any_size_yields_what_a_whole_read_does(tmp_path: Path) -> None:
    data = conn_log(time.time() + 86400)
    lines = (data.lines * (1 + 20000 // len(data.lines)))[:20000]
    expected = _expected(lines)
    assert len(expected) > 10000
    for budget in (5000, 300_000, 4 << 20):
        logs = tmp_path / f"logs-{budget}"
        logs.mkdir()
        live = logs / "conn.log"
        live.write_text(data.header_for(1))
        follower = LogFollower(logs, MalformedLog(), kinds=("conn",), read_budget=budget)
        seen = _uids(follower)
        with live.open("a") as stream:
            stream.write("".join(lines))
        while len(seen) < len(expected):
            polled = _uids(follower)
            assert polled, "every poll reads on until the end"
            seen += polled
        assert seen == expected
        assert follower.malformed.total == 0


def test_zeek_logs_without_conn_takes_the_packages_detections_only(tmp_path: Path) -> None:
    from sensor.config import parse_config
    from sensor.daemon.run import Daemon
    from sensor.metrics import Metrics
    from sensor.observations import ZeekDetection, ZeekNotice
    from sensor.replay import replay

    logs = tmp_path / "zeek"
    shutil.copytree(PACKAGE_LOGS / "s1_vertical_syn", logs)
    config = parse_config({"sensor": {"state_dir": str(tmp_path / "state")}, "zeek": {
        "log_dir": str(logs), "logs": ["notice", "t1046", "dns"]}, "honeyports": {"listen": [], "tcp": ""}})
    daemon = Daemon(config, None, Metrics(), None)
    daemon._restore()
    assert daemon.follower is not None
    batch = daemon.follower.poll()
    assert set(batch.records) == {"notice", "t1046"}, "conn.log is not read"
    assert batch.observations and all(isinstance(o, ZeekNotice | ZeekDetection) for o in batch.observations)
    with open(os.devnull, "wb") as sink:
        detections = replay([logs], config, sink)
        everything = replay([logs], parse_config({}), sink)
    assert detections.alerts >= 1, "the package's detections alone raise the incident"
    assert detections.records == sum(batch.records.values()) < everything.records


def test_a_poll_says_when_more_is_waiting_than_it_reads(tmp_path: Path) -> None:
    data = conn_log(time.time() + 86400)
    live = tmp_path / "conn.log"
    live.write_text(data.header_for(1))
    follower = LogFollower(tmp_path, MalformedLog(), kinds=("conn",), read_budget=20_000)
    assert not follower.poll().backlog
    with live.open("a") as stream:
        stream.write("".join(data.lines[:600]) + data.lines[600][:30])
    backlogs = []
    while not backlogs or backlogs[-1]:
        batch = follower.poll()
        backlogs.append(batch.backlog)
        assert batch.bytes_read > 0 or not batch.backlog
    assert len(backlogs) > 2 and not any(backlogs[-1:]), "a partial last line is no backlog"
    assert follower.lag() == {"conn": len(data.lines[600][:30])}
