"""End to end, as root, in network namespaces: real avahi, avahi-browse, nmap and dig against the watcher.

The lab is a bridge with a responder (avahi-daemon publishing ssh and http), one scanner namespace per
tool and the watcher; multicast never leaves the lab.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from ipaddress import ip_address
from pathlib import Path
from typing import Any

import pytest

from sensor.alerts.alert import Alert
from sensor.alerts.catalogue import Action
from sensor.alerts.render import to_ecs
from sensor.config import parse_config
from sensor.daemon.mdns import serve
from sensor.daemon.pipeline import Pipeline
from sensor.mdns.sensor import MdnsSensor
from sensor.observations import HoneyportHit, Transport
from tests.alertcheck import parse_alerts, validate_alert
from tests.mdns.netlab import Host, Lab, missing_tools
from tests.waiting import wait_for, wait_for_async

pytestmark = [
    pytest.mark.netns,
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root"),
    pytest.mark.skipif(bool(missing_tools()), reason=f"missing tools: {missing_tools()}"),
]

BROWSE = Action.MDNS_SERVICE_BROWSE.value
ENUMERATION = Action.MDNS_SERVICE_ENUMERATION.value
_CLONE_NEWNET = 0x40000000


@pytest.fixture
def lab(request: pytest.FixtureRequest) -> Iterator[Lab]:
    subnet = f"10.251.{os.getpid() % 200 + len(request.node.name) % 50}"
    with Lab(subnet) as made:
        yield made


def test_browsing_tools_alert_once_each_and_the_responder_never(lab: Lab, tmp_path: Path) -> None:
    watch = lab.add_host("watch", 1)
    responder = lab.add_host("resp", 2)
    scanners = {tool: lab.add_host(tool, number)
                for tool, number in (("browse", 10), ("all", 11), ("nmap", 12), ("dig", 13))}
    config = tmp_path / "sensor.yaml"
    config.write_text(f"sensor: {{name: lab, state_dir: {tmp_path}}}\noutputs: [{{type: stdout}}]\n")
    sensor, out, err = lab.start(watch, [sys.executable, "-m", "sensor", "-v", "mdns", "--interface", "eth0",
                                         "--config", str(config)], "sensor")
    wait_for(lambda: b"watching eth0" in err.read_bytes(), 20, "the watcher")
    lab.start_avahi(responder, [("vm", "_ssh._tcp", 22), ("vm", "_http._tcp", 80)])
    for tool in ("browse", "all"):
        lab.start_bus(scanners[tool])
        lab.start_avahi(scanners[tool])

    tools = {
        "browse": ["avahi-browse", "-rtp", "_ssh._tcp"],
        "all": ["avahi-browse", "-artp"],
        "nmap": ["nmap", "-e", "eth0", "--script", "broadcast-dns-service-discovery",
                 "--script-args", "broadcast-dns-service-discovery.timeout=3s"],
        "dig": ["dig", "-p", "5353", "@224.0.0.251", "_ssh._tcp.local", "PTR", "+time=2", "+tries=1"],
    }
    # Each avahi-browse alone, before the tools: a querier that has just seen another host ask the same
    # question stays silent (duplicate question suppression, RFC 6762 section 7.3; avahi -a and nmap both ask
    # for the service types), and the watcher would not see it ask.
    browsed = lab.run(scanners["browse"], tools.pop("browse"), 30)
    assert f"{responder.address};22".encode() in browsed.stdout, "avahi-browse resolved the ssh service"
    lab.run(scanners["all"], tools.pop("all"), 30)
    running = [lab.start(scanners[tool], args, tool)[0] for tool, args in tools.items()]
    for process in running:
        process.wait(30)

    expected = {host.address for host in scanners.values()}
    wait_for(lambda: expected <= {a["source"]["ip"] for a in parse_alerts(out.read_bytes())}, 20,
             "an alert for every scanner")
    os.kill(sensor.pid, signal.SIGTERM)
    assert sensor.wait(20) == 0, err.read_text()
    alerts = parse_alerts(out.read_bytes())

    by_source: dict[str, list[dict[str, Any]]] = {}
    for alert in alerts:
        by_source.setdefault(alert["source"]["ip"], []).append(alert)
    assert set(by_source) == expected, "no alert from the responder, the watcher or anyone else"
    first_action = {"browse": BROWSE, "all": ENUMERATION, "nmap": ENUMERATION, "dig": BROWSE}
    for tool, host in scanners.items():
        updates = by_source[host.address]
        assert len({a["t1046"]["incident_id"] for a in updates}) == 1, f"{tool}: one incident"
        assert updates[0]["event"]["action"] == first_action[tool], tool
        assert {a["event"]["action"] for a in updates} <= {BROWSE, ENUMERATION}, tool
        assert "mdns" in updates[-1]["t1046"]["evidence_sources"]
    assert "_ssh._tcp.local" in by_source[scanners["browse"].address][-1]["t1046"]["sample"]["mdns_names"]
    assert "T1046-MDNS-LEGACY" in by_source[scanners["dig"].address][-1]["t1046"]["rules"]


def test_a_dual_stack_browser_is_one_incident_named_by_its_ipv4_address(lab: Lab, tmp_path: Path) -> None:
    """avahi browses over IPv4 and IPv6 and announces its own addresses over both (AAAA over IPv4 too):
    the watcher links the two and reports one scanner, not two."""
    watch = lab.add_host("watch", 1, ipv6=True)
    responder = lab.add_host("resp", 2, ipv6=True)
    browser = lab.add_host("dual", 10, ipv6=True)
    config = tmp_path / "sensor.yaml"
    config.write_text(f"sensor: {{name: lab, state_dir: {tmp_path}}}\noutputs: [{{type: stdout}}]\n")
    sensor, out, err = lab.start(watch, [sys.executable, "-m", "sensor", "-v", "mdns", "--interface", "eth0",
                                         "--config", str(config)], "sensor")
    wait_for(lambda: b"watching eth0" in err.read_bytes(), 20, "the watcher")
    lab.start_avahi(responder, [("vm", "_ssh._tcp", 22)])
    lab.start_bus(browser)
    lab.start_avahi(browser)
    browsed = lab.run(browser, ["avahi-browse", "-rtp", "_ssh._tcp"], 30)
    assert b"eth0;IPv6;vm;SSH Remote Terminal" in browsed.stdout, browsed.stdout + browsed.stderr
    wait_for(lambda: any(a["source"]["ip"] == browser.address for a in parse_alerts(out.read_bytes())), 20,
             "an alert for the browser")
    os.kill(sensor.pid, signal.SIGTERM)
    assert sensor.wait(20) == 0, err.read_text()
    alerts = parse_alerts(out.read_bytes())
    assert {a["source"]["ip"] for a in alerts} == {browser.address}, "one scanner: no incident for its IPv6 address"
    assert len({a["t1046"]["incident_id"] for a in alerts}) == 1
    last = alerts[-1]
    assert last["t1046"].get("scanner_aliases") == [browser.address6], "its IPv6 queries joined the incident"
    assert browser.address6 in last["related"]["ip"]


class _ListSink:
    def __init__(self) -> None:
        self.alerts: list[Alert] = []

    def deliver(self, alert: Alert, observer: str) -> None:
        self.alerts.append(alert)

    def close(self) -> None:
        """Nothing to release."""


class _InNamespace(threading.Thread):
    """An asyncio loop in a thread moved into ``netns``: the watcher, the decoys and a plain TCP honeyport."""

    def __init__(self, netns: str, pipeline: Pipeline, sensor: MdnsSensor, honeyport: int) -> None:
        super().__init__(daemon=True)
        self.netns, self.pipeline, self.sensor, self.honeyport = netns, pipeline, sensor, honeyport
        self.loop = asyncio.new_event_loop()
        self.stop = asyncio.Event()
        self.ready = threading.Event()
        self.failure: BaseException | None = None

    def run(self) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        descriptor = os.open(f"/run/netns/{self.netns}", os.O_RDONLY)
        try:
            if libc.setns(descriptor, _CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns")
        finally:
            os.close(descriptor)
        try:
            self.loop.run_until_complete(self._main())
        except BaseException as error:  # handed to the test thread
            self.failure = error
        finally:
            self.ready.set()
            self.loop.close()

    async def _main(self) -> None:
        server = await asyncio.start_server(self._touched, "0.0.0.0", self.honeyport)
        task = asyncio.create_task(serve(self.sensor, self.pipeline, self.stop, tick_seconds=0.5))
        await wait_for_async(lambda: bool(self.sensor.decoys.registered) or task.done(), 20, "the decoys")
        self.ready.set()
        await task
        server.close()
        await server.wait_closed()

    async def _touched(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer, local = writer.get_extra_info("peername"), writer.get_extra_info("sockname")
        self.pipeline.observe(HoneyportHit(ts=time.time(), source=ip_address(peer[0]), source_port=peer[1],
                                           target=ip_address(local[0]), target_port=local[1],
                                           transport=Transport.TCP, profile="smb"))
        writer.close()


@contextlib.contextmanager
def _decoy_watcher(watch: Host) -> Iterator[tuple[_InNamespace, _ListSink]]:
    """The watcher with one decoy (backup-nas, _smb._tcp, a honeyport on 4445) running in ``watch``;
    stopped, and checked for a failure, on leaving."""
    config = parse_config({
        "sensor": {"name": "lab"},
        "mdns": {"interfaces": ["eth0"], "decoys": [{"instance": "backup-nas", "type": "_smb._tcp", "port": 4445}]},
    })
    sink = _ListSink()
    pipeline = Pipeline(config, [sink])
    worker = _InNamespace(watch.netns, pipeline, MdnsSensor(config.mdns, pipeline.observe), 4445)
    worker.start()
    try:
        assert worker.ready.wait(30) and worker.failure is None, worker.failure
        yield worker, sink
    finally:
        worker.loop.call_soon_threadsafe(worker.stop.set)
        worker.join(30)
    assert worker.failure is None, worker.failure


def test_decoys_are_advertised_over_ipv6_as_well(lab: Lab) -> None:
    watch = lab.add_host("watch", 1, ipv6=True)
    scanner = lab.add_host("scan", 10, ipv6=True)
    with _decoy_watcher(watch):
        lab.start_bus(scanner)
        lab.start_avahi(scanner)
        found = lab.run(scanner, ["avahi-browse", "-rtp", "_smb._tcp"], 30).stdout.decode()
    seen = {tuple(line.split(";")[1:4]) for line in found.splitlines() if line.startswith("+;")}
    assert {("eth0", "IPv4", "backup-nas"), ("eth0", "IPv6", "backup-nas")} <= seen, found


def test_decoy_resolved_then_its_honeyport_touched_is_one_high_severity_incident(lab: Lab) -> None:
    watch = lab.add_host("watch", 1)
    scanner = lab.add_host("scan", 10)
    with _decoy_watcher(watch) as (worker, sink):
        assert worker.sensor.decoys.registered == ("backup-nas._smb._tcp.local.",)
        lab.start_bus(scanner)
        lab.start_avahi(scanner)
        found = lab.run(scanner, ["avahi-browse", "-rtp", "_smb._tcp"], 30).stdout.decode()
        resolved = [line.split(";") for line in found.splitlines() if line.startswith("=;")]
        assert [(r[3], r[7], r[8]) for r in resolved] == [("backup-nas", watch.address, "4445")], found
        touch = lab.run(scanner, [sys.executable, "-c", "import socket, sys; "
                                  "socket.create_connection((sys.argv[1], int(sys.argv[2])), 5).close()",
                                  resolved[0][7], resolved[0][8]], 15)
        assert touch.returncode == 0, touch.stderr
        wait_for(lambda: any("honeyport" in a.evidence_sources for a in list(sink.alerts)), 15, "the touch")
    alerts = sink.alerts
    assert {str(a.scanner) for a in alerts} == {scanner.address}, "our own decoy traffic is ignored"
    assert len({a.incident_id for a in alerts}) == 1
    last = alerts[-1]
    assert {"T1046-MDNS-DECOY", "T1046-HONEYPORT"} <= set(last.rules)
    assert {"mdns", "honeyport"} <= set(last.evidence_sources)
    assert last.severity >= 3 and last.confidence == "high"
    for alert in alerts:
        validate_alert(to_ecs(alert, "lab"))
