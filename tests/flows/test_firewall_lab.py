"""A real firewall: nftables ``log`` rules (kernel LOG lines, written to a file by rsyslog reading /dev/kmsg) and an
NFLOG group read by ulogd2 on a target namespace; real nmap SYN, connect and UDP scans and a benign HTTP client
through it. ``run`` follows both logs live and ``replay`` reads them afterwards: the same incidents, the scanner's
and none for the client; and they agree with the view of the same traffic from a capture of it (tcpdump in the
target): Zeek's conn.log when ``zeek`` is on PATH, else the flow log the capture derives (tests/flows/derive.py).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sensor.config import SensorConfig, load_config
from sensor.replay import replay
from tests.flows.derive import write_all
from tests.netns import Running, netns_lab, popen_in, run_in, stop, subnet_for
from tests.waiting import wait_for

pytestmark = pytest.mark.netns
ULOGD_PLUGINS = Path("/usr/lib/x86_64-linux-gnu/ulogd")


def _ruleset(tag: str, group: int) -> str:
    """The lab's rules: packaging/nftables/t1046.nft's logging on a host that serves 80 and 8080, drops other TCP
    and rejects UDP; each verdict logged to the kernel log and to NFLOG ``group``."""
    def log(verdict: str) -> str:
        return f'log prefix "{tag} {verdict}: " log group {group} prefix "{tag} {verdict}: "'
    return f"""
table inet {tag} {{
  chain input {{
    type filter hook input priority filter; policy accept;
    ct state established,related accept
    iif lo accept
    tcp dport {{ 80, 8080 }} ct state new {log("accept")} accept
    meta l4proto tcp ct state new {log("drop")} drop
    meta l4proto udp ct state new {log("reject")} reject
  }}
  chain output {{
    type filter hook output priority filter; policy accept;
    ct direction reply tcp flags & (syn | ack) == syn | ack {log("answer")}
  }}
}}
"""


def _needs(*tools: str) -> None:
    for tool in tools:
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    if not (ULOGD_PLUGINS / "ulogd_output_JSON.so").exists():
        pytest.skip("ulogd2's JSON output plugin is not installed")


def _ulogd_conf(path: Path, group: int, out: Path) -> None:
    plugins = "".join(f'plugin="{ULOGD_PLUGINS}/ulogd_{name}.so"\n' for name in (
        "inppkt_NFLOG", "raw2packet_BASE", "filter_IFINDEX", "filter_IP2STR", "filter_HWHDR", "output_JSON"))
    path.write_text(f"""[global]
logfile="{path.parent / 'ulogd.log'}"
loglevel=3
{plugins}stack=log1:NFLOG,base1:BASE,ifi1:IFINDEX,ip2str1:IP2STR,mac2str1:HWHDR,json1:JSON
[log1]
group={group}
[json1]
sync=1
file="{out}"
""")


def _rsyslog_conf(path: Path, tag: str, out: Path) -> None:
    path.write_text(f"""global(workDirectory="{path.parent}")
module(load="imkmsg")
if $msg contains "{tag} " then {{
  action(type="omfile" file="{out}" template="RSYSLOG_FileFormat")
}}
""")


def _incidents(alerts: list[dict[str, object]]) -> dict[str, set[str]]:
    """Scanner → the actions of its incidents."""
    found: dict[str, set[str]] = {}
    for alert in alerts:
        found.setdefault(alert["source"]["ip"], set()).add(alert["event"]["action"])  # type: ignore[index]
    return found


def _replayed(paths: list[Path], config: SensorConfig) -> list[dict[str, object]]:
    out = io.BytesIO()
    replay(paths, config, out)
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_nftables_and_ulogd_logs_of_real_scans(tmp_path: Path) -> None:
    _needs("nft", "ulogd", "nmap", "tcpdump", "rsyslogd")
    tag, group = f"t1046x{os.getpid() % 100000}", 40 + os.getpid() % 20
    all_netns = Path("/proc/sys/net/netfilter/nf_log_all_netns")
    if not all_netns.exists():
        pytest.skip("this kernel has no net.netfilter.nf_log_all_netns")
    kern, ulog, capture = tmp_path / "kern.log", tmp_path / "ulogd.json", tmp_path / "target.pcap"
    config_path = tmp_path / "sensor.yaml"
    config_path.write_text(f"""
sensor: {{name: fw-lab, state_dir: {tmp_path / 'state'}}}
detection: {{local_nets: [10.0.0.0/8]}}
flows:
  - {{format: netfilter, path: {kern}, name: kern}}
  - {{format: ulogd, path: {ulog}, name: ulogd}}
