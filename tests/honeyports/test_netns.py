"""End-to-end, as root, in network namespaces the tests create and always remove: the honeyport node
(``python -m sensor honeyports``) in one namespace, real nmap and masscan (or a flooding client) in
another. Traffic only goes to addresses of those namespaces. Alerts are read from the node's stdout."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.netns import Host, Lab, Running, netns_lab, run_in, subnet_for
from tests.waiting import wait_for

pytestmark = pytest.mark.netns

HIGH_PORTS = (2222, 2323, 8081, 13306, 16379)
SERVICE_PORTS = {21: "ftp", 22: "ssh", 23: "telnet", 25: "smtp", 80: "http", 445: "microsoft-ds",
                 3306: "mysql", 3389: "ms-wbt-server", 5900: "vnc", 6379: "redis"}


class HoneyportNode(Running):
    """``t1046-sensor honeyports`` running in a namespace; its stdout alerts collected with arrival times."""

    def __init__(self, host: Host, tmp: Path, tcp: str, extra: str = "", idle_timeout: float = 3,
                 udp: str = "") -> None:
        config = tmp / "honeyports.yaml"
        config.write_text(f"sensor: {{name: e2e-node, state_dir: {tmp / 'state'}}}\n"
                          f"honeyports: {{idle_timeout: {idle_timeout}{extra}}}\n"
                          "outputs: [{type: stdout}]\n")
        super().__init__(host.name, [sys.executable, "-m", "sensor", "-v", "honeyports", "--config", str(config),
                                     "--listen", host.ipv4, "--listen", host.ipv6, "--tcp", tcp, "--udp", udp])
        wait_for(lambda: self.logged("honeyports: e2e-node listening on") or self.process.poll() is not None, 15,
                 "the node to listen")
        assert self.process.poll() is None, "\n".join(self.log)

    def rss_kib(self) -> int:
        """Resident memory of the node (the python process inside ``ip netns exec``)."""
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
        pid = children[0] if children else str(self.process.pid)
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def stop_for_alerts(self) -> list[dict[str, Any]]:
        """SIGTERM, wait for the final incident updates; return every alert."""
        assert self.stop() == 0, "\n".join(self.log)
        return self.alerts


def about(alerts: list[dict[str, Any]], source: str) -> list[dict[str, Any]]:
    """The alerts whose scanner is ``source``."""
    return [a for a in alerts if (a.get("source") or {}).get("ip") == source]


def final_counts(alerts: list[dict[str, Any]], source: str) -> dict[str, int]:
    """The last update's counts of ``source``'s incident, after checking it is one honeyport incident within the
    update budget, in honeyports' words."""
    mine = about(alerts, source)
    assert mine, f"no alert for {source}"
    assert mine[0]["event"]["action"] == "honeyport_probe"
    assert {a["event"]["action"] for a in mine} <= {"honeyport_probe", "port_scan"}
    assert all("T1046-HONEYPORT" in a["t1046"]["rules"] and "honeyport" in a["t1046"]["evidence_sources"]
               for a in mine)
    assert len({a["t1046"]["incident_id"] for a in mine}) == 1 and len(mine) <= 3, [a["message"] for a in mine]
    assert not any(re.search(r"fail|closed", a["message"], re.IGNORECASE) for a in mine), [a["message"] for a in mine]
    return dict(mine[-1]["t1046"]["counts"])


def first_alert(node: HoneyportNode, source: str) -> dict[str, Any]:
    """The first alert about ``source`` while the node runs (how soon it comes: bench/first_alert_bench.py)."""
    wait_for(lambda: any(a["source"]["ip"] == source for _, a in node.timed_alerts), 30, f"an alert about {source}")
    alert = next(a for _, a in node.timed_alerts if a["source"]["ip"] == source)
    assert alert["event"]["action"] == "honeyport_probe", alert
    return alert


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with netns_lab(2, subnet_for("honeyports"), tag="hp") as made:
        yield made


