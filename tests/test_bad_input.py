"""Unusable input on every command: exit 2 with a message naming the file, never a traceback."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from linked_apps.cli import main
from linked_apps.errors import ConfigError, StateError
from linked_apps.model.graph import TrustGraph
from linked_apps.model.topology import topology_from_config
from linked_apps.state import APP_TYPE, POLICY_TYPE, STACK_TYPE, graph_from_export, graph_from_outputs
from tests._project import PROJECT_ROOT

DEV_STACK = PROJECT_ROOT / "stacks" / "Pulumi.dev.yaml"
UID = "7c9e6679-7425-40de-944b-e07fc1f90ae7"


def run(*args: str) -> object:
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture
def binary(tmp_path: Path) -> Path:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"\xff\xfe linked-apps")
    return path


@pytest.mark.parametrize("command", [
    ["plan", "--config"], ["check", "--config"], ["graph", "--config"], ["who-calls", "hr-portal", "--config"],
])
def test_config_that_is_not_utf8_exits_2_naming_the_file(binary: Path, command: list[str]) -> None:
    result = run(*command, binary)
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert f"{binary}: not UTF-8 text" in result.output


@pytest.mark.parametrize("command", [
    ["graph", "--state"], ["reach", "hr-portal", "--state"], ["check", "--stack", "dev", "--state"],
    ["diff", "--stack", "dev", "--against"], ["verify", "--to", "payroll-api", "--cf-access-token", "t", "--state"],
])
def test_state_that_is_not_utf8_exits_2_naming_the_file(binary: Path, command: list[str]) -> None:
    result = run(*command, binary)
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert f"{binary}: not UTF-8 text" in result.output


def test_a_project_without_a_program_exits_2(tmp_path: Path) -> None:
    (tmp_path / "stacks").mkdir()
    shutil.copy(DEV_STACK, tmp_path / "stacks" / "Pulumi.dev.yaml")
    result = run("plan", "--stack", "dev", "--project-dir", tmp_path)
    assert result.exit_code == 2, result.output
    assert f"{tmp_path}: no __main__.py" in result.output


def test_export_with_values_of_the_wrong_kind_reads_without_crashing() -> None:
    """Hand-edited or foreign exports: ids that are not strings, absurd precedences, props that are not maps."""
    doc = {"deployment": {"resources": [
        {"type": POLICY_TYPE, "id": {"not": "a string"}, "outputs": {"decision": "non_identity"}},
        {"type": APP_TYPE, "id": 5, "outputs": {"name": "odd-id", "type": "self_hosted"}},
        {"type": APP_TYPE, "id": UID, "outputs": {"name": "api", "type": "self_hosted", "policies": [
            {"id": "by-hand", "precedence": 1e400},
            {"decision": "non_identity", "includes": [{"linkedAppToken": {"appUid": UID}}], "precedence": True},
        ]}},
    ]}}
    graph = graph_from_export(doc)
    assert graph.apps["odd-id"].uid is None
    # Precedences that are no usable number fall back to the place in the list.
    assert graph.attachments["api"] == (("by-hand", 1), ("inline:api:1", 2))
    # Props that are not a map make the state unusable as a whole: a StateError naming the path (exit 2).
    doc["deployment"]["resources"].append({"type": APP_TYPE, "id": "x", "outputs": ["not", "a", "map"]})
    with pytest.raises(StateError, match=r"deployment.resources\[3\].outputs is a list"):
        graph_from_export(doc)


def test_outputs_whose_links_are_not_a_list_are_a_state_error() -> None:
    with pytest.raises(StateError, match="`links` is not a list"):
        graph_from_outputs({"apps": {}, "links": "hr-portal -> payroll-api"})


def test_outputs_with_a_managed_flag_that_is_not_a_boolean_keep_the_default() -> None:
    graph = graph_from_outputs(json.loads('{"apps": {"a": {"type": "self_hosted", "managed": "no"}}}'))
    assert graph.apps["a"].managed is True


def test_empty_standard_input_is_named_as_such() -> None:
    result = CliRunner().invoke(main, ["graph", "--state", "-"], input="")
    assert result.exit_code == 2
    assert result.output.startswith("linked-apps: standard input: not JSON")


def test_config_keys_that_are_not_strings_are_named_not_crashed_on(tmp_path: Path) -> None:
    path = tmp_path / "Pulumi.odd.yaml"
    path.write_text("config:\n  1: ignored, not our namespace\n  linked-apps:accountId: a\n"
                    "  linked-apps:teamDomain: acme.cloudflareaccess.com\n"
                    "  linked-apps:apps:\n    7: {type: self_hosted, domain: x.acme.com}\n")
    result = run("check", "--config", path)
    assert result.exit_code == 2, result.output
    assert "linked-apps:apps[7]: this name is not a string; quote it in the YAML" in result.output


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
_KEYS = st.sampled_from(["id", "name", "type", "uid", "aud", "domain", "policies", "decision", "includes",
                         "requires", "excludes", "saasApp", "precedence", "linkedAppToken", "appUid", "clientId"])
_PROPS = st.dictionaries(_KEYS, _JSON | st.lists(st.dictionaries(_KEYS, _JSON, max_size=4), max_size=3), max_size=8)
_RESOURCE = st.fixed_dictionaries({
    "type": st.sampled_from([APP_TYPE, POLICY_TYPE, STACK_TYPE, "other"]),
    "id": _JSON,
    "outputs": _PROPS | _JSON,
})


@settings(max_examples=300, deadline=None)
@given(st.lists(_RESOURCE | _JSON, max_size=6))
def test_any_export_reads_or_is_a_state_error(resources: list) -> None:
    try:
        graph = graph_from_export({"deployment": {"resources": resources}})
    except StateError:
        return
    _consistent(graph)


def _consistent(graph: TrustGraph) -> None:
    """What every reader promises: links and attachments name apps of the graph, and each app is found by name."""
    assert all(link.source in graph.apps and link.target in graph.apps for link in graph.links)
    assert set(graph.attachments) <= set(graph.apps)
    assert all(graph.find(name).name == name for name in graph.apps)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=6), _PROPS | _JSON, max_size=4), _JSON)
def test_any_outputs_document_reads_or_is_a_state_error(apps: dict, links: object) -> None:
    try:
        graph = graph_from_outputs({"apps": apps, "links": links, "team_domain": "acme.cloudflareaccess.com"})
    except StateError:
        return
    _consistent(graph)


_CONFIG_KEYS = st.sampled_from(["linked-apps:accountId", "linked-apps:teamDomain", "linked-apps:apps",
                                "linked-apps:links", "linked-apps:assertions", "linked-apps:typo", "other:key"])
_APP = st.dictionaries(st.sampled_from(["type", "domain", "uid", "lookup", "stack", "output", "app", "redirectUris",
                                        "destinations", "policyIds"]),
                       st.sampled_from(["self_hosted", "saas", "ssh", "x.acme.com", UID]) | _JSON,
                       max_size=4)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_CONFIG_KEYS, _JSON | st.dictionaries(st.text(max_size=6), _APP, max_size=3)
                       | st.lists(st.dictionaries(st.sampled_from(["from", "to", "expect", "only", "reaches"]),
                                                  _JSON | st.text(max_size=6), max_size=3), max_size=3),
                       max_size=6))
def test_any_config_parses_or_is_a_config_error(values: dict) -> None:
    try:
        topology = topology_from_config(values)
    except ConfigError as exc:
        assert exc.problems and all(p.startswith("linked-apps:") for p in exc.problems), exc.problems
        return
    for violation in topology.violations():
        assert set(violation.apps) <= set(topology.apps) | {link.source for link in topology.links} \
            | {link.target for link in topology.links}
