"""A `run` node watching mDNS in a namespace lab: it forwards what it hears to the centre, and an address it
gains while running is its own at once (the daemon's tick re-reads this host's addresses).

Three namespaces on one bridge: the centre (``run`` with ``nodes:``), the node (``run`` with ``node:`` and
``mdns:``), a browsing host. Multicast stays in the lab; every process and namespace goes with the test.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.fixtures import Certificates
from tests.netns import Host, Running, netns_lab, run_in, subnet_for
from tests.waiting import wait_for

pytestmark = pytest.mark.netns

TOKEN = "node-mdns-token-0123456789"
PORT = 6146
BROWSE = """
import socket, sys
from tests.mdns.packets import PTR, query_packet
sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sender.bind((sys.argv[1], 0))
sender.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(sys.argv[1]))
sender.sendto(query_packet(("_ssh._tcp.local.", PTR)), ("224.0.0.251", 5353))
"""


def _browse(host: Host, source: str) -> None:
    """One PTR question for ``_ssh._tcp`` (a remote-access type: one is enough to alert) from ``source``."""
    done = run_in(host.name, [sys.executable, "-c", BROWSE, source], timeout=20)
    assert done.returncode == 0, done.stderr


def test_a_run_node_forwards_mdns_browsing_and_knows_an_address_it_gains(tmp_path: Path,
                                                                          certificates: Certificates) -> None:
    with netns_lab(3, subnet_for("node-mdns"), "nmdn") as lab:
        centre_host, node_host, browser = lab.hosts
        subnet = centre_host.ipv4.rpartition(".")[0]
        tokens = tmp_path / "node-tokens"
        tokens.write_text(f"edge-a {TOKEN}\n")
        tokens.chmod(0o600)
        centre_config = tmp_path / "centre.yaml"
        centre_config.write_text(
            f"sensor: {{name: centre, state_dir: {tmp_path / 'centre'}}}\n"
            "honeyports: {listen: []}\n"
            f"detection: {{local_nets: [{subnet}.0/24]}}\n"
            f"nodes: {{listen: '{centre_host.ipv4}:{PORT}', cert_file: {certificates.cert},"
            f" key_file: {certificates.key}, node_tokens_file: {tokens}}}\n")
        node_config = tmp_path / "node.yaml"
        node_config.write_text(
            f"sensor: {{name: edge-a, state_dir: {tmp_path / 'node'}}}\n"
            "honeyports: {listen: []}\n"
            "mdns: {interfaces: [eth0]}\n"
            f"detection: {{local_nets: [{subnet}.0/24]}}\n"
            f"node: {{central: '{centre_host.ipv4}:{PORT}', ca_file: {certificates.ca}, server_name: localhost,"
            f" token_env: NODE_TOKEN}}\n")
        centre = Running(centre_host.name, [sys.executable, "-m", "sensor", "-v", "run", "--config",
                                            str(centre_config)])
        node = Running(node_host.name, ["env", f"NODE_TOKEN={TOKEN}", sys.executable, "-m", "sensor", "-v", "run",
                                        "--config", str(node_config)])
        try:
            wait_for(lambda: centre.logged("running") and node.logged("mdns: watching eth0"), 30,
                     "the centre and the node running")
            gained = f"{subnet}.200"
            run_in(node_host.name, ["ip", "addr", "add", f"{gained}/24", "dev", "eth0"], timeout=10, check=True)
            wait_for(lambda: node.logged(f"own addresses, whose packets are not observed, changed: added {gained}"),
                     30, "the node's tick re-reading its addresses")
            _browse(node_host, gained)
            _browse(browser, browser.ipv4)
            wait_for(lambda: any(a["source"]["ip"] == browser.ipv4 for a in centre.alerts), 30,
                     "the browser's question forwarded by the node and alerting at the centre")
            assert centre.logged(f"node edge-a@{node_host.ipv4} connected")
        finally:
            codes = (node.stop(), centre.stop())
        assert codes == (0, 0), (node.log[-20:], centre.log[-20:])
    alert = next(a for a in centre.alerts if a["source"]["ip"] == browser.ipv4)
    assert alert["event"]["action"] == "mdns_service_browse"
    assert "mdns" in alert["t1046"]["evidence_sources"]
    assert "_ssh._tcp.local" in alert["t1046"]["sample"]["mdns_names"]
    assert {a["source"]["ip"] for a in centre.alerts} == {browser.ipv4}, "the node's own questions are not alerts"
    assert node.alerts == [], "a forwarding node does not correlate its mDNS questions itself"