@pytest.fixture
def hosts(lab: Lab) -> tuple[Host, Host]:
    return lab.hosts[0], lab.hosts[1]


def _needs(tool: str) -> None:
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed")


@pytest.mark.parametrize("scan", ["-sS", "-sT"])
def test_nmap_scan_alerts_within_a_second_with_right_counts(hosts: tuple[Host, Host], tmp_path: Path,
                                                           scan: str) -> None:
    _needs("nmap")
    server, scanner = hosts
    node = HoneyportNode(server, tmp_path, ",".join(map(str, HIGH_PORTS)))
    try:
        result = run_in(scanner.name, ["nmap", scan, "-Pn", "-n", "-T4", "--max-retries", "1", "--host-timeout",
                                       "30s", "-p", ",".join(map(str, HIGH_PORTS)), server.ipv4], timeout=60)
        assert result.returncode == 0, result.stderr.decode()
        assert len(re.findall(r"/tcp +open ", result.stdout.decode())) == len(HIGH_PORTS)
        first_alert(node, scanner.ipv4)
    finally:
        alerts = node.stop_for_alerts()
    counts = final_counts(alerts, scanner.ipv4)
    assert counts["distinct_ports"] == len(HIGH_PORTS) and counts["distinct_hosts"] == 1
    assert len(HIGH_PORTS) <= counts["honeyport_hits"] <= 2 * len(HIGH_PORTS), counts
    first = next(a for a in alerts if a["source"]["ip"] == scanner.ipv4)
    assert first["destination"]["ip"] == server.ipv4 and first["event"]["kind"] == "alert"
    last = about(alerts, scanner.ipv4)[-1]
    if scan == "-sS":
        assert counts["half_open"] == counts["honeyport_hits"], "the raw-socket watcher's touches are half-open"
        assert "half-open SYN probes" in last["message"], last["message"]
        assert last["t1046"]["certainty"]["source"] == "unproven" and last["t1046"]["confidence"] != "high"
    else:
        assert counts["half_open"] == 0 and "TCP connections" in last["message"], last["message"]
        assert last["t1046"]["certainty"]["proven_by"] == ["tcp_handshake"]
    assert f"touched {len(HIGH_PORTS)} honeyports on {server.ipv4}" in last["message"], last["message"]


def test_nmap_syn_scan_over_ipv6(hosts: tuple[Host, Host], tmp_path: Path) -> None:
    _needs("nmap")
    server, scanner = hosts
    node = HoneyportNode(server, tmp_path, "2222,8081")
    try:
        result = run_in(scanner.name, ["nmap", "-6", "-sS", "-Pn", "-n", "-T4", "--max-retries", "1", "-p",
                                       "2222,8081", server.ipv6], timeout=60)
        assert len(re.findall(r"/tcp +open ", result.stdout.decode())) == 2, result.stdout.decode()
        first_alert(node, scanner.ipv6)
    finally:
        alerts = node.stop_for_alerts()
    assert final_counts(alerts, scanner.ipv6)["distinct_ports"] == 2


def test_masscan_is_counted_per_port(hosts: tuple[Host, Host], tmp_path: Path) -> None:
    _needs("masscan")
    server, scanner = hosts
    node = HoneyportNode(server, tmp_path, ",".join(map(str, HIGH_PORTS)))
    try:
        result = run_in(scanner.name, ["masscan", server.ipv4, "-p", ",".join(map(str, HIGH_PORTS)), "--rate",
                                       "500", "--adapter", scanner.interface, "--adapter-ip", scanner.ipv4,
                                       "--router-mac", server.mac, "--wait", "1"], timeout=60)
        assert result.returncode == 0, result.stderr.decode()
        assert result.stdout.decode().count("Discovered open port") == len(HIGH_PORTS), result.stdout.decode()
        first_alert(node, scanner.ipv4)
    finally:
        alerts = node.stop_for_alerts()
    counts = final_counts(alerts, scanner.ipv4)
    assert counts["honeyport_hits"] == counts["distinct_ports"] == len(HIGH_PORTS), counts


