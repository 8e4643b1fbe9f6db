"""`linked-apps who-calls | reach | explain | check` as a user runs them: desired and deployed, text and JSON."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from linked_apps.cli import main
from tests._startup_probe import loaded_by


def run(*args: str) -> Any:
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture
def state(tmp_path: Path, dev_outputs: dict[str, Any]) -> Path:
    """`pulumi stack output --json` of the deployed dev stack."""
    path = tmp_path / "state.json"
    path.write_text(json.dumps(dev_outputs))
    return path


@pytest.fixture
def drifted(tmp_path: Path, dev_outputs: dict[str, Any]) -> Path:
    """Deployed dev stack plus two links added by hand: legacy-crm -> payroll-api and ledger -> hr-portal (a cycle)."""
    doc = copy.deepcopy(dev_outputs)
    doc["links"] += [{"from": "legacy-crm", "to": "payroll-api", "policy_id": "pol-by-hand"},
                     {"from": "ledger", "to": "hr-portal", "policy_id": "pol-loop"}]
    path = tmp_path / "drifted.json"
    path.write_text(json.dumps(doc))
    return path


# -- reach ----------------------------------------------------------------------------------------------------

def test_reach_text_on_the_dev_stack():
    r = run("reach", "hr-portal", "--stack", "dev")
    assert r.exit_code == 0, r.output
    assert r.output.splitlines() == [
        "hr-portal's user identity reaches 2 apps (desired trust, stack dev):",
        "  payroll-api  1 hop   hr-portal -> payroll-api",
        "  ledger       2 hops  hr-portal -> payroll-api -> ledger",
    ]


def test_reach_json_carries_paths_and_the_policy_of_each_hop():
    r = run("reach", "mcp-server", "--stack", "dev", "--format", "json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["app"] == "mcp-server"
    assert [(e["app"], e["hops"], e["path"]) for e in doc["reaches"]] == [
        ("docs-api", 1, ["mcp-server", "docs-api"]),
        ("payroll-api", 1, ["mcp-server", "payroll-api"]),
        ("ledger", 2, ["mcp-server", "payroll-api", "ledger"]),
    ]
    assert [l["policy_name"] for l in doc["reaches"][2]["links"]] == [
        "Linked app token: mcp-server", "Linked app token: payroll-api"]


def test_reach_of_an_app_nobody_trusts():
    r = run("reach", "docs-api", "--stack", "dev")
    assert r.exit_code == 0
    assert "docs-api's user identity reaches no other app" in r.output


def test_reach_on_deployed_state_follows_a_cycle_once(drifted):
    r = run("reach", "ledger", "--state", drifted, "--format", "json")
    assert r.exit_code == 0, r.output
    assert {e["app"]: e["path"] for e in json.loads(r.output)["reaches"]} == {
        "hr-portal": ["ledger", "hr-portal"],
        "payroll-api": ["ledger", "hr-portal", "payroll-api"],
    }


def test_reach_on_deployed_state_carries_policy_ids(state, dev_outputs):
    r = run("reach", "payroll-api", "--state", state, "--format", "json")
    [entry] = json.loads(r.output)["reaches"]
    assert entry["links"][0]["policy_id"] == next(l["policy_id"] for l in dev_outputs["links"] if l["from"] == "payroll-api")


# -- who-calls ------------------------------------------------------------------------------------------------

def test_who_calls_lists_direct_callers_and_chains():
    r = run("who-calls", "ledger", "--stack", "dev")
    assert r.exit_code == 0, r.output
    assert r.output.splitlines() == [
        "3 apps can reach ledger, 1 directly (desired trust, stack dev):",
        "  payroll-api  1 hop   payroll-api -> ledger                by policy 'Linked app token: payroll-api'",
        "  hr-portal    2 hops  hr-portal -> payroll-api -> ledger   by policy 'Linked app token: payroll-api'",
        "  mcp-server   2 hops  mcp-server -> payroll-api -> ledger  by policy 'Linked app token: payroll-api'",
    ]


def test_who_calls_text_on_deployed_state_names_policy_ids(drifted):
    r = run("who-calls", "payroll-api", "--state", drifted)
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[0] == f"4 apps can reach payroll-api, 3 directly (deployed trust in {drifted}):"
    assert "  legacy-crm  1 hop   legacy-crm -> payroll-api           by policy 'Linked app token: legacy-crm' " \
           "(pol-by-hand)" in lines


def test_who_calls_json_on_deployed_drift(drifted):
    r = run("who-calls", "payroll-api", "--state", drifted, "--format", "json")
    doc = json.loads(r.output)
    assert {e["app"]: e["hops"] for e in doc["callers"]} == {
        "hr-portal": 1, "mcp-server": 1, "legacy-crm": 1, "ledger": 2}
    [hand] = [e for e in doc["callers"] if e["app"] == "legacy-crm"]
    assert hand["links"][0]["policy_id"] == "pol-by-hand"


def test_who_calls_an_app_nobody_calls():
    r = run("who-calls", "hr-portal", "--stack", "dev", "--format", "json")
    assert r.exit_code == 0 and json.loads(r.output) == {"app": "hr-portal", "callers": []}


# -- explain --------------------------------------------------------------------------------------------------

def test_explain_a_chain_hop_by_hop():
    r = run("explain", "mcp-server", "ledger", "--stack", "dev")
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[0] == ("mcp-server can reach ledger in 2 hops (desired trust, stack dev): "
                        "mcp-server -> payroll-api -> ledger")
    assert lines[1] == ("  1. mcp-server -> payroll-api: mcp-server sends the user's token as Authorization: Bearer; "
                        "payroll-api admits it by policy 'Linked app token: mcp-server'")
    assert lines[3].startswith("  2. payroll-api -> ledger: payroll-api sends the user's token as Cf-Access-Token")


def test_explain_the_missing_link_exits_1():
    r = run("explain", "legacy-crm", "payroll-api", "--stack", "dev")
    assert r.exit_code == 1
    assert r.output.splitlines() == [
        "legacy-crm cannot reach payroll-api (desired trust, stack dev): no chain of links leads there.",
        "  legacy-crm's user identity reaches: docs-api",
        "  payroll-api is reached from: hr-portal, mcp-server",
        "  missing link: {from: legacy-crm, to: payroll-api} under linked-apps:links",
    ]


def test_explain_json_on_deployed_state_names_policy_ids_and_precedence(drifted):
    r = run("explain", "legacy-crm", "ledger", "--state", drifted, "--format", "json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["reachable"] is True and doc["path"] == ["legacy-crm", "payroll-api", "ledger"]
    first = doc["hops"][0]
    assert (first["policy_id"], first["header"], first["grants"]) == ("pol-by-hand", "Cf-Access-Token", True)
    assert first["precedence"] == 3  # after hr-portal's and mcp-server's policies


def test_explain_json_of_a_missing_link_that_cloudflare_would_refuse():
    r = run("explain", "docs-api", "mcp-server", "--stack", "dev", "--format", "json")
    assert r.exit_code == 1
    missing = json.loads(r.output)["missing"]
    assert [v["rule"] for v in missing["rules"]] == ["target-not-self-hosted"]
    assert missing["reverse_path"] == ["mcp-server", "docs-api"]


# -- bad input: exit 2, the culprit named ---------------------------------------------------------------------

@pytest.mark.parametrize("args, expected", [
    (["reach", "ledgr", "--stack", "dev"], "no app named 'ledgr' (by name, uid or domain); known apps: ledger"),
    (["who-calls", "payrol-api", "--stack", "dev"], "no app named 'payrol-api'"),
    (["explain", "hr-portal", "ledgr", "--stack", "dev"], "no app named 'ledgr'"),
    (["explain", "hr-portal", "hr-portal", "--stack", "dev"], "`hr-portal` is both ends"),
    (["reach", "ledger"], "give exactly one of --stack NAME, --config FILE (desired trust) or --state FILE"),
    (["reach", "ledger", "--stack", "dev", "--state", "x.json"], "give exactly one of --stack NAME"),
    (["reach", "ledger", "--stack", "nope"], "Pulumi.nope.yaml: no such file; stacks here: dev"),
    (["reach", "ledger", "--state", "/nonexistent/state.json"], "/nonexistent/state.json: cannot be read"),
])
def test_bad_input_exits_2_naming_the_culprit(args, expected):
    r = run(*args)
    assert r.exit_code == 2, r.output
    assert expected in r.stderr
    assert "Traceback" not in r.output


def test_a_config_whose_assertion_names_no_app_exits_2(tmp_path, _dev_config):
    values = copy.deepcopy(_dev_config)
    values["linked-apps:assertions"] = [{"to": "ledger", "only": ["payrol-api"]}]
    path = tmp_path / "Pulumi.bad.yaml"
    path.write_text(yaml.safe_dump({"config": values}))
    for command in (["reach", "ledger"], ["check"]):
        r = run(*command, "--config", path)
        assert r.exit_code == 2
        assert "linked-apps:assertions[0].only[0]: no app named 'payrol-api' under linked-apps:apps; did you mean " \
               "`payroll-api`?" in r.stderr


# -- check ----------------------------------------------------------------------------------------------------

def test_check_the_dev_stack_desired_and_deployed(state):
    r = run("check", "--stack", "dev")
    assert (r.exit_code, r.output) == (0, "ok: the rules and 5 assertions hold on desired trust, stack dev\n")
    r = run("check", "--stack", "dev", "--state", state)
    assert (r.exit_code, r.output) == (0, f"ok: the 5 assertions hold on deployed trust in {state}\n")


def test_check_against_drifted_state_exits_1_naming_assertion_apps_and_path(drifted):
    r = run("check", "--stack", "dev", "--against", drifted, "--format", "json")
    assert r.exit_code == 1
    doc = json.loads(r.output)
    assert (doc["against"], doc["state"], doc["assertions"]) == ("deployed", str(drifted), 5)
    messages = {v["message"].split(" (")[0]: v for v in doc["violations"]}
    assert set(messages) == {"assertion 'payroll callers'", "assertion 'CRM stays out of finance'"}
    crm = messages["assertion 'CRM stays out of finance'"]
    assert "legacy-crm -> payroll-api -> ledger" in crm["message"]
    assert crm["apps"] == ["legacy-crm", "payroll-api", "ledger"]


def test_check_state_from_before_an_app_existed(tmp_path, dev_outputs):
    before = copy.deepcopy(dev_outputs)
    del before["apps"]["ledger"]
    before["links"] = [l for l in before["links"] if l["to"] != "ledger"]
    path = tmp_path / "before.json"
    path.write_text(json.dumps(before))
    r = run("check", "--stack", "dev", "--state", path)
    assert r.exit_code == 1
    assert "assertion 'HR approvals reach the ledger'" in r.output and "ledger is not in this trust graph" in r.output
    assert "note: not in the deployed state, so linked to nothing there: ledger" in r.output


def test_check_reports_rules_and_assertions_of_a_desired_config(tmp_path, _dev_config):
    values = copy.deepcopy(_dev_config)
    values["linked-apps:links"] += [{"from": "legacy-crm", "to": "payroll-api"}, {"from": "hr-portal", "to": "mcp-server"}]
    path = tmp_path / "Pulumi.pr.yaml"
    path.write_text(yaml.safe_dump({"config": values}))
    r = run("check", "--config", path, "--format", "json")
    assert r.exit_code == 1
    rules = [v["rule"] for v in json.loads(r.output)["violations"]]
    assert rules == ["target-not-self-hosted", "assertion", "assertion"]


def test_diff_reports_assertions_on_the_desired_side(tmp_path, _dev_config, state):
    values = copy.deepcopy(_dev_config)
    values["linked-apps:links"].append({"from": "legacy-crm", "to": "payroll-api"})
    path = tmp_path / "Pulumi.pr.yaml"
    path.write_text(yaml.safe_dump({"config": values}))
    doc = json.loads(run("diff", "--config", path, "--against", state, "--format", "json").output)
    assert doc["added"] == [{"from": "legacy-crm", "to": "payroll-api"}]
    assert [v["message"].split(" {")[0] for v in doc["violations"]] == [
        "assertion 'payroll callers' (linked-apps:assertions[0])",
        "assertion 'CRM stays out of finance' (linked-apps:assertions[2])"]


# -- startup --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("args", [
    ["reach", "hr-portal", "--stack", "dev"],
    ["who-calls", "ledger", "--stack", "dev", "--format", "json"],
    ["explain", "hr-portal", "ledger", "--stack", "dev"],
    ["check", "--stack", "dev"],
])
def test_questions_never_import_pulumi(args):
    code, loaded = loaded_by(*args)
    assert code == 0
    assert not loaded & {"pulumi", "pulumi_cloudflare"}
