"""Configuration: typed, parsed once, every error reported at once with its path."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sensor.config import default_config, load_config, parse_config, parse_ports
from sensor.errors import ConfigError

BAD = """
sensor:
  name: [not, a, string]
  colour: blue
detection:
  local_nets: [10.0.0.0/8, 300.1.0.0/16]
  window: -5
  port_scan_ports: many
  allowlist:
    - {cidr: 10.9.9.9/32}
    - {cidr: nonsense, reason: x, schedule: "25:00-26:00"}
    - just a string
honeyports:
  listen: [127.0.0.1, localhost]
  tcp: "22,70000"
  udp: "9-1"
mdns:
  decoys:
    - {instance: nas, type: smb, port: 445}
outputs:
  - {type: carrier-pigeon}
  - {type: file}
frobnicate: true
"""


def test_parse_ports() -> None:
    assert parse_ports("22, 80,8000-8003,80") == (22, 80, 8000, 8001, 8002, 8003)
    for bad in ("0", "70000", "ssh", "9-1", "1-2-3"):
        with pytest.raises(ValueError):
            parse_ports(bad)


def test_every_error_is_reported_at_once_with_its_path(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(BAD)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    problems = caught.value.problems
    expected_paths = [
        "frobnicate:", "sensor.colour:", "sensor.name:", "detection.local_nets:", "detection.window:",
        "detection.port_scan_ports:", "detection.allowlist[0].reason:", "detection.allowlist[1].cidr:",
        "detection.allowlist[1].schedule:", "detection.allowlist[2]:", "honeyports.listen[1]:",
        "honeyports.tcp:", "honeyports.udp:", "mdns.decoys[0].type:", "outputs[0].type:", "outputs[1].path:",
    ]
    for prefix in expected_paths:
        assert any(problem.startswith(prefix) for problem in problems), (prefix, problems)
    assert any("70000 is not a port" in problem for problem in problems)


def test_check_config_command_lists_all_errors_and_exits_non_zero(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(BAD)
    result = subprocess.run([sys.executable, "-m", "sensor", "check-config", str(path)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.count("\n  ") >= 16
    good = tmp_path / "good.yaml"
    good.write_text("sensor: {name: s1}\ndetection: {allowlist: [{cidr: 10.9.9.9/32, reason: Nessus}]}\n")
    result = subprocess.run([sys.executable, "-m", "sensor", "check-config", str(good)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout


def test_invalid_yaml_says_where(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("sensor:\n  name: [unclosed\n")
    with pytest.raises(ConfigError, match="line 3"):
        load_config(path)


def test_the_design_example_parses_into_typed_objects() -> None:
    config = parse_config({
        "sensor": {"name": "sensor-1", "state_dir": "/var/lib/t1046-sensor"},
        "zeek": {"log_dir": "/opt/zeek/logs/current"},
        "detection": {"local_nets": ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"],
                      "allowlist": [{"cidr": "10.9.9.9/32", "reason": "vulnerability scanner"}]},
        "honeyports": {"listen": ["127.0.0.1"], "tcp": "2222,2323,8081", "udp": ""},
        "mdns": {"interfaces": []},
        "outputs": [{"type": "stdout"}, {"type": "file", "path": "alerts.jsonl"}],
    })
    assert config.name == "sensor-1"
    assert str(config.zeek.log_dir) == "/opt/zeek/logs/current"
    assert config.honeyports.tcp == (2222, 2323, 8081) and config.honeyports.udp == ()
    assert config.detection.allowlist[0].reason == "vulnerability scanner"
    assert [o.type for o in config.outputs] == ["stdout", "file"]


def test_embedded_default_works_without_zeek() -> None:
    config = default_config()
    assert config.zeek.log_dir is None
    assert config.honeyports.listen == ("127.0.0.1",) and config.honeyports.tcp
    assert all(port > 1024 for port in config.honeyports.tcp + config.honeyports.udp)
    assert {o.type for o in config.outputs} == {"stdout", "file"}


def test_sink_settings_are_checked_with_the_rest() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({
            "sensor": {"metrics_listen": "nowhere"},
            "outputs": [
                {"type": "syslog", "host": "127.0.0.1", "protocol": "carrier", "port": 99999, "colour": "red"},
                {"type": "http", "url": "ftp://siem", "headers": {"Authorization": "Splunk s3cret"},
                 "token_env": "A", "token_file": "/b", "timeout": 0},
                {"type": "file", "path": "a.jsonl", "name": "one", "batch_size": 0},
                {"type": "stdout", "name": "one"},
            ],
        })
    problems = "\n".join(caught.value.problems)
    for expected in ("sensor.metrics_listen:", "outputs[0].protocol:", "outputs[0].port:", "outputs[0].colour:",
                     "outputs[1].url:", "outputs[1].headers:", "outputs[1].token_file:", "outputs[1].timeout:",
                     "outputs[2].batch_size:", "outputs[3].name:"):
        assert expected in problems, (expected, problems)
    assert "s3cret" not in problems
    config = parse_config({"sensor": {"metrics_listen": "[::1]:9646"},
                           "outputs": [{"type": "syslog", "host": "siem", "port": 6514, "protocol": "tls"}]})
    assert config.metrics_listen == ("::1", 9646)
    assert config.outputs[0].settings == {"host": "siem", "port": 6514, "protocol": "tls"}


def test_outbound_scans_are_one_switch_and_their_severity_a_choice(tmp_path: Path) -> None:
    assert default_config().detection.outbound_scans is True
    assert default_config().detection.outbound_severity == "high"
    off = parse_config({"detection": {"outbound_scans": False, "outbound_severity": "medium"}}).detection
    assert (off.outbound_scans, off.outbound_severity) == (False, "medium")
    path = tmp_path / "outbound.yaml"
    path.write_text("detection: {outbound_scans: 'no', outbound_severity: extreme}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    problems = caught.value.problems
    assert any(p.startswith("detection.outbound_scans:") and "true or false" in p for p in problems), problems
    assert any(p.startswith("detection.outbound_severity:") and "low, medium, high, critical" in p
               for p in problems), problems