def test_nmap_version_scan_names_the_emulated_services(hosts: tuple[Host, Host], tmp_path: Path) -> None:
    _needs("nmap")
    server, scanner = hosts
    node = HoneyportNode(server, tmp_path, ",".join(map(str, SERVICE_PORTS)), idle_timeout=10)
    try:
        result = run_in(scanner.name, ["nmap", "-sV", "-Pn", "-n", "-T4", "--max-retries", "1", "--host-timeout",
                                       "90s", "-p", ",".join(map(str, SERVICE_PORTS)), server.ipv4], timeout=120)
    finally:
        alerts = node.stop_for_alerts()
    named = {}
    for line in result.stdout.decode().splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[0].endswith("/tcp") and fields[1] == "open":
            named[int(fields[0].split("/")[0])] = fields[2]
    right = {port for port, service in SERVICE_PORTS.items() if named.get(port) == service}
    assert len(right) >= 8, (named, result.stdout.decode())
    counts = final_counts(alerts, scanner.ipv4)  # one incident, at most 3 alerts (12 before the update budget)
    assert counts["distinct_ports"] == counts["honeyports"] == len(SERVICE_PORTS)
    last = about(alerts, scanner.ipv4)[-1]
    assert last["rule"]["id"] == "T1046-HONEYPORTS" and last["event"]["action"] == "port_scan"
    touches = last["t1046"]["sample"]["honeyport_touches"]
    assert {t["port"] for t in touches} <= set(SERVICE_PORTS) and len(touches) == len(SERVICE_PORTS)
    assert last["t1046"]["certainty"]["proven_by"] == ["tcp_handshake"], "-sV completes handshakes"


FLOOD_CLIENT = r"""
import selectors, socket, sys
target, ports, total, held = sys.argv[1], [int(p) for p in sys.argv[2].split(",")], int(sys.argv[3]), int(sys.argv[4])
slow = []
for i in range(held):                      # slowloris: connections that send a byte and then nothing
    s = socket.create_connection((target, ports[i % len(ports)]), timeout=5)
    s.send(b"G")
    slow.append(s)
selector = selectors.DefaultSelector()
done = started = 0
while done < total:
    while started < total and started - done < 200:
        s = socket.socket(); s.setblocking(False)
        s.connect_ex((target, ports[started % len(ports)]))
        selector.register(s, selectors.EVENT_WRITE)
        started += 1
    for key, _ in selector.select(5):
        selector.unregister(key.fileobj)
        if key.fileobj.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) != 0:
            sys.exit("connect failed")
        key.fileobj.close()
        done += 1
print(done + held, flush=True)
for s in slow:
    s.close()
"""


def test_flood_keeps_the_node_up_bounded_and_counting(hosts: tuple[Host, Host], tmp_path: Path) -> None:
    server, scanner = hosts
    ports = list(range(20000, 20020))
    node = HoneyportNode(server, tmp_path, "20000-20019", extra=", max_connections_per_source: 64")
    try:
        result = run_in(scanner.name, [sys.executable, "-c", FLOOD_CLIENT, server.ipv4, ",".join(map(str, ports)),
                                       "4000", "150"], timeout=300)
        assert result.returncode == 0, result.stderr.decode()
        assert int(result.stdout.decode()) == 4150
        rss = node.rss_kib()
        assert node.process.poll() is None and rss < 150 * 1024, rss
        first_alert(node, scanner.ipv4)
        probe = run_in(scanner.name, [sys.executable, "-c", "import socket,sys; socket.create_connection("
                                      f"({server.ipv4!r}, 20000), timeout=5).close()"], timeout=20)
        assert probe.returncode == 0, "the node still accepts after the flood"
    finally:
        alerts = node.stop_for_alerts()
    counts = final_counts(alerts, scanner.ipv4)
    assert counts["honeyport_hits"] == 4150 + 1, (counts, [line for line in node.log if "stopped" in line])
    assert counts["distinct_ports"] == len(ports)
    assert any("over the per-source cap" in line for line in node.log)


