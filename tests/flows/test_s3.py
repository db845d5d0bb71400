"""An S3 prefix as a flow source, against a real S3-compatible server (moto's, on loopback: tests/flows/s3store.py):
each new object read once, whole, as replay reads the same file; a restart inside an object reads on from where the
polls left it (its AWS header line too); what was there at the first start is not read; a malformed object is
counted and the others read; a down store is said once and followed again when it is back; a slow one never holds a
poll. The ledger's bounds, and the configuration's keys.
"""

from __future__ import annotations

import gzip
import logging
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from sensor.config import FlowConfig, S3Prefix, SensorConfig, parse_config
from sensor.errors import ConfigError
from sensor.flows.bucket import KEEP, Bucket, Ledger, StoredObject
from sensor.flows.read import FlowReader
from sensor.flows.s3 import CLOCK_SKEW, S3Follower
from sensor.observations import ConnAttempt
from sensor.preflight import preflight
from sensor.zeek.follow import FollowBatch
from sensor.zeek.malformed import MalformedLog
from tests.flows.derive import write_all
from tests.flows.s3store import Store, bucket_name, store
from tests.waiting import wait_for

__all__ = ["store"]
TRACES = Path(__file__).resolve().parents[2] / "zeek_scripts" / "testing" / "Traces"
DAY = "AWSLogs/123456789010/vpcflowlogs/eu-west-1/2026/11/28/"


def _config(url: str, bucket: str, prefix: str = "AWSLogs/", poll: float = 0.1) -> FlowConfig:
    return FlowConfig(format="aws", s3=S3Prefix(bucket, prefix, url, "eu-west-1", poll), name="aws:s3", lateness=900)


def _attempts(batches: list[FollowBatch]) -> list[ConnAttempt]:
    return [attempt for batch in batches for rows in batch.observations for attempt in rows]  # type: ignore[union-attr]


def _expected(config: FlowConfig, files: list[Path]) -> list[ConnAttempt]:
    return [attempt for rows in FlowReader(config, files, MalformedLog()).blocks() for attempt in rows]


def _follow_until(follower: S3Follower, keys: set[str], what: str) -> list[FollowBatch]:
    """Poll (as the daemon does) until the ledger holds ``keys``; the batches."""
    batches: list[FollowBatch] = []

    def holds() -> bool:
        batches.append(follower.poll())
        return keys <= set(follower.ledger.read)

    wait_for(holds, 30, what)
    return batches


@pytest.fixture(scope="module")
def derived(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Path]]:
    out = tmp_path_factory.mktemp("derived")
    return {name: write_all(TRACES / f"{name}.pcap", out / name)
            for name in ("s1_vertical_syn", "s2_horizontal_syn", "s6_udp_scan")}


@pytest.fixture
def follower_of(store: Store) -> Iterator[list[S3Follower]]:
    """The followers a test makes, closed at its end (their fetchers stopped)."""
    made: list[S3Follower] = []
    yield made
    for follower in made:
        follower.close()


def test_each_new_object_is_read_once_as_replay_reads_its_file(store: Store, derived: dict[str, dict[str, Path]],
                                                              follower_of: list[S3Follower]) -> None:
    bucket = store.bucket(bucket_name())
    config = _config(store.url, bucket)
    follower = S3Follower(config, MalformedLog(), wall=lambda: 0.0)
    follower_of.append(follower)
    first, second = derived["s1_vertical_syn"]["aws-v5"], derived["s2_horizontal_syn"]["aws-v2"]
    store.put(bucket, f"{DAY}a.log", first.read_bytes())
    store.put(bucket, f"{DAY}b.log.gz", second.read_bytes())
    batches = _follow_until(follower, {f"{DAY}a.log", f"{DAY}b.log.gz"}, "both objects read")
    batches += [follower.poll() for _ in range(3)]
    got = _attempts([*batches, follower.close()])
    assert got == _expected(config, [first, second])
    assert len(got) > 1000
    assert follower.streams == {}  # no object half read

    restarted = S3Follower(config, MalformedLog(), follower.streams, frozenset(follower.done))
    follower_of.append(restarted)
    third = derived["s6_udp_scan"]["aws-v5"]
    store.put(bucket, f"{DAY}c.log", third.read_bytes())
    batches = _follow_until(restarted, {f"{DAY}c.log"}, "the object delivered after the restart")
    assert _attempts([*batches, restarted.close()]) == _expected(config, [third])  # a and b are not read again


