"""The watcher and the Zeek-log path see the same browsing in the same capture (s8_mdns_browse).

The capture's mDNS datagrams go through the watcher's packet path (as the socket would hand them over);
the Zeek logs of the same capture go through ``t1046-sensor replay``. Both must name the same scanner
and the same kind of action.
"""

from __future__ import annotations

import ipaddress
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from sensor.alerts.alert import Alert
from sensor.config import DetectionConfig
from sensor.detect.correlator import Correlator
from sensor.mdns.watch import MDNS_PORT, MdnsWatcher
from sensor.observations import IPAddress, MdnsQuery
from tests.alertcheck import parse_alerts
from tests.conftest import CAPTURES, truth

PCAP = Path(__file__).resolve().parent / "data" / "s8_mdns_browse.pcap"
SCENARIO = "s8_mdns_browse"


def udp_datagrams(path: Path) -> Iterator[tuple[float, IPAddress, int, IPAddress, int, bytes]]:
    """(ts, source, source port, destination, destination port, payload) of every UDP packet of a pcap."""
    data = path.read_bytes()
    endian = "<" if data[:4] == b"\xd4\xc3\xb2\xa1" else ">"
    offset = 24
    while offset + 16 <= len(data):
        seconds, micros, captured, _ = struct.unpack_from(f"{endian}IIII", data, offset)
        frame = data[offset + 16: offset + 16 + captured]
        offset += 16 + captured
        ethertype, packet = struct.unpack_from("!H", frame, 12)[0], frame[14:]
        if ethertype == 0x0800 and packet[9] == 17:
            header = (packet[0] & 0x0F) * 4
            source, destination = ipaddress.ip_address(packet[12:16]), ipaddress.ip_address(packet[16:20])
        elif ethertype == 0x86DD and packet[6] == 17:
            header = 40
            source, destination = ipaddress.ip_address(packet[8:24]), ipaddress.ip_address(packet[24:40])
        else:
            continue
        sport, dport, length = struct.unpack_from("!HHH", packet, header)
        yield (seconds + micros / 1e6, source, sport, destination, dport,
               packet[header + 8: header + length])


def watcher_alerts(pcap: Path = PCAP) -> list[Alert]:
    """What the watcher's path makes of the mDNS datagrams to a multicast group in ``pcap``."""
    correlator = Correlator(DetectionConfig())
    clock = [0.0]
    alerts: list[Alert] = []

    def observe(query: MdnsQuery) -> None:
        alerts.extend(correlator.observe(query, clock[0]))

    watcher = MdnsWatcher(["eth0"], observe, clock=lambda: clock[0], own_addresses=frozenset)
    for ts, source, sport, destination, dport, payload in udp_datagrams(pcap):
        if dport == MDNS_PORT and destination.is_multicast:
            clock[0] = ts
            watcher.datagram(payload, source, sport, destination)
    assert watcher.stats.malformed == 0
    return alerts + correlator.flush(clock[0])


def test_watcher_and_zeek_replay_agree_on_scanner_and_action_kind() -> None:
    replay = subprocess.run([sys.executable, "-m", "sensor", "replay", str(CAPTURES / SCENARIO / "zeek")],
                            capture_output=True, timeout=60, check=True)
    zeek = parse_alerts(replay.stdout)
    watched = watcher_alerts()
    scanners = {entry["ip"] for entry in truth(SCENARIO)["scanners"]}
    assert {a["source"]["ip"] for a in zeek} == scanners
    assert {str(a.scanner) for a in watched} == scanners
    assert zeek[0]["event"]["action"] == watched[0].action.value == "mdns_service_enumeration"
    assert {a["event"]["action"] for a in zeek} == {a.action.value for a in watched}
    zeek_rules, watcher_rules = set(zeek[-1]["t1046"]["rules"]), set(watched[-1].rules)
    assert {"T1046-MDNS-ENUM", "T1046-MDNS-LEGACY"} <= zeek_rules & watcher_rules