def test_one_nc_touch_is_one_alert(hosts: tuple[Host, Host], tmp_path: Path) -> None:
    _needs("nc")
    server, scanner = hosts
    node = HoneyportNode(server, tmp_path, "2222")
    try:
        result = run_in(scanner.name, ["nc", "-z", "-w", "3", server.ipv4, "2222"], timeout=30)
        assert result.returncode == 0, result.stderr.decode()
        first_alert(node, scanner.ipv4)
    finally:
        alerts = node.stop_for_alerts()
    mine = about(alerts, scanner.ipv4)
    assert len(mine) == 1, ("one touch, one alert, SIGTERM's flush included", [a["message"] for a in mine])
    assert mine[0]["message"] == f"{scanner.ipv4} touched 1 honeyport on {server.ipv4}: ssh; TCP connections."
    assert mine[0]["t1046"]["counts"]["honeyport_hits"] == 1


FORGED_DATAGRAMS = r"""
import socket, struct, sys
target, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)  # IP_HDRINCL: we write the header
payload = b"0&public"
for n in range(count):
    source = socket.inet_aton(f"172.30.{n // 250}.{n % 250 + 1}")  # an address no host here has
    udp = struct.pack("!HHHH", 40000 + n, port, 8 + len(payload), 0) + payload
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), n, 0, 64, socket.IPPROTO_UDP, 0, source,
                         socket.inet_aton(target))
    raw.sendto(header + udp, (target, 0))
print(count)
"""


def test_forged_udp_sources_are_one_aggregate_none_of_high_confidence(hosts: tuple[Host, Host],
                                                                     tmp_path: Path) -> None:
    server, scanner = hosts
    for setting in ("net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.eth0.rp_filter=0"):
        run_in(server.name, ["sysctl", "-qw", setting], timeout=10, check=True)  # accept unroutable sources
    node = HoneyportNode(server, tmp_path, "2222", udp="16161")
    try:
        sent = run_in(scanner.name, [sys.executable, "-c", FORGED_DATAGRAMS, server.ipv4, "16161", "300"],
                      timeout=60)
        assert sent.returncode == 0 and sent.stdout.strip() == b"300", sent.stderr.decode()
        wait_for(lambda: any((a.get("t1046") or {}).get("aggregate") for a in node.alerts), 30, "the aggregate")
    finally:
        alerts = node.stop_for_alerts()
    assert len(alerts) <= 10, [a["message"] for a in alerts]
    assert not [a for a in alerts if a["t1046"]["confidence"] == "high"]
    assert all(a["t1046"]["certainty"] == {"source": "unproven", "proven_by": [], "unproven": ["udp"],
                                           "lockstep_sources": []} for a in alerts)
    aggregate = [a for a in alerts if "aggregate" in a["t1046"]]
    assert aggregate and "source" not in aggregate[-1], "no one source is named"
    assert aggregate[-1]["t1046"]["aggregate"]["sources"] > 290, aggregate[-1]["t1046"]["aggregate"]
    assert aggregate[-1]["rule"]["id"] == "T1046-HONEYPORT-MANY-SOURCES"


def test_lab_is_removed_after_use() -> None:
    before = subprocess.run(["ip", "netns", "list"], capture_output=True, check=False).stdout
    with netns_lab(1, subnet_for("cleanup"), tag="gone") as made:
        name = made.hosts[0].name
        assert name.encode() in subprocess.run(["ip", "netns", "list"], capture_output=True, check=False).stdout
    after = subprocess.run(["ip", "netns", "list"], capture_output=True, check=False).stdout
    assert name.encode() not in after and after.count(b"t1046-") <= before.count(b"t1046-")