def test_objects_there_at_the_first_start_are_not_read(store: Store, derived: dict[str, dict[str, Path]],
                                                       follower_of: list[S3Follower]) -> None:
    bucket = store.bucket(bucket_name())
    config = _config(store.url, bucket)
    store.put(bucket, f"{DAY}old.log", derived["s1_vertical_syn"]["aws-v5"].read_bytes())
    old = next(Bucket(config.s3).listing(""))  # type: ignore[arg-type]
    started = old.modified + 0.5
    follower = S3Follower(config, MalformedLog(), wall=lambda: started + CLOCK_SKEW)
    follower_of.append(follower)
    wait_for(lambda: time.time() >= old.modified + 1.5, 5, "the store's clock past the first start")
    store.put(bucket, f"{DAY}new.log", derived["s6_udp_scan"]["aws-v5"].read_bytes())
    batches = _follow_until(follower, {f"{DAY}old.log", f"{DAY}new.log"}, "both objects seen")
    assert _attempts([*batches, follower.close()]) == _expected(config, [derived["s6_udp_scan"]["aws-v5"]])
    assert follower.ledger.since == started


def _big_log(path: Path, records: int) -> Path:
    """An AWS flow log of ``records`` rejected probes whose header names the fields in an order of its own (a
    poll that goes on inside it without the header would read the columns wrong)."""
    fields = "version srcaddr dstaddr dstport srcport protocol packets bytes start end action log-status " \
             "account-id interface-id"
    lines = [fields] + [f"2 10.200.0.10 10.200.{i // 60000}.{i // 250 % 240 + 1} {i % 250 + 1} {40000 + i % 20000} 6 "
                        f"1 44 {1795898115 + i // 100} {1795898116 + i // 100} REJECT OK 123456789010 eni-0a"
                        for i in range(records)]
    with gzip.open(path, "wt") as stream:
        stream.write("\n".join(lines) + "\n")
    return path


def test_a_restart_inside_an_object_reads_on_from_where_the_polls_left_it(
        store: Store, tmp_path: Path, follower_of: list[S3Follower]) -> None:
    bucket = store.bucket(bucket_name())
    config = _config(store.url, bucket)
    big = _big_log(tmp_path / "big.log.gz", 80_000)  # 7 MiB of content: more than a poll reads
    malformed = MalformedLog()
    follower = S3Follower(config, malformed, wall=lambda: 0.0)
    follower_of.append(follower)
    store.put(bucket, f"{DAY}big.log.gz", big.read_bytes())
    batches: list[FollowBatch] = []

    def inside() -> bool:
        batches.append(follower.poll())
        return config.name in follower.streams

    wait_for(inside, 30, "a poll that ends inside the object")
    position = follower.streams[config.name]
    assert position.path == f"s3://{bucket}/{DAY}big.log.gz" and 0 < position.offset < 7 << 20
    streams, done = dict(follower.streams), frozenset(follower.done)
    before = _attempts([*batches, follower.close()])
    restarted = S3Follower(config, malformed, streams, done)
    follower_of.append(restarted)
    after = _attempts([*_follow_until(restarted, {f"{DAY}big.log.gz"}, "the rest of the object"), restarted.close()])
    expected = _expected(config, [big])
    assert len(expected) == 80_000 and malformed.total == 0
    assert len(before) + len(after) == len(expected)
    assert sorted(before + after, key=repr) == sorted(expected, key=repr)


