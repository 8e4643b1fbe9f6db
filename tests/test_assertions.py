"""Trust assertions: the config contract, each kind holding and failing on desired and on deployed trust."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from linked_apps.errors import UnknownAppError
from linked_apps.model.assertions import RULE, check_assertions
from linked_apps.model.graph import App, Link, TrustGraph
from linked_apps.model.assertions import (
    AssertionSpec,
    LinkAssertion,
    NeverReachesAssertion,
    OnlyCallersAssertion,
    ReachesAssertion,
)
from linked_apps.model.topology import Topology, topology_from_config
from linked_apps.state import graph_from_outputs
from tests._project import plan

from .conftest import config, link, problems, self_hosted

# The dev stack's links: hr-portal -> payroll-api, mcp-server -> docs-api, mcp-server -> payroll-api,
# legacy-crm -> docs-api, payroll-api -> ledger.


def with_assertions(dev: dict[str, Any], *assertions: dict[str, Any]) -> dict[str, Any]:
    values = copy.deepcopy(dev)
    values["linked-apps:assertions"] = list(assertions)
    return values



# -- the contract -------------------------------------------------------------------------------------------

def test_dev_stack_carries_assertions_that_hold(dev_config):
    topo = topology_from_config(dev_config)
    kinds = {type(a) for a in topo.assertions}
    assert kinds == {LinkAssertion, OnlyCallersAssertion, ReachesAssertion, NeverReachesAssertion}
    assert topo.violations() == []


def test_each_kind_parses_from_its_own_key(dev_config):
    topo = topology_from_config(with_assertions(
        dev_config,
        {"from": "hr-portal", "to": "payroll-api", "expect": "allow", "name": "hr pays"},
        {"to": "ledger", "only": []},
        {"from": "hr-portal", "reaches": ["ledger"]},
        {"from": "legacy-crm", "never_reaches": ["ledger"], "description": "CRM is not finance"},
    ))
    a, b, c, d = topo.assertions
    assert isinstance(a, LinkAssertion)
    assert (a.source, a.target, a.expect, a.name) == ("hr-portal", "payroll-api", "allow", "hr pays")
    assert isinstance(b, OnlyCallersAssertion) and b.only == []
    assert isinstance(c, ReachesAssertion) and c.reaches == ["ledger"]
    assert isinstance(d, NeverReachesAssertion) and d.description == "CRM is not finance"
    assert d.summary() == "{from: legacy-crm, never_reaches: [ledger]}"


@pytest.mark.parametrize("assertion, expected", [
    ({"to": "payrol-api", "only": ["hr-portal"]},
     "linked-apps:assertions[0].to: no app named 'payrol-api' under linked-apps:apps; did you mean `payroll-api`?"),
    ({"to": "payroll-api", "only": ["hr-portal", "hr-portl"]},
     "linked-apps:assertions[0].only[1]: no app named 'hr-portl' under linked-apps:apps; did you mean `hr-portal`?"),
    ({"from": "crm", "never_reaches": ["ledger"]}, "linked-apps:assertions[0].from: no app named 'crm'"),
    ({"from": "legacy-crm", "never_reaches": ["ledger", "vault"]},
     "linked-apps:assertions[0].never_reaches[1]: no app named 'vault' under linked-apps:apps; declare it"),
    ({"from": "hr-portal", "to": "payroll-api"}, "linked-apps:assertions[0]: cannot tell what assertion this is"),
    ({"from": "hr-portal", "to": "payroll-api", "expct": "deny"},
     "linked-apps:assertions[0]: cannot tell what assertion this is"),
    ({"to": "ledger", "only": ["payroll-api"], "reaches": ["ledger"]}, "it has `only` and `reaches`: write one"),
    ({"from": "hr-portal", "to": "payroll-api", "expect": "maybe"}, "linked-apps:assertions[0].expect: 'maybe' is not one of allow, deny"),
    ({"from": "hr-portal", "to": "hr-portal", "expect": "deny"},
     "linked-apps:assertions[0]: `from` and `to` are the same app"),
    ({"from": "hr-portal", "reaches": ["hr-portal"]},
     "linked-apps:assertions[0]: `reaches` lists `hr-portal`, the app the assertion starts from"),
    ({"from": "hr-portal", "reaches": []}, "linked-apps:assertions[0].reaches: List should have at least 1 item"),
    ({"to": "ledger", "only": ["payroll-api"], "from": "hr-portal"},
     "linked-apps:assertions[0].from: unknown key; known keys: description, name, only, to"),
    ({"to": "ledger", "only": ["payroll-api"], "nmae": "x"},
     "linked-apps:assertions[0].nmae: unknown key; did you mean `name`?"),
    ({"only": ["payroll-api"]}, "linked-apps:assertions[0].to: required key is missing"),
])
def test_assertion_errors_name_the_key_path(dev_config, assertion, expected):
    found = problems(with_assertions(dev_config, assertion))
    assert any(expected in p for p in found), found


def test_a_misspelt_kind_key_gets_a_hint(dev_config):
    found = problems(with_assertions(dev_config, {"from": "hr-portal", "to": "payroll-api", "expct": "deny"}))
    assert found == ["linked-apps:assertions[0]: cannot tell what assertion this is: give exactly one of "
                     "`expect: allow|deny` (with `from` and `to`), `only: [..]` (with `to`), `reaches: [..]` or "
                     "`never_reaches: [..]` (with `from`); `expct`: did you mean `expect`?"]


def test_every_unknown_app_is_reported_at_once(dev_config):
    found = problems(with_assertions(dev_config, {"to": "ledger", "only": ["payroll"]},
                                     {"from": "mcp", "never_reaches": ["ledgr"]}))
    assert [p.split(":")[1] for p in found] == ["assertions[0].only[0]", "assertions[1].from",
                                                 "assertions[1].never_reaches[0]"]


def test_assertions_key_typo_is_a_top_level_hint(dev_config):
    values = copy.deepcopy(dev_config)
    values["linked-apps:asertions"] = []
    assert "linked-apps:asertions: unknown key; did you mean `linked-apps:assertions`?" in problems(values)


# -- each kind, holding and failing, on desired and deployed trust -------------------------------------------

CASES = [
    # (assertion, holds, fragments the failure message must carry)
    ({"from": "hr-portal", "to": "payroll-api", "expect": "allow"}, True, []),
    ({"from": "legacy-crm", "to": "payroll-api", "expect": "allow"}, False,
     ["there is no link legacy-crm -> payroll-api", "no policy on payroll-api admits a token issued for legacy-crm"]),
    ({"from": "mcp-server", "to": "ledger", "expect": "deny"}, True, []),
    ({"from": "hr-portal", "to": "payroll-api", "expect": "deny"}, False,
     ["the link hr-portal -> payroll-api exists", "policy 'Linked app token: hr-portal'", "remove it"]),
    ({"to": "payroll-api", "only": ["hr-portal", "mcp-server"]}, True, []),
    ({"to": "ledger", "only": []}, False, ["ledger has callers outside the list: payroll-api -> ledger"]),
    ({"to": "payroll-api", "only": ["hr-portal"]}, False,
     ["payroll-api has callers outside the list: mcp-server -> payroll-api", "add mcp-server to `only`"]),
    ({"from": "hr-portal", "reaches": ["payroll-api", "ledger"]}, True, []),
    ({"from": "legacy-crm", "reaches": ["docs-api", "ledger"]}, False,
     ["no chain of links carries legacy-crm's user identity to ledger (it reaches docs-api)"]),
    ({"from": "ledger", "reaches": ["hr-portal"]}, False, ["to hr-portal (it reaches no app)"]),
    ({"from": "legacy-crm", "never_reaches": ["payroll-api", "ledger"]}, True, []),
    ({"from": "mcp-server", "never_reaches": ["hr-portal", "ledger"]}, False,
     ["mcp-server reaches ledger through mcp-server -> payroll-api -> ledger", "remove a link on each path"]),
]


def _check(side: str, values: dict[str, Any], outputs: dict[str, Any]):
    topo = topology_from_config(values)
    if side == "desired":
        return topo.violations()
    return topo.assertion_violations(graph_from_outputs(outputs))


@pytest.mark.parametrize("side", ["desired", "deployed"])
@pytest.mark.parametrize("assertion, holds, fragments", CASES, ids=lambda v: str(v) if isinstance(v, dict) else "")
def test_each_kind_holds_or_fails(side, assertion, holds, fragments, dev_config, dev_outputs):
    found = _check(side, with_assertions(dev_config, assertion), dev_outputs)
    if holds:
        assert found == []
        return
    assert len(found) == 1, found
    v = found[0]
    assert v.rule == RULE
    assert v.message.startswith("assertion linked-apps:assertions[0] {")
    for fragment in fragments:
        assert fragment in v.message, v.message
    named = {assertion.get("from"), assertion.get("to")} - {None}
    assert named <= set(v.apps)


def test_the_message_names_the_assertion_and_why(dev_config):
    values = with_assertions(dev_config, {"from": "legacy-crm", "to": "docs-api", "expect": "allow"},
                             {"name": "mcp stays out of finance", "description": "tools must not post entries",
                              "from": "mcp-server", "never_reaches": ["ledger"]})
    [v] = topology_from_config(values).violations()
    assert v.message.startswith("assertion 'mcp stays out of finance' (linked-apps:assertions[1]) "
                                "{from: mcp-server, never_reaches: [ledger]} fails: ")
    assert v.message.endswith("(why it matters: tools must not post entries)")
    assert v.apps == ("mcp-server", "ledger")


def test_every_offending_link_and_path_is_named(dev_config):
    values = copy.deepcopy(dev_config)
    values["linked-apps:links"].append({"from": "legacy-crm", "to": "ledger"})
    values["linked-apps:assertions"] = [{"to": "ledger", "only": []},
                                        {"from": "mcp-server", "never_reaches": ["docs-api", "ledger"]}]
    only, never = topology_from_config(values).violations()
    assert "payroll-api -> ledger (policy 'Linked app token: payroll-api'), legacy-crm -> ledger" in only.message
    assert only.apps == ("ledger", "payroll-api", "legacy-crm")
    assert ("mcp-server reaches docs-api through mcp-server -> docs-api; "
            "mcp-server reaches ledger through mcp-server -> payroll-api -> ledger") in never.message
    assert never.apps == ("mcp-server", "docs-api", "ledger")


def test_assertions_are_reported_with_rule_violations_all_at_once():
    values = config({"a": self_hosted("a.acme.com"), "b": self_hosted("b.acme.com")},
                    [link("a", "b"), link("a", "a")],
                    assertions=[{"from": "a", "to": "b", "expect": "deny"}])
    rules = [v.rule for v in topology_from_config(values).violations()]
    assert rules == ["self-link", "assertion"]


def test_a_broken_assertion_fails_the_real_program_before_any_resource(dev_config):
    """`plan` runs __main__.py: program.check raises RuleViolationError, which a real preview turns into RunError."""
    result = plan(with_assertions(dev_config, {"from": "hr-portal", "never_reaches": ["ledger"]}))
    assert [v.rule for v in result.violations] == [RULE]
    assert "hr-portal -> payroll-api -> ledger" in result.violations[0].message
    assert result.resources == []


def test_an_assertion_on_an_undeclared_app_is_an_error_even_without_the_parser(dev_config):
    topo = topology_from_config(dev_config)
    raw = topo.model_dump(by_alias=True)
    raw["assertions"] = [{"to": "vault", "only": []}]
    built = Topology.model_validate(raw)
    with pytest.raises(UnknownAppError, match=r"linked-apps:assertions\[0\]\.to: no app named 'vault' declared"):
        built.violations()


# -- deployed trust -----------------------------------------------------------------------------------------

def test_a_link_added_by_hand_breaks_assertions_only_on_deployed_trust(dev_config, dev_outputs):
    drifted = copy.deepcopy(dev_outputs)
    drifted["links"].append({"from": "legacy-crm", "to": "payroll-api", "policy_id": "policy-by-hand"})
    topo = topology_from_config(dev_config)
    assert topo.violations() == []
    assert topo.assertion_violations(graph_from_outputs(dev_outputs)) == []
    found = topo.assertion_violations(graph_from_outputs(drifted))
    assert [v.message.split(" {")[0] for v in found] == [
        "assertion 'payroll callers' (linked-apps:assertions[0])",
        "assertion 'CRM stays out of finance' (linked-apps:assertions[2])",
    ]
    assert "legacy-crm -> payroll-api (policy 'Linked app token: legacy-crm', id policy-by-hand)" in found[0].message
    assert "legacy-crm reaches ledger through legacy-crm -> payroll-api -> ledger" in found[1].message


def test_a_deployed_cycle_is_followed_without_looping(dev_config, dev_outputs):
    cyclic = copy.deepcopy(dev_outputs)
    cyclic["links"].append({"from": "ledger", "to": "hr-portal", "policy_id": "p-cycle"})
    values = with_assertions(dev_config, {"from": "ledger", "never_reaches": ["payroll-api"]},
                             {"from": "payroll-api", "reaches": ["hr-portal"]})
    [v] = topology_from_config(values).assertion_violations(graph_from_outputs(cyclic))
    assert "ledger reaches payroll-api through ledger -> hr-portal -> payroll-api" in v.message


@pytest.mark.parametrize("assertion, holds", [
    ({"to": "ledger", "only": []}, True),
    ({"from": "mcp-server", "never_reaches": ["ledger"]}, True),
    ({"from": "mcp-server", "to": "ledger", "expect": "deny"}, True),
    ({"from": "payroll-api", "to": "ledger", "expect": "allow"}, False),
    ({"from": "hr-portal", "reaches": ["ledger"]}, False),
])
def test_a_declared_app_not_deployed_yet_has_no_links(dev_config, dev_outputs, assertion, holds):
    before = copy.deepcopy(dev_outputs)
    del before["apps"]["ledger"]
    before["links"] = [l for l in before["links"] if l["to"] != "ledger"]
    found = topology_from_config(with_assertions(dev_config, assertion)).assertion_violations(graph_from_outputs(before))
    assert (found == []) is holds
    if not holds:
        assert "ledger is not in this trust graph" in found[0].message


def test_a_deployed_rule_naming_an_unknown_uid_breaks_only_fail_closed(dev_config):
    """A policy on payroll-api trusting a uid of no app in the state: some caller no `only` list can name."""
    from linked_apps.state import APP_TYPE, POLICY_TYPE, graph_from_resources

    stranger = "99999999-9999-4999-8999-999999999999"
    deployed = graph_from_resources([
        {"type": APP_TYPE, "id": "11111111-1111-4111-8111-111111111111",
         "props": {"name": "payroll-api", "type": "self_hosted", "policies": [{"id": "pol-x", "precedence": 1}]}},
        {"type": POLICY_TYPE, "id": "pol-x",
         "props": {"name": "who is this", "decision": "non_identity",
                   "includes": [{"linkedAppToken": {"appUid": stranger}}]}},
    ])
    topo = topology_from_config(with_assertions(dev_config, {"to": "payroll-api", "only": ["hr-portal"]}))
    [v] = topo.assertion_violations(deployed)
    assert f"payroll-api has callers outside the list: an app with uid {stranger}, which is not in this trust graph; " \
           "remove those links" in v.message


@settings(max_examples=100, deadline=None)
@given(st.sets(st.tuples(st.integers(0, 5), st.integers(0, 5)).filter(lambda e: e[0] != e[1])),
       st.integers(0, 5), st.integers(0, 5))
def test_complementary_assertions_never_both_hold_or_both_fail(raw, a, b):
    """reaches/never_reaches and allow/deny are complements on every graph, cycles included."""
    apps = [f"a{i}" for i in range(6)]
    g = TrustGraph([App(x, "self_hosted") for x in apps], [Link(f"a{x}", f"a{y}") for x, y in sorted(raw)])
    src, dst = f"a{a}", f"a{b}"
    pairs = [({"from": src, "to": dst, "expect": "allow"}, {"from": src, "to": dst, "expect": "deny"})] if a != b else []
    if a != b:
        pairs.append(({"from": src, "reaches": [dst]}, {"from": src, "never_reaches": [dst]}))
    pairs.append(({"to": dst, "only": apps}, {"to": dst, "only": []}))
    for yes, no in pairs:
        holds = [not check_assertions([TypeAdapter(AssertionSpec).validate_python(x)], g, "t") for x in (yes, no)]
        if yes.get("only") is not None:
            assert holds[0] and holds[1] == (not g.links_into(dst))
        else:
            assert holds[0] != holds[1], (yes, no, sorted(raw))
