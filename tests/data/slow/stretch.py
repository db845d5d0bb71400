"""Make a slow scan out of a real fast one: keep the probes of a few (target, port) pairs of a capture and
spread them out in time, each probe's packets keeping their own spacing.

    python tests/data/slow/stretch.py SRC.pcap OUT.pcap --scanner IP --pairs TARGET:PORT,... --every SECONDS

The pairs are probed in the order given, one every SECONDS, starting at the first kept packet's time.
Reads and writes classic libpcap files (Ethernet, IPv4, TCP/UDP); everything else is dropped.
"""

from __future__ import annotations

import argparse
import ipaddress
import struct
from pathlib import Path


def packets(data: bytes) -> tuple[bytes, str, list[tuple[float, bytes, bytes]]]:
    magic = data[:4]
    endian = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    scale = 1e9 if magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d") else 1e6
    out, offset = [], 24
    while offset + 16 <= len(data):
        sec, frac, incl, _orig = struct.unpack(endian + "IIII", data[offset:offset + 16])
        header = data[offset + 8:offset + 16]
        out.append((sec + frac / scale, header, data[offset + 16:offset + 16 + incl]))
        offset += 16 + incl
    return data[:24], endian + ("n" if scale == 1e9 else "u"), out


def flow(frame: bytes) -> tuple[str, str, int, int] | None:
    """(source, destination, source port, destination port) of an Ethernet/IPv4 TCP or UDP frame."""
    if len(frame) < 34 or frame[12:14] != b"\x08\x00":
        return None
    ip = frame[14:]
    if ip[9] not in (6, 17):
        return None
    header = (ip[0] & 0x0F) * 4
    sport, dport = struct.unpack("!HH", ip[header:header + 4])
    return str(ipaddress.ip_address(ip[12:16])), str(ipaddress.ip_address(ip[16:20])), sport, dport


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--scanner", required=True)
    parser.add_argument("--pairs", required=True, help="TARGET:PORT,... in the order to probe them")
    parser.add_argument("--every", type=float, required=True)
    args = parser.parse_args()
    header, kind, frames = packets(args.source.read_bytes())
    pairs = [(p.rsplit(":", 1)[0], int(p.rsplit(":", 1)[1])) for p in args.pairs.split(",")]
    slot = {pair: n for n, pair in enumerate(pairs)}
    kept: dict[int, list[tuple[float, bytes]]] = {}
    for ts, _, frame in frames:
        seen = flow(frame)
        if seen is None:
            continue
        src, dst, sport, dport = seen
        pair = (dst, dport) if src == args.scanner else (src, sport) if dst == args.scanner else None
        if pair in slot:
            kept.setdefault(slot[pair], []).append((ts, frame))
    missing = [pairs[n] for n in range(len(pairs)) if n not in kept]
    if missing:
        raise SystemExit(f"no packets for {missing}")
    start = min(ts for group in kept.values() for ts, _ in group)
    out = []
    for n, group in kept.items():
        first = min(ts for ts, _ in group)
        out += [(start + n * args.every + (ts - first), frame) for ts, frame in group]
    endian, unit = kind[0], kind[1]
    scale = 1e9 if unit == "n" else 1e6
    body = b"".join(struct.pack(endian + "IIII", int(ts), round((ts - int(ts)) * scale) % int(scale), len(frame),
                                len(frame)) + frame for ts, frame in sorted(out))
    args.out.write_bytes(header + body)


if __name__ == "__main__":
    main()