def test_a_malformed_object_is_counted_in_a_clear_line_and_the_others_are_read(
        store: Store, derived: dict[str, dict[str, Path]], follower_of: list[S3Follower],
        caplog: pytest.LogCaptureFixture) -> None:
    bucket = store.bucket(bucket_name())
    config = _config(store.url, bucket)
    good = derived["s6_udp_scan"]["aws-v5"]
    whole = derived["s1_vertical_syn"]["aws-v2"].read_bytes()
    malformed = MalformedLog()
    follower = S3Follower(config, malformed, wall=lambda: 0.0)
    follower_of.append(follower)
    keys = {name: f"{DAY}{name}" for name in ("a-truncated.log.gz", "b-garbage.log", "c.log.parquet", "d-good.log")}
    store.put(bucket, keys["a-truncated.log.gz"], whole[:len(whole) // 2])
    store.put(bucket, keys["b-garbage.log"], b"\x00\xff not a flow log\n" * 3)
    store.put(bucket, keys["c.log.parquet"], b"PAR1\x00\x00")
    store.put(bucket, keys["d-good.log"], good.read_bytes())
    with caplog.at_level(logging.WARNING):
        batches = _follow_until(follower, set(keys.values()), "every object, malformed or not")
    got = _attempts([*batches, follower.close()])
    truncated = f"s3://{bucket}/{keys['a-truncated.log.gz']}"
    assert malformed.count(truncated) == 1
    assert any(truncated in line and "cannot read on after byte" in line for line in caplog.messages), caplog.messages
    assert malformed.count(f"s3://{bucket}/{keys['b-garbage.log']}") == 3
    assert malformed.count(f"s3://{bucket}/{keys['c.log.parquet']}") == 1
    expected, whole_expected = _expected(config, [good]), _expected(config, [derived["s1_vertical_syn"]["aws-v2"]])
    assert got[-len(expected):] == expected
    before_the_break = got[:-len(expected)]
    assert 0 < len(before_the_break) < len(whole_expected)  # what the truncated object held before its break stands
    assert all(attempt in whole_expected for attempt in before_the_break)


def test_a_down_store_is_said_once_and_followed_again_when_it_is_back(
        store: Store, derived: dict[str, dict[str, Path]], follower_of: list[S3Follower],
        caplog: pytest.LogCaptureFixture) -> None:
    bucket = store.bucket(bucket_name())
    config = _config(store.url, bucket)
    follower = S3Follower(config, MalformedLog(), wall=lambda: 0.0)
    follower_of.append(follower)
    with caplog.at_level(logging.WARNING):
        store.stop()
        wait_for(lambda: follower.poll() is not None and any(
            f"cannot list {config.s3.url}" in line for line in caplog.messages), 30,  # type: ignore[union-attr]
            "the warning that the store is down")
        store.start()
        store.put(bucket, f"{DAY}a.log", derived["s6_udp_scan"]["aws-v5"].read_bytes())
        batches = _follow_until(follower, {f"{DAY}a.log"}, "the object delivered once the store is back")
    assert sum(f"cannot list {config.s3.url}" in line for line in caplog.messages) == 1  # type: ignore[union-attr]
    assert any("reachable again" in line for line in caplog.messages)
    assert _attempts([*batches, follower.close()]) == _expected(config, [derived["s6_udp_scan"]["aws-v5"]])


def test_a_slow_store_never_holds_a_poll(store: Store, follower_of: list[S3Follower]) -> None:
    silent = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    asked = threading.Event()

    def accept() -> None:
        connection, _ = silent.accept()
        accepted.append(connection)
        request = b""
        while b"\r\n\r\n" not in request:
            request += connection.recv(4096)
        asked.set()  # and never answer

    threading.Thread(target=accept, daemon=True).start()
    try:
        config = _config(f"http://127.0.0.1:{silent.getsockname()[1]}", "t1046-silent")
        follower = S3Follower(config, MalformedLog(), wall=lambda: 0.0)
        follower_of.append(follower)
        assert asked.wait(30), "the fetcher asked the store"
        batch = follower.poll()
        assert (batch.observations, batch.bytes_read, batch.backlog) == ([], 0, False)
        accepted[0].setblocking(False)
        with pytest.raises(BlockingIOError):  # the fetcher still waits for its answer: the poll did not
            accepted[0].recv(1)
    finally:
        for connection in accepted:
            connection.close()
        silent.close()


def test_the_ledger_is_bounded_and_knows_a_replaced_object() -> None:
    ledger = Ledger("s3://b/p/", since=0.0)
    for number in range(3 * KEEP):
        ledger.add(f"p/{number:06d}.log.gz", "etag")
    assert KEEP <= len(ledger.read) <= KEEP + KEEP // 4
    assert ledger.after == max(f"p/{number:06d}.log.gz" for number in range(3 * KEEP) if
                               f"p/{number:06d}.log.gz" not in ledger.read)
    assert ledger.has(StoredObject("p/000000.log.gz", "other", 0.0))  # below the mark: read
    newest = f"p/{3 * KEEP - 1:06d}.log.gz"
    assert ledger.has(StoredObject(newest, "etag", 0.0)) and not ledger.has(StoredObject(newest, "new", 0.0))
    assert not ledger.has(StoredObject("p/999999.log.gz", "etag", 0.0))
    found = Ledger.find(frozenset({"0" * 64, "s3 {not json", ledger.text(), Ledger("s3://b/q/", 1.0).text()}),
                        "s3://b/p/")
    assert found == ledger
    assert Ledger.find(frozenset({ledger.text()}), "s3://b/other/") is None


def _parsed(text: str) -> SensorConfig:
    return parse_config(yaml.safe_load(text))


def test_an_s3_prefix_in_flows_and_its_keys() -> None:
    config = _parsed("flows:\n  - {format: aws, path: 's3://flow-logs/AWSLogs/123456789010/vpcflowlogs/', "
                     "region: eu-west-1, poll: 30}\n")
    flow = config.flows[0]
    assert flow.path is None and flow.s3 == S3Prefix("flow-logs", "AWSLogs/123456789010/vpcflowlogs/", None,
                                                    "eu-west-1", 30.0)
    assert flow.name == "aws:s3://flow-logs/AWSLogs/123456789010/vpcflowlogs/" and flow.lateness == 900
    with pytest.raises(ConfigError) as error:
        _parsed("flows:\n"
                "  - {format: aws, path: 's3://Not_A_Bucket/x', aws_secret_access_key: hunter2}\n"
                "  - {format: aws, path: /var/lib/flows, endpoint_url: 'http://127.0.0.1:9000'}\n"
                "  - {format: aws, path: 's3://flow-logs/', endpoint_url: 'http://key:secret@minio:9000', poll: 0}\n")
    assert error.value.problems == [
        "flows[0].aws_secret_access_key: credentials are never part of this file: boto3 takes them from the "
        "environment, ~/.aws or the instance role",
        "flows[0].path: 's3://Not_A_Bucket/x' does not name a bucket (s3://BUCKET/PREFIX)",
        "flows[1].endpoint_url: is only for a path that is an s3://bucket/prefix",
        "flows[2].endpoint_url: credentials are never part of this file: boto3 takes them from the environment, "
        "~/.aws or the instance role",
        "flows[2].poll: 0 is not a positive number",
    ]


def test_check_config_lists_the_prefix_once(store: Store) -> None:
    bucket = store.bucket(bucket_name())
    text = f"flows:\n  - {{format: aws, path: 's3://{bucket}/AWSLogs/', endpoint_url: '{store.url}'}}\n" \
           f"  - {{format: aws, path: 's3://{bucket}-missing/AWSLogs/', endpoint_url: '{store.url}'}}\n"
    store.put(bucket, f"AWSLogs/{DAY}a.log", b"version srcaddr\n")
    findings = [finding for finding in preflight(_parsed(text), reach=True) if finding.text.startswith("flows")]
    assert [(finding.text.split(":")[0], finding.fatal) for finding in findings] == [("flows[1].path", False)]
    assert f"cannot list s3://{bucket}-missing/AWSLogs/" in findings[0].text and "NoSuchBucket" in findings[0].text
    assert not [finding for finding in preflight(_parsed(text)) if finding.text.startswith("flows")]  # run asks not
