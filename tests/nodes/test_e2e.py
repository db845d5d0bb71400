"""A real central daemon (``run`` with ``nodes:``) and a real honeyport node (``honeyports`` with ``node:``)
on loopback: a touch of the node's honeyport alerts at the centre; the centre down, the node spools; the
centre back, every hit arrives exactly once; intruders are refused and counted while the node is served."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sensor.nodes.codec import encode_hello
from tests.alertcheck import validate_alert
from tests.fixtures import Certificates, free_port, stop_process
from tests.waiting import wait_for

TOKEN = "e2e-node-token-0123456789"


def _touch(port: int, source: str) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(source, 0)):
        pass


def _alerts(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [validate_alert(json.loads(line)) for line in path.read_bytes().splitlines() if line.startswith(b"{")]


def _submissions(metrics_port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {m[1]: float(m[2]) for m in re.finditer(r't1046_node_submissions_total\{result="(\w+)"\} (\S+)', text)}


def _intrude(port: int, ca: Path, data: bytes) -> bytes:
    """What the centre answers a client sending ``data`` before it closes the connection."""
    context = ssl.create_default_context(cafile=str(ca))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
            context.wrap_socket(raw, server_hostname="localhost") as tls:
        tls.sendall(data)
        answer = b""
        while chunk := tls.recv(4096):
            answer += chunk
        return answer


class Process:
    """A ``python -m sensor`` process with its output in files; stopped by its own PID."""

    def __init__(self, directory: Path, *args: str) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.stdout, self.stderr = directory / "stdout", directory / "stderr"
        env = {**os.environ, "T1046_NODE_TOKEN": TOKEN}
        self.popen = subprocess.Popen([sys.executable, "-m", "sensor", "-v", *args], env=env,
                                      stdout=self.stdout.open("wb"), stderr=self.stderr.open("wb"))

    def log(self) -> str:
        return self.stderr.read_text(errors="replace")

    def wait_log(self, text: str, timeout: float = 30) -> None:
        wait_for(lambda: text in self.log() or self.popen.poll() is not None, timeout, repr(text))
        assert self.popen.poll() is None, self.log()

    def stop(self) -> int:
        return stop_process(self.popen)


def _started(processes: list[Process], directory: Path, command: str, config: Path, ready: str) -> Process:
    """``t1046-sensor COMMAND --config CONFIG`` started, kept in ``processes`` for the teardown, and ready."""
    process = Process(directory, command, "--config", str(config))
    processes.append(process)
    process.wait_log(ready)
    return process


def _centre_config(tmp_path: Path, certificates: Certificates, centre_port: int, metrics_port: int,
                   per_node: bool = False) -> Path:
    """The centre's configuration: the shared token, or (``per_node``) a node tokens file naming edge-a."""
    tokens = "token_env: T1046_NODE_TOKEN"
    if per_node:
        (tmp_path / "node-tokens").write_text(f"edge-a {TOKEN}\n")
        (tmp_path / "node-tokens").chmod(0o600)
        tokens = f"node_tokens_file: {tmp_path / 'node-tokens'}"
    config = tmp_path / "centre.yaml"
    config.write_text(
        f"sensor: {{name: centre, state_dir: {tmp_path / 'centre'}, metrics_listen: '127.0.0.1:{metrics_port}'}}\n"
        "honeyports: {listen: []}\n"
        "detection: {local_nets: [127.0.0.0/8]}\n"
        f"nodes: {{listen: '127.0.0.1:{centre_port}', cert_file: {certificates.cert}, key_file: {certificates.key},"
        f" {tokens}}}\n"
        "outputs:\n  - {type: stdout}\n  - {type: file, path: alerts.jsonl}\n")
    return config


def _node_config(tmp_path: Path, certificates: Certificates, centre_port: int, honeyport: int) -> Path:
    config = tmp_path / "node.yaml"
    config.write_text(
        f"sensor: {{name: edge-a, state_dir: {tmp_path / 'node'}}}\n"
        f"honeyports: {{listen: [127.0.0.1], tcp: '{honeyport}'}}\n"
        "detection: {local_nets: [127.0.0.0/8]}\n"
        f"node: {{central: '127.0.0.1:{centre_port}', ca_file: {certificates.ca}, server_name: localhost,"
        " token_env: T1046_NODE_TOKEN}\n")
    return config


@dataclass(frozen=True)
class Link:
    """A centre's and a node's configurations on free loopback ports, and the files a test reads."""

    centre_config: Path
    node_config: Path
    centre_port: int
    honeyport: int
    metrics_port: int
    alerts: Path
    node_spool: Path


