"""An mDNS flood does not stall the shared event loop: 100 packets a second of 64-question queries from one
host, and honeyport touches beside it are still answered at once (the bench, bench/mdns_flood_bench.py,
prints the figures; before the parsing budget the median was 1.5 to 2.7 s)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.mdns.flood import flood
from tests.mdns.netlab import missing_tools

pytestmark = [
    pytest.mark.netns,
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root"),
    pytest.mark.skipif(bool(missing_tools()), reason=f"missing tools: {missing_tools()}"),
]


def test_honeyport_touches_are_answered_at_once_during_an_mdns_flood(tmp_path: Path) -> None:
    measured = flood(tmp_path)
    assert measured.packets >= 500 and len(measured.latencies) >= 20
    assert measured.median < 0.5, f"median {measured.median:.3f} s over {len(measured.latencies)} touches"
    assert "sends more than its parsing budget" in measured.log, "the flood was seen and bounded"
