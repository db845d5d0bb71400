"""The neighbour table a local listener stamps its observations with: /proc/net/arp's text, and the real one
of a namespace that has just resolved a peer."""

from __future__ import annotations

import sys
from ipaddress import ip_address
from pathlib import Path

import pytest

from sensor.neighbours import Neighbours, parse_arp
from sensor.observations import HoneyportHit, Transport
from tests.netns import netns_lab, run_in, skip_unless_possible, subnet_for

ARP = """IP address       HW type     Flags       HW address            Mask     Device
10.77.0.136      0x1         0x2         02:77:00:00:00:17     *        eth0
10.77.0.9        0x1         0x0         00:00:00:00:00:00     *        eth0
10.77.0.10       0x1         0x2         02:77:00:00:00:10     *        eth0
garbage
10.77.0.11       0x1         zz          02:77:00:00:00:11     *        eth0
"""


def test_only_complete_entries_count(tmp_path: Path) -> None:
    assert parse_arp(ARP) == {"10.77.0.136": "02:77:00:00:00:17", "10.77.0.10": "02:77:00:00:00:10"}
    table = tmp_path / "arp"
    table.write_text(ARP)
    now = [0.0]
    neighbours = Neighbours(table, clock=lambda: now[0])
    hit = HoneyportHit(1.0, ip_address("10.77.0.136"), 4000, ip_address("10.77.0.1"), 22, Transport.TCP, "ssh")
    assert neighbours.stamped(hit).mac == "02:77:00:00:00:17"
    table.write_text(ARP.replace("02:77:00:00:00:17", "02:77:00:00:00:99"))
    assert neighbours.mac(hit.source) == "02:77:00:00:00:17", "read at most once a second"
    now[0] = 2.0
    assert neighbours.mac(hit.source) == "02:77:00:00:00:99"
    assert Neighbours(tmp_path / "none").mac(hit.source) == "", "an unreadable table: no MAC, no error"
    assert neighbours.mac(ip_address("fd00::1")) == ""


@pytest.mark.netns
def test_the_real_table_of_a_listener_holds_the_toucher_it_just_answered() -> None:
    skip_unless_possible()
    with netns_lab(2, subnet_for("neigh")) as lab:
        listener, toucher = lab.hosts
        touch = f"import socket; s = socket.socket(); s.settimeout(5); print(s.connect_ex(({listener.ipv4!r}, 9)))"
        run_in(toucher.name, [sys.executable, "-c", touch], timeout=30, check=True)
        code = f"from ipaddress import ip_address; from sensor.neighbours import Neighbours; " \
               f"print(Neighbours().mac(ip_address({toucher.ipv4!r})))"
        result = run_in(listener.name, [sys.executable, "-c", code], timeout=30, check=True)
        assert result.stdout.decode().strip() == toucher.mac.lower()
