"""The Zeek package's own notices say what replay of its logs says: a Zeek cluster without the Python side
(the cluster-only mode of docs/zeek.md) gets the same detections.

For every capture whose logs real Zeek wrote with the package loaded (``tests/data/package-logs/*`` and
``tests/data/arp/*/zeek``), the scanners with a ``T1046::`` notice in notice.log, the scanners replay alerts
on, and the truth's scanners are one set: a scanner the truth marks ``stretch`` may be in both or in neither,
never in one only; a benign capture has no notice and no alert. No Zeek is needed: the logs are committed
(``zeek_scripts/testing/regenerate-package-logs.sh`` writes them).

    python -m tests.test_package_parity      # the table: scanners noticed, alerted, true, per capture
"""

from __future__ import annotations

import io
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from sensor.config.load import default_config
from sensor.replay import replay
from sensor.zeek.logs import ZeekLog
from sensor.zeek.malformed import MalformedLog

DATA = Path(__file__).resolve().parent / "data"
LOG_SETS = sorted([d for d in (DATA / "package-logs").iterdir() if d.is_dir()]
                  + [d / "zeek" for d in (DATA / "arp").iterdir() if d.is_dir()])
"""Every directory of logs written with the package loaded (TSV; test_zeek_package.py holds the JSON copies
to the same detections)."""


@dataclass(frozen=True)
class Parity:
    """Who the package noticed, who replay alerted on and who the truth names, for one capture."""

    capture: str
    noticed: frozenset[str]
    alerted: frozenset[str]
    scanners: frozenset[str]
    stretch: frozenset[str]

    @property
    def mismatches(self) -> frozenset[str]:
        """Addresses on which the package, replay and the truth disagree."""
        required = self.scanners - self.stretch
        wrong = (self.noticed ^ self.alerted) | (required - self.noticed) | (required - self.alerted)
        return frozenset(wrong | ((self.noticed | self.alerted) - self.scanners))

    def row(self) -> str:
        def listed(addresses: frozenset[str]) -> str:
            return ", ".join(sorted(addresses)) or "-"

        return (f"| {self.capture} | {listed(self.noticed)} | {listed(self.alerted)} | {listed(self.scanners)} "
                f"| {listed(self.mismatches)} |")


HEADER = ("| capture | noticed (T1046:: notices) | alerted (replay) | truth | mismatch |\n"
          "| --- | --- | --- | --- | --- |")


def noticed(directory: Path) -> frozenset[str]:
    """Sources of the package's ``T1046::`` notices in the directory's notice.log."""
    path = directory / "notice.log"
    if not path.exists():
        return frozenset()
    records = ZeekLog(path, MalformedLog()).records(lambda kind: ("note", "src"))
    return frozenset(str(r["src"]) for _, r in records if str(r.get("note", "")).startswith("T1046::") and r.get("src"))


def alerted(directory: Path) -> frozenset[str]:
    """Sources replay alerts on over the directory's logs."""
    out = io.BytesIO()
    replay([directory], default_config(), out)
    return frozenset(json.loads(line)["source"]["ip"] for line in out.getvalue().splitlines())


def parity(directory: Path) -> Parity:
    truth = json.loads(((directory.parent if directory.name == "zeek" else directory) / "truth.json").read_text())
    return Parity(capture=str(directory.relative_to(DATA)), noticed=noticed(directory), alerted=alerted(directory),
                  scanners=frozenset(s["ip"] for s in truth["scanners"]),
                  stretch=frozenset(s["ip"] for s in truth["scanners"] if s.get("stretch")))


def test_every_capture_with_a_pcap_has_package_logs() -> None:
    """regenerate-package-logs.sh writes package logs for every capture in tests/data."""
    captures = {p.parent for p in DATA.glob("*/*/capture.pcap")}
    covered = {d.parent if d.name == "zeek" else DATA / d.name.replace("__", "/", 1) for d in LOG_SETS}
    assert sorted(str(c.relative_to(DATA)) for c in captures - covered) == []


@pytest.mark.parametrize("directory", LOG_SETS, ids=lambda d: str(d.relative_to(DATA)))
def test_the_package_notices_whom_replay_alerts_on(directory: Path) -> None:
    found = parity(directory)
    assert not found.mismatches, f"the package's notices and replay disagree:\n{HEADER}\n{found.row()}"


REACH = DATA / "reach"
ACTION = {
    "slow_t1_vertical": "port_scan",  # nmap -T1, 12 ports of one host over three minutes
    "small_port_scan": "port_scan",  # 10 ports of one host
    "sweep_445": "address_scan",  # 445/tcp of 16 addresses
    "zero_window_telnet": "address_scan",  # 23/tcp of 10 addresses, SYNs with window 0
    "avahi_browse": "mdns_service_browse",  # _ssh._tcp, then the service type enumeration
    "avahi_smb_browse": None,  # one browse for file shares: not a scan
}
"""The lab captures of the classes the package's notices missed (tests/data/reach/record_parity.py), and the
``event.action`` replay of plain Zeek's logs ends each scanner's incident with (None: benign)."""


@pytest.mark.parametrize("flavour", ["zeek", "zeek-json"])
@pytest.mark.parametrize("name", sorted(ACTION))
def test_replay_of_plain_zeek_logs_names_the_scanner_and_its_action(name: str, flavour: str) -> None:
    truth = json.loads((REACH / name / "truth.json").read_text())
    out = io.BytesIO()
    replay([REACH / name / flavour], default_config(), out)
    alerts = [json.loads(line) for line in out.getvalue().splitlines()]
    assert {a["source"]["ip"] for a in alerts} == {s["ip"] for s in truth["scanners"]}
    if ACTION[name] is not None:
        assert alerts[-1]["event"]["action"] == ACTION[name], [a["event"]["action"] for a in alerts]
        assert all(re.fullmatch(s["actions"], ACTION[name]) for s in truth["scanners"])


def main() -> None:
    sys.stdout.write(HEADER + "\n")
    for directory in LOG_SETS:
        sys.stdout.write(parity(directory).row() + "\n")


if __name__ == "__main__":
    main()
