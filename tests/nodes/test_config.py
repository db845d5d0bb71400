"""The ``nodes:`` (central daemon) and ``node:`` (honeyport node) sections: typed, every error with its path."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sensor.config import NodeConfig, NodesConfig, parse_config
from sensor.errors import ConfigError


def test_both_sections_parse_into_typed_objects() -> None:
    config = parse_config(yaml.safe_load("""
sensor: {name: edge-a}
nodes: {listen: "0.0.0.0:6146", cert_file: /etc/t1046/centre.pem, key_file: /etc/t1046/centre.key,
        token_env: T1046_NODE_TOKEN, max_nodes: 8, rate: 50}
node: {central: "central.example:6146", ca_file: /etc/t1046/ca.pem, token_file: /etc/t1046/node.token,
       spool_max_bytes: 1048576, spool_full: drop_newest}
"""))
    assert config.nodes == NodesConfig(listen=("0.0.0.0", 6146), cert_file=Path("/etc/t1046/centre.pem"),
                                       key_file=Path("/etc/t1046/centre.key"), token_env="T1046_NODE_TOKEN",
                                       max_nodes=8, rate=50.0)
    assert config.node == NodeConfig(central=("central.example", 6146), ca_file=Path("/etc/t1046/ca.pem"),
                                     token_file=Path("/etc/t1046/node.token"), spool_max_bytes=1 << 20,
                                     spool_full="drop_newest")
    assert parse_config({}).nodes is None and parse_config({}).node is None


def test_every_error_of_the_sections_is_reported_with_its_path() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(yaml.safe_load("""
nodes: {listen: "somewhere", token_env: A, token_file: /b, max_nodes: 0, max_message_bytes: 10, rate: -1,
        colour: red}
node: {central: "10.0.0.5:99999", spool_max_bytes: 12, spool_full: keep_all, server_name: [x]}
"""))
    problems = caught.value.problems
    for prefix in ("nodes.colour:", "nodes.cert_file: is required", "nodes.key_file: is required",
                   "nodes.token_file: give token_env or token_file", "nodes.listen:", "nodes.max_nodes:",
                   "nodes.max_message_bytes:", "nodes.rate:", "node.token_env: is required", "node.central:",
                   "node.spool_max_bytes:", "node.spool_full:", "node.server_name:"):
        assert any(problem.startswith(prefix) for problem in problems), (prefix, problems)


def test_a_section_that_is_not_a_mapping_says_so() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"node": "10.0.0.5:6146"})
    assert any(problem.startswith("node: must be a mapping") for problem in caught.value.problems)


def test_the_centre_takes_per_node_tokens_instead_of_or_beside_a_shared_one() -> None:
    only_own = parse_config(yaml.safe_load("""
nodes: {listen: "0.0.0.0:6146", cert_file: /c.pem, key_file: /c.key, node_tokens_file: /etc/t1046/node-tokens}
"""))
    assert only_own.nodes is not None and only_own.nodes.node_tokens_file == Path("/etc/t1046/node-tokens")
    assert only_own.nodes.token_env is None and only_own.nodes.token_file is None
    both = parse_config(yaml.safe_load("""
nodes: {listen: "0.0.0.0:6146", cert_file: /c.pem, key_file: /c.key, node_tokens_file: /t, token_env: SHARED}
"""))
    assert both.nodes is not None and both.nodes.token_env == "SHARED"
    with pytest.raises(ConfigError) as caught:
        parse_config(yaml.safe_load('nodes: {listen: "0.0.0.0:6146", cert_file: /c.pem, key_file: /c.key}'))
    assert caught.value.problems == [
        "nodes.token_env: is required (or token_file, or node_tokens_file): the node tokens"]