outputs: [{{type: stdout}}]
""")
    (tmp_path / "rsyslog.conf").touch()
    _rsyslog_conf(tmp_path / "rsyslog.conf", tag, kern)
    _ulogd_conf(tmp_path / "ulogd.conf", group, ulog)
    before = all_netns.read_text().strip()
    processes: list[subprocess.Popen[bytes]] = []
    with netns_lab(3, subnet_for("fwlab"), tag="fw") as lab:
        target, scanner, client = lab.hosts
        try:
            all_netns.write_text("1")
            processes.append(subprocess.Popen(["rsyslogd", "-n", "-f", str(tmp_path / "rsyslog.conf"),
                                               "-i", str(tmp_path / "rsyslog.pid")], stderr=subprocess.PIPE))
            run_in(target.name, ["nft", "-f", "-"], timeout=20, check=True, input_bytes=_ruleset(tag, group).encode())
            processes.append(popen_in(target.name, ["ulogd", "-c", str(tmp_path / "ulogd.conf"),
                                                    "-p", str(tmp_path / "ulogd.pid")]))
            processes.append(popen_in(target.name, ["tcpdump", "-U", "-q", "-i", "eth0", "-w", str(capture), "ip"]))
            for port in (80, 8080):
                processes.append(popen_in(target.name, [sys.executable, "-m", "http.server", str(port), "--bind",
                                                        target.ipv4], cwd=str(tmp_path)))
            wait_for(lambda: run_in(client.name, ["curl", "-s", "-o", "/dev/null", f"http://{target.ipv4}:8080/"],
                                    timeout=5).returncode == 0, 20, "the target's web servers")
            wait_for(lambda: ulog.exists() and kern.exists() and kern.stat().st_size > 0, 20,
                     "the first logged packet in both logs")
            daemon = Running(lab.hub, [sys.executable, "-m", "sensor", "run",
                                       "--config", str(config_path)])
            try:
                for _ in range(10):
                    for port in (80, 8080):
                        run_in(client.name, ["curl", "-s", "-o", "/dev/null", f"http://{target.ipv4}:{port}/"],
                               timeout=10)
                nmap = ["nmap", "-n", "-Pn", "-T4", "--max-retries", "1", "--host-timeout", "60s"]
                run_in(scanner.name, [*nmap, "-sS", "--top-ports", "100", target.ipv4], timeout=90)
                run_in(scanner.name, [*nmap, "-sT", "-p", "1-60", target.ipv4], timeout=90)
                run_in(scanner.name, [*nmap, "-sU", "--top-ports", "15", target.ipv4], timeout=120)
                wait_for(lambda: scanner.ipv4 in _incidents(daemon.alerts), 60, "run's alert about the scanner")
            finally:
                assert daemon.stop() == 0
        finally:
            for process in reversed(processes):
                stop(process)
            all_netns.write_text(before)
    logged = {path.name: path.read_text().splitlines() for path in (kern, ulog)}
    assert all(sum(" drop: " in line for line in lines) >= 100 for lines in logged.values()), logged
    assert all(any(" answer: " in line for line in lines) for lines in logged.values())
    live = _incidents(daemon.alerts)
    config = load_config(config_path)
    replayed = _incidents(_replayed([kern, ulog], config))
    assert set(live) == set(replayed) == {scanner.ipv4}, (live, replayed)
    assert live[scanner.ipv4] & {"port_scan", "network_scan"}
    assert client.ipv4 not in live and client.ipv4 not in replayed
    each = [_incidents(_replayed([path], config)) for path in (kern, ulog)]
    assert [set(found) for found in each] == [{scanner.ipv4}, {scanner.ipv4}]
    if shutil.which("zeek") is not None:
        subprocess.run(["zeek", "-C", "-r", str(capture), "LogAscii::use_json=T"], cwd=tmp_path, check=True,
                       capture_output=True, timeout=120)
        reference = _incidents(_replayed([tmp_path / "conn.log"], SensorConfig()))
    else:  # the Python side's view of the same capture: the flow log it derives (docs/sources.md)
        reference = _incidents(_replayed([write_all(capture, tmp_path / "derived")["aws-v5"]], SensorConfig()))
    assert set(reference) == set(live), (reference, live)


def test_the_packaged_nftables_snippet_is_valid() -> None:
    _needs("nft")
    snippet = Path(__file__).resolve().parents[2] / "packaging" / "nftables" / "t1046.nft"
    checked = subprocess.run(["nft", "-c", "-f", str(snippet)], capture_output=True, timeout=20)
    assert checked.returncode == 0, checked.stderr.decode()
