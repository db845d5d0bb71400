"""The checks every alert goes through can fail: each departure from ECS or OCSF that a SIEM would reject is
caught, and the vendored ECS table is what its generator cuts from elastic/ecs's ecs_flat.yml."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from sensor.alerts.render import ECS_VERSION, OCSF_VERSION, to_ecs, to_ocsf
from tests.alertcheck import ECS_TABLES, InvalidAlert, ecs_problems, ecs_table, ocsf_problems, validate_alert
from tests.alerts.samples import TOUCH
from tests.data.ecs import generate


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(document: dict[str, Any]) -> None:
        *parents, leaf = path.split(".")
        node = document
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return mutate


def _drop(path: str) -> Callable[[dict[str, Any]], None]:
    def mutate(document: dict[str, Any]) -> None:
        *parents, leaf = path.split(".")
        node = document
        for key in parents:
            node = node[key]
        del node[leaf]
    return mutate


@pytest.mark.parametrize(("mutate", "complaint"), [
    (_set("scanner_ip", "10.0.0.1"), "scanner_ip: not an ECS 9.3.0 field"),
    (_set("source.scanner", True), "source.scanner: not an ECS 9.3.0 field"),
    (_set("network.community_id", 7), "network.community_id: keyword wants a string"),
    (_set("source.port", "34855"), "source.port: long wants an integer"),
    (_set("source.port", True), "source.port: long wants an integer"),
    (_set("destination.ip", "not-an-ip"), "destination.ip: ip wants an IPv4 or IPv6 address"),
    (_set("event.created", "yesterday"), "event.created: date wants an ISO 8601 string"),
    (_set("related.ip", "10.0.0.1"), "related.ip: ECS defines an array"),
    (_set("network.transport", ["tcp"]), "network.transport: ECS defines a single value"),
    (_set("network.transport", "TCP"), "network.transport: 'TCP' is not lowercase"),
    (_set("event.kind", "finding"), "event.kind: 'finding' is not one of"),
    (_set("event.category", ["network", "scan"]), "event.category: 'scan' is not one of"),
    (_set("event.type", ["connection"]),
     "event.type 'connection' is not expected with event.category 'intrusion_detection'"),
    (_set("rule.description", "x" * 1025), "rule.description: 1025 characters, over ignore_above 1024"),
    (_drop("ecs"), "ecs.version: missing"),
    (_drop("@timestamp"), "@timestamp: required by ECS, missing"),
])
def test_ecs_departures_are_caught(mutate: Callable[[dict[str, Any]], None], complaint: str) -> None:
    document = to_ecs(TOUCH, "sensor-1")
    assert ecs_problems(document) == []
    mutate(document)
    assert any(complaint in problem for problem in ecs_problems(document)), ecs_problems(document)


def test_custom_fields_are_free_only_under_t1046() -> None:
    document = to_ecs(TOUCH, "sensor-1")
    document["t1046"]["anything"] = {"goes": ["here", 1]}
    assert validate_alert(document) is document
    document["threat"]["t1046"] = {"anything": 1}
    with pytest.raises(InvalidAlert, match=r"threat\.t1046: not an ECS"):
        validate_alert(document)


def test_an_undeclared_or_unvendored_ecs_version_is_refused() -> None:
    document = to_ecs(TOUCH, "sensor-1")
    document["ecs"]["version"] = "1.0.0"
    with pytest.raises(InvalidAlert, match="no vendored ECS field table"):
        validate_alert(document)


@pytest.mark.parametrize(("mutate", "complaint"), [
    (_set("src_endpoint", {"ip": "128.232.110.120"}), "Additional properties are not allowed ('src_endpoint'"),
    (_set("observer", {"name": "sensor-1"}), "Additional properties are not allowed ('observer'"),
    (_set("evidences", [{}]), "evidences.0:"),
    (_set("observables", [{"name": "evidences[0].src_endpoint.ip", "value": "128.232.110.120"}]),
     "observables.0: 'type_id' is a required property"),
    (_set("activity_id", 7), "activity_id: 7 is not one of"),
    (_set("time", "2026-11-28T10:00:00Z"), "time: '2026-11-28T10:00:00Z' is not of type 'integer'"),
    (_set("evidences", [{"src_endpoint": {"ip": "128.232.110.120", "port": 70000}}]),
     "evidences.0.src_endpoint.port: 70000 is greater than the maximum"),
    (_drop("finding_info"), "(document): 'finding_info' is a required property"),
])
def test_ocsf_departures_are_caught(mutate: Callable[[dict[str, Any]], None], complaint: str) -> None:
    document = to_ocsf(TOUCH, "sensor-1")
    assert ocsf_problems(document) == []
    mutate(document)
    assert any(complaint in problem for problem in ocsf_problems(document)), ocsf_problems(document)


def test_ocsf_is_checked_against_the_version_it_declares() -> None:
    """1.1 has no ``connection_info.community_uid`` (1.4 added it): valid in the one, not in the other."""
    document = to_ocsf(TOUCH, "sensor-1")
    document["evidences"][0]["connection_info"]["community_uid"] = "1:LQU9qZlK+B5F3KDmev6m5PMibrg="
    assert OCSF_VERSION == "1.1.0" and ocsf_problems(document)
    document["metadata"]["version"] = "1.4.0"
    assert ocsf_problems(document) == []
    document["metadata"]["version"] = "0.9"
    with pytest.raises(InvalidAlert, match="not an OCSF version"):
        validate_alert(document)


def test_the_vendored_table_is_the_declared_version_with_its_provenance() -> None:
    table = ecs_table(ECS_VERSION)
    assert table["ecs_version"] == ECS_VERSION
    provenance = table["provenance"]
    assert provenance["repository"] == "elastic/ecs" and provenance["path"] == "generated/ecs/ecs_flat.yml"
    assert provenance["tag"] == f"v{ECS_VERSION}" and len(provenance["commit"]) == 40
    assert {generate.field_set(name) for name in table["fields"]} == set(provenance["field_sets"])
    assert (ECS_TABLES / f"fields-{ECS_VERSION}.json").read_text() == generate.dumps(table)


def test_the_generator_keeps_what_the_validator_needs() -> None:
    flat = {
        "event.category": {"type": "keyword", "normalize": ["array"], "ignore_above": 1024, "description": "x",
                           "allowed_values": [{"name": "network", "expected_event_types": ["info", "start"]}]},
        "network.transport": {"type": "keyword", "normalize": [],
                              "description": "The field value must be normalized to lowercase for querying."},
        "@timestamp": {"type": "date", "normalize": [], "required": True, "description": "x"},
        "user.name": {"type": "keyword", "normalize": [], "description": "x"},
    }
    table = generate.table(yaml.safe_dump(flat).encode(), "9.9.9", {"repository": "elastic/ecs"})
    assert table["fields"] == {
        "@timestamp": {"type": "date", "array": False, "required": True},
        "event.category": {"type": "keyword", "array": True, "required": False, "ignore_above": 1024,
                           "allowed": {"network": ["info", "start"]}},
        "network.transport": {"type": "keyword", "array": False, "required": False, "lowercase": True},
    }
    assert json.loads(generate.dumps(table)) == copy.deepcopy(table)
