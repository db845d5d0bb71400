"""Record the mDNS lab captures of ``tests/data/reach/``: a router's habit and a many-type browse in one packet.
Run as root; everything happens in network namespaces this script makes and removes (a hub with a Linux
bridge, captured with tcpdump on the bridge as a SPAN port sees it; :mod:`tests.mdns.netlab`).

    python -m tests.data.reach.record_mdns habit tests/data/reach/mdns_habit/capture.pcap
    python -m tests.data.reach.record_mdns many_types tests/data/reach/mdns_many_types/capture.pcap

``habit``: 10.220.0.20 (avahi-daemon publishing ``Music._daap._tcp``) answers 10.220.0.1, which runs
``dig -p 5353 @224.0.0.251 _daap._tcp.local PTR`` (a fresh ephemeral source port each time) every
:data:`HABIT_EVERY` seconds, :data:`HABIT_QUERIES` times. The capture is then stretched in time
(:func:`stretch`): query *k* and everything up to the next query move to :data:`HABIT_CADENCE` * *k* seconds
after the first, each packet keeping its offset from its query, so the router asks every 20 minutes, a few
times an hour, as the home routers of issue 22 do.

``many_types``: 10.221.0.10 runs python-zeroconf's ``ServiceBrowser`` for the 19 :data:`BROWSED` types, which
sends them as 19 PTR questions of one mDNS query (then again a second later, its second startup query);
10.221.0.20 (avahi-daemon publishing ``Lab web._http._tcp``) answers.
"""

from __future__ import annotations

import ipaddress
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

from tests.mdns.netlab import Host, Lab
from tests.waiting import wait_for

HABIT_QUERIES = 7
HABIT_EVERY = 2.0
"""Seconds between the router's queries as recorded."""
HABIT_CADENCE = 1200.0
"""Seconds between the router's queries after :func:`stretch`."""
BROWSED = ("_http._tcp", "_https._tcp", "_mqtt._tcp", "_coap._udp", "_home-assistant._tcp", "_esphomelib._tcp",
           "_hue._tcp", "_elg._tcp", "_axis-video._tcp", "_nut._tcp", "_octoprint._tcp", "_printer._tcp",
           "_ipp._tcp", "_airplay._tcp", "_raop._tcp", "_googlecast._tcp", "_spotify-connect._tcp",
           "_sonos._tcp", "_daap._tcp")
"""What a home-automation hub browses for: 11 types that are neither sensitive nor everyday, 8 everyday ones."""
BROWSER = """
import sys, time
from zeroconf import IPVersion, ServiceBrowser, Zeroconf
zc = Zeroconf(interfaces=[sys.argv[1]], ip_version=IPVersion.V4Only)
browser = ServiceBrowser(zc, [f"{kind}.local." for kind in sys.argv[3:]], handlers=[lambda **_: None])
time.sleep(float(sys.argv[2]))
browser.cancel()
zc.close()
"""
MDNS = ipaddress.ip_address("224.0.0.251")


def capture(lab: Lab, out: Path) -> subprocess.Popen[bytes]:
    """tcpdump on the lab's bridge, writing ``out`` packet by packet; started in its own session."""
    process = subprocess.Popen(["ip", "netns", "exec", lab.bridge_netns, "tcpdump", "-i", "br0", "-U", "-s", "0",
                                "-w", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               start_new_session=True)
    lab.processes.append(process)
    time.sleep(1.0)
    return process


def finish(process: subprocess.Popen[bytes]) -> None:
    """Stop tcpdump by its own id, so it writes its last packets."""
    time.sleep(1.0)
    process.send_signal(signal.SIGTERM)
    process.wait(10)


def habit(lab: Lab, out: Path) -> None:
    router, nas = lab.add_host("router", 1), lab.add_host("nas", 20)
    dump = capture(lab, out)
    lab.start_avahi(nas, [("Music", "_daap._tcp", 3689)])
    time.sleep(3.0)
    for _ in range(HABIT_QUERIES):
        started = time.monotonic()
        lab.run(router, ["dig", "-p", "5353", "@224.0.0.251", "_daap._tcp.local", "PTR", "+time=1", "+tries=1"],
                timeout=10)
        time.sleep(max(0.0, HABIT_EVERY - (time.monotonic() - started)))
    finish(dump)
    stretch(out, router)


def many_types(lab: Lab, out: Path) -> None:
    browser, server = lab.add_host("hub", 10), lab.add_host("web", 20)
    lab.start_avahi(server, [("Lab web", "_http._tcp", 80)])
    time.sleep(3.0)
    dump = capture(lab, out)
    done = lab.run(browser, [sys.executable, "-c", BROWSER, browser.address, "2.5", *BROWSED], timeout=30)
    if done.returncode != 0:
        raise SystemExit(f"the browser failed: {done.stderr.decode(errors='replace')}")
    finish(dump)


def frames(data: bytes) -> tuple[bytes, str, list[tuple[float, bytes]]]:
    """The file header, the byte order, and (time, record without its time) of each packet of a pcap."""
    endian = "<" if data[:4] == b"\xd4\xc3\xb2\xa1" else ">"
    found, offset = [], 24
    while offset + 16 <= len(data):
        seconds, micros, captured, _ = struct.unpack_from(f"{endian}IIII", data, offset)
        found.append((seconds + micros / 1e6, data[offset + 8:offset + 16 + captured]))
        offset += 16 + captured
    return data[:24], endian, found


def is_query_of(frame: bytes, querier: str) -> bool:
    """Whether an Ethernet frame is an IPv4 UDP datagram from ``querier`` to the mDNS group's port 5353."""
    if len(frame) < 42 or frame[12:14] != b"\x08\x00" or frame[23] != 17:
        return False
    header = (frame[14] & 0x0F) * 4
    source, destination = ipaddress.ip_address(frame[26:30]), ipaddress.ip_address(frame[30:34])
    port = struct.unpack_from("!H", frame, 14 + header + 2)[0]
    return str(source) == querier and destination == MDNS and port == 5353


def stretch(path: Path, querier: Host) -> None:
    """Put the querier's queries :data:`HABIT_CADENCE` apart: each packet from query *k* on (until the next)
    moves by the same amount, so it keeps its offset from query *k*; packets before the first query stay."""
    header, endian, packets = frames(path.read_bytes())
    starts = [ts for ts, record in packets if is_query_of(record[8:], querier.address)]
    if len(starts) != HABIT_QUERIES:
        raise SystemExit(f"expected {HABIT_QUERIES} queries from {querier.address}, found {len(starts)}")
    out = bytearray(header)
    for ts, record in packets:
        episode = sum(1 for start in starts if start <= ts) - 1
        moved = ts if episode < 0 else starts[0] + episode * HABIT_CADENCE + (ts - starts[episode])
        seconds, micros = divmod(round(moved * 1e6), 1_000_000)
        out += struct.pack(f"{endian}II", seconds, micros) + record
    path.write_bytes(bytes(out))


def main() -> None:
    scenario, out = sys.argv[1], Path(sys.argv[2]).resolve()
    record = {"habit": (habit, "10.220.0"), "many_types": (many_types, "10.221.0")}
    if scenario not in record:
        raise SystemExit(f"usage: record_mdns.py {{{','.join(record)}}} OUT.pcap")
    how, subnet = record[scenario]
    out.parent.mkdir(parents=True, exist_ok=True)
    with Lab(subnet) as lab:
        how(lab, out)
    wait_for(out.exists, 5, str(out))
    print(f"{out}: {out.stat().st_size} bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