def _link(tmp_path: Path, certificates: Certificates, per_node: bool = False) -> Link:
    centre_port, metrics_port, honeyport = free_port(), free_port(), free_port()
    return Link(_centre_config(tmp_path, certificates, centre_port, metrics_port, per_node),
                _node_config(tmp_path, certificates, centre_port, honeyport), centre_port, honeyport, metrics_port,
                tmp_path / "centre" / "alerts.jsonl", tmp_path / "node" / "spool" / "node-link" / "spool.log")


def _hits_by_source(alerts: Path) -> dict[str, list[int]]:
    """The honeyport hit count of every alert, by scanner."""
    by_source: dict[str, list[int]] = {}
    for alert in _alerts(alerts):
        by_source.setdefault(alert["source"]["ip"], []).append(alert["t1046"]["counts"]["honeyport_hits"])
    return by_source


def test_node_forwards_to_the_centre_through_an_outage_exactly_once(tmp_path: Path,
                                                                   certificates: Certificates) -> None:
    link = _link(tmp_path, certificates)
    centre_config, node_config, centre_port = link.centre_config, link.node_config, link.centre_port
    honeyport, metrics_port = link.honeyport, link.metrics_port
    alerts, node_spool = link.alerts, link.node_spool
    processes: list[Process] = []
    try:
        centre = _started(processes, tmp_path / "run1", "run", centre_config, "running")
        node = _started(processes, tmp_path / "node-run", "honeyports", node_config, "listening on 1 port")

        _touch(honeyport, "127.0.0.1")
        wait_for(lambda: any(a["source"]["ip"] == "127.0.0.1" for a in _alerts(centre.stdout)), 20,
                 "the node's hit alerting on the centre's stdout")
        first = _alerts(centre.stdout)[0]
        assert first["event"]["action"] == "honeyport_probe" and "honeyport" in first["t1046"]["evidence_sources"]
        assert first["observer"]["name"] == "centre"
        assert first["t1046"]["sample"]["honeyport_nodes"] == ["edge-a@127.0.0.1"]
        assert "node edge-a@127.0.0.1 connected" in centre.log()

        assert b"unauthenticated" in _intrude(centre_port, certificates.ca,
                                              encode_hello("edge-a", "0123456789abcdef", "guessed-token"))
        assert b"refused" in _intrude(centre_port, certificates.ca, b"GET / HTTP/1.0\r\n\r\n")
        _touch(honeyport, "127.0.0.2")
        wait_for(lambda: any(a["source"]["ip"] == "127.0.0.2" for a in _alerts(alerts)), 20,
                 "the centre serving the node after two intruders")
        counts = _submissions(metrics_port)
        assert (counts.get("accepted"), counts.get("unauthenticated"), counts.get("malformed")) == (2, 1, 1)
        assert TOKEN not in centre.log() + node.log() and "guessed-token" not in centre.log()

        assert centre.stop() == 0
        outage = [f"127.0.0.{host}" for host in range(3, 8)]
        for source in outage:
            _touch(honeyport, source)
        wait_for(lambda: node_spool.exists() and len(node_spool.read_bytes().splitlines()) == len(outage), 20,
                 "the node spooling while the centre is down")

        centre = _started(processes, tmp_path / "run2", "run", centre_config, "running")
        wait_for(lambda: {a["source"]["ip"] for a in _alerts(centre.stdout)} >= set(outage), 40,
                 "every spooled hit alerting after the centre came back")
        wait_for(lambda: not node_spool.read_bytes(), 20, "the node's spool emptied by acknowledgements")
        assert _submissions(metrics_port).get("accepted") == len(outage)
    finally:
        codes = [process.stop() for process in reversed(processes)]
    assert codes == [0] * len(codes), [p.log()[-2000:] for p in processes]
    assert _hits_by_source(alerts) == {f"127.0.0.{host}": [1] for host in range(1, 8)}, \
        "each touch counted exactly once"


