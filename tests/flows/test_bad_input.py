"""Bad flow-log input gets what a bad Zeek log gets: a clear line, the malformed count, no traceback, nothing lost."""

from __future__ import annotations

import gzip
import io
import subprocess
import sys
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "data" / "flows"


def test_malformed_records_are_counted_and_the_good_ones_judged(tmp_path: Path) -> None:
    good = (DATA / "aws-docs.log").read_bytes()
    path = tmp_path / "flows.log.gz"
    with gzip.open(path, "wb") as stream:
        stream.write(b"version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start "
                     b"end action log-status\n" + good + b"2 1 eni-1 10.0.0.1 nonsense 1 2 6 1 40 1 2 ACCEPT OK\n"
                     b"2 1 eni-1 10.0.0.1 10.0.0.2 1 70000 6 1 40 1 2 ACCEPT OK\n\xff\xfe garbage\n")
    done = subprocess.run([sys.executable, "-m", "sensor", "replay", str(path)], capture_output=True, timeout=60)
    assert done.returncode == 0
    stderr = done.stderr.decode()
    assert "Traceback" not in stderr
    assert "3 malformed" in stderr.splitlines()[-1]
    assert "unusable aws record" in stderr


def test_a_named_file_of_no_known_format_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello\n")
    done = subprocess.run([sys.executable, "-m", "sensor", "replay", str(path)], capture_output=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.decode().strip().splitlines() == [
        f"t1046-sensor: error: {path}: neither a Zeek log (no #fields header and no JSON records) nor a flow log "
        "(firewall, AWS, Google Cloud, Azure)"]


def test_a_truncated_azure_document_is_reported_not_raised(tmp_path: Path) -> None:
    text = (DATA / "azure-vnet-docs.json").read_text()
    path = tmp_path / "PT1H.json"
    cut = text.index("DefaultRule_DenyAllInBound")  # past the first flow group's tuples: the rest is lost
    path.write_text(text[:cut] + "\n")
    out = io.BytesIO()
    from sensor.config import SensorConfig
    from sensor.replay import replay

    summary = replay([path], SensorConfig(), out)
    assert summary.malformed >= 1
