"""``check-config``: the file's content, then what it points to, as ``run`` would meet it at start."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sensor.config import parse_config
from sensor.errors import SensorError
from sensor.preflight import preflight, read_env_file
from tests.fixtures import Certificates

NODE_TOKEN = "check-config-token-0123456789"


def _check(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sensor", "check-config", str(config), *args], capture_output=True,
                          text=True, timeout=60, check=False)


def _write(tmp_path: Path, text: str) -> Path:
    config = tmp_path / "sensor.yaml"
    config.write_text(text)
    return config


def test_what_run_would_stop_on_is_an_error_and_what_it_goes_on_with_a_warning(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    tokens = tmp_path / "node-tokens"
    tokens.write_text("edge-a short\n")
    config = _write(tmp_path, f"""
sensor: {{name: centre, state_dir: {tmp_path / 'a-file' / 'state'}}}
zeek: {{log_dir: {tmp_path / 'no-zeek-yet'}}}
mdns: {{interfaces: [t1046-no-such-if]}}
nodes: {{listen: "127.0.0.1:6146", cert_file: {tmp_path / 'missing.pem'}, key_file: {tmp_path / 'missing.key'},
        node_tokens_file: {tokens}}}
outputs:
  - {{type: http, kind: hec, url: "https://splunk.example:8088", token_env: T1046_TEST_UNSET_HEC}}
  - {{type: syslog, host: siem.example, protocol: tls, ca_file: {tmp_path / 'missing-ca.pem'}}}
""")
    checked = _check(config)
    assert checked.returncode == 2
    lines = checked.stderr.splitlines()
    for expected in (f"sensor.state_dir: {tmp_path / 'a-file'} is not a directory",
                     "outputs[0].token_env: environment variable T1046_TEST_UNSET_HEC is not set",
                     f"outputs[1].ca_file: {tmp_path / 'missing-ca.pem'}: cannot read: No such file or directory",
                     f"nodes: cannot load cert_file {tmp_path / 'missing.pem'}",
                     ":1: the token of edge-a is shorter than 16 characters",
                     f"warning: zeek.log_dir: {tmp_path / 'no-zeek-yet'}: no such directory; run goes on and "
                     "follows it once it appears (install Zeek",
                     "warning: mdns.interfaces: there is no interface t1046-no-such-if",
                     "note: secrets were looked up in this shell's environment"):
        assert any(expected in line for line in lines), (expected, lines)
    assert "OK" not in checked.stdout
    config.write_text(f"sensor: {{state_dir: {tmp_path / 'state'}}}\nzeek: {{log_dir: {tmp_path / 'no-zeek-yet'}}}\n"
                      "mdns: {interfaces: [t1046-no-such-if]}\n")
    warned = _check(config)
    assert (warned.returncode, warned.stdout.strip()) == (0, f"{config}: OK"), "run would start: warnings only"
    assert sum("warning: " in line for line in warned.stderr.splitlines()) == 2, warned.stderr
    content = _check(config, "--content-only")
    assert (content.returncode, content.stdout.strip()) == (0, f"{config}: OK (content)")


def test_a_centre_with_its_files_and_secrets_in_place_is_ok(tmp_path: Path, certificates: Certificates) -> None:
    tokens = tmp_path / "node-tokens"
    tokens.write_text(f"edge-a {NODE_TOKEN}\n")
    tokens.chmod(0o600)
    env = tmp_path / "secrets.env"
    env.write_text("# secrets of the service\nT1046_TEST_HEC='hec-secret'\n"
                   "T1046_TEST_SHARED=\"shared-token-0123456789\"\n")
    config = _write(tmp_path, f"""
sensor: {{name: centre, state_dir: {tmp_path / 'state'}}}
nodes: {{listen: "127.0.0.1:6146", cert_file: {certificates.cert}, key_file: {certificates.key},
        node_tokens_file: {tokens}, token_env: T1046_TEST_SHARED}}
outputs:
  - {{type: http, kind: hec, url: "https://splunk.example:8088", token_env: T1046_TEST_HEC,
     ca_file: {certificates.ca}}}
  - {{type: file, path: alerts.jsonl}}
""")
    assert _check(config).returncode == 2, "without the service's environment its secrets are missing"
    checked = _check(config, "--env-file", str(env))
    as_root = (f"{config}: note: checked as root, who may read what the service cannot; give --user with the "
               "service's user (e.g. --user t1046)\n") if os.geteuid() == 0 else ""
    assert (checked.returncode, checked.stdout.strip(), checked.stderr) == (0, f"{config}: OK", as_root)
    assert not (tmp_path / "state").exists(), "checking creates nothing"


def test_preflight_of_a_node(tmp_path: Path, certificates: Certificates, monkeypatch: pytest.MonkeyPatch) -> None:
    node = parse_config({"sensor": {"name": "edge a", "state_dir": str(tmp_path)},
                         "node": {"central": "10.0.0.5:6146", "ca_file": str(certificates.ca),
                                  "token_env": "T1046_TEST_NODE"}})
    monkeypatch.setenv("T1046_TEST_NODE", NODE_TOKEN)
    assert [finding.text for finding in preflight(node)] == [
        "sensor.name: 'edge a' cannot name a node (letters, digits, . _ -; 64 at most)"]


def test_env_files_are_read_as_systemd_reads_them(tmp_path: Path) -> None:
    env = tmp_path / "secrets.env"
    env.write_text("# comment\n; comment\n\nA=1\nB = 'two words'\nC=\"x=y\"\n")
    assert read_env_file(env) == {"A": "1", "B": "two words", "C": "x=y"}
    env.write_text("A=1\nnot a pair\n")
    with pytest.raises(SensorError, match=":2: expected NAME=VALUE"):
        read_env_file(env)


def test_the_shipped_example_passes_on_a_host_without_zeek(tmp_path: Path) -> None:
    """packaging/sensor.example.yaml as installed, its two paths moved into the test's directory: the state
    directory (the unit's), and Zeek's log directory, which is not there."""
    example = (Path(__file__).resolve().parents[1] / "packaging" / "sensor.example.yaml").read_text()
    assert "state_dir: /var/lib/t1046-sensor " in example and "log_dir: /opt/zeek/logs/current " in example
    config = _write(tmp_path, example.replace("/var/lib/t1046-sensor ", f"{tmp_path / 'state'} ")
                    .replace("/opt/zeek/logs/current ", f"{tmp_path / 'no-zeek'} "))
    checked = _check(config)
    warnings = [line for line in checked.stderr.splitlines() if "note: checked as root" not in line]
    assert (checked.returncode, checked.stdout.strip()) == (0, f"{config}: OK"), checked.stderr
    assert warnings == [f"{config}: warning: zeek.log_dir: {tmp_path / 'no-zeek'}: no such directory; run goes on "
                        "and follows it once it appears (install Zeek, or set zeek.log_dir to where its logs are "
                        "written, or remove zeek.log_dir to run without Zeek)"]