def test_a_centre_killed_with_9_knows_what_it_committed_and_counts_each_hit_once(tmp_path: Path,
                                                                                certificates: Certificates) -> None:
    link = _link(tmp_path, certificates)
    centre_config, node_config, honeyport = link.centre_config, link.node_config, link.honeyport
    alerts, node_spool = link.alerts, link.node_spool
    processes: list[Process] = []
    try:
        centre = _started(processes, tmp_path / "run1", "run", centre_config, "running")
        _started(processes, tmp_path / "node-run", "honeyports", node_config, "listening on 1 port")
        for source in ("127.0.0.1", "127.0.0.2"):
            _touch(honeyport, source)
        wait_for(lambda: {a["source"]["ip"] for a in _alerts(alerts)} == {"127.0.0.1", "127.0.0.2"}, 20,
                 "both hits alerting at the centre")
        wait_for(lambda: node_spool.exists() and not node_spool.read_bytes(), 20,
                 "the node's spool emptied: acknowledged, so committed in the centre's checkpoint")
        os.kill(centre.popen.pid, signal.SIGKILL)
        centre.popen.wait(10)

        centre = _started(processes, tmp_path / "run2", "run", centre_config, "running")
        _touch(honeyport, "127.0.0.3")
        wait_for(lambda: any(a["source"]["ip"] == "127.0.0.3" for a in _alerts(alerts)), 20,
                 "a new hit alerting after the restart")
        sequence = re.search(r"node edge-a@127\.0\.0\.1 connected \(run \w+, last sequence (\d+)\)", centre.log())
        assert sequence is not None and int(sequence.group(1)) >= 2, centre.log()[-2000:]
    finally:
        codes = [process.stop() for process in reversed(processes)]
    assert codes[:2] == [0, 0], [p.log()[-2000:] for p in processes]
    assert {source: max(hits) for source, hits in _hits_by_source(alerts).items()} == {
        "127.0.0.1": 1, "127.0.0.2": 1, "127.0.0.3": 1}, "each touch counted exactly once across the crash"


def test_a_node_restarted_with_a_full_spool_delivers_it_without_a_new_hit(tmp_path: Path,
                                                                         certificates: Certificates) -> None:
    link = _link(tmp_path, certificates)
    centre_config, node_config, honeyport, node_spool = (link.centre_config, link.node_config, link.honeyport,
                                                         link.node_spool)
    processes: list[Process] = []
    try:
        node = _started(processes, tmp_path / "node-run1", "honeyports", node_config, "listening on 1 port")
        for source in ("127.0.0.4", "127.0.0.5"):
            _touch(honeyport, source)
        wait_for(lambda: node_spool.exists() and len(node_spool.read_bytes().splitlines()) >= 2, 20,
                 "the node spooling while there is no centre")
        assert node.stop() == 0
        centre = _started(processes, tmp_path / "centre-run", "run", centre_config, "running")
        processes.append(Process(tmp_path / "node-run2", "honeyports", "--config", str(node_config)))
        wait_for(lambda: {a["source"]["ip"] for a in _alerts(centre.stdout)} >= {"127.0.0.4", "127.0.0.5"}, 30,
                 "the restarted node delivering what it had spooled, with no new hit")
    finally:
        for process in reversed(processes):
            process.stop()


def test_run_on_a_node_forwards_its_honeyport_hits_proving_its_name(tmp_path: Path,
                                                                     certificates: Certificates) -> None:
    link = _link(tmp_path, certificates, per_node=True)
    centre_config, node_config, honeyport = link.centre_config, link.node_config, link.honeyport
    processes: list[Process] = []
    try:
        centre = _started(processes, tmp_path / "centre-run", "run", centre_config, "running")
        assert "nodes with their own token: 1" in centre.log()
        node = _started(processes, tmp_path / "node-run", "run", node_config, "running")
        _touch(honeyport, "127.0.0.9")
        wait_for(lambda: any(a["source"]["ip"] == "127.0.0.9" for a in _alerts(centre.stdout)), 20,
                 "the hit of a `run` node alerting at the centre")
        assert "node edge-a@127.0.0.1 connected" in centre.log()
    finally:
        codes = [process.stop() for process in reversed(processes)]
    assert codes == [0, 0], [p.log()[-2000:] for p in processes]
    assert _alerts(node.stdout) == [], "a forwarding node does not correlate its hits itself"


def test_a_node_without_its_token_does_not_start(tmp_path: Path) -> None:
    config = tmp_path / "node.yaml"
    config.write_text(f"sensor: {{name: edge-a, state_dir: {tmp_path / 'state'}}}\n"
                      f"honeyports: {{listen: [127.0.0.1], tcp: '{free_port()}'}}\n"
                      "node: {central: '127.0.0.1:6146', token_env: T1046_TEST_UNSET_TOKEN}\n")
    env = {key: value for key, value in os.environ.items() if key != "T1046_TEST_UNSET_TOKEN"}
    done = subprocess.run([sys.executable, "-m", "sensor", "honeyports", "--config", str(config)], env=env,
                          capture_output=True, timeout=60)
    assert done.returncode != 0
    assert b"T1046_TEST_UNSET_TOKEN is not set" in done.stderr
