"""The CrossGuard pack: each policy against a violating and a clean stack, called as PULUMI.md describes.

Clean stacks are the real dev stack (the program's resources after `pulumi up`, as in a stack export); violating
stacks are that stack with one thing changed. Preview stacks carry Pulumi's unknown sentinels.
"""

from __future__ import annotations

import copy
import runpy
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import (
    UNKNOWN_ARRAY_VALUE,
    UNKNOWN_OBJECT_VALUE,
    UNKNOWN_STRING_VALUE,
    UnknownValueError,
    unknown_checking_proxy,
)

from linked_apps.state import APP_TYPE, POLICY_TYPE
from policy import policies as pack
from policy.policies import POLICIES
from tests._review_export import dev_config, export_document, planned

ROOT = Path(__file__).resolve().parent.parent
UNKNOWN = UNKNOWN_STRING_VALUE
OTHER_UID = "0b6c7a2e-9f1d-4c3b-8e5a-6d7f8a9b0c1d"


def _opts() -> PolicyResourceOptions:
    return PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [], None)


@pytest.fixture(scope="module")
def dev_rows() -> list[dict[str, Any]]:
    """The dev stack's resources as engine state: type, urn, name, outputs (props) — fresh copy per use."""
    doc = export_document(planned(dev_config(), "dev"))
    return [{"type": r["type"], "urn": r["urn"], "name": r["urn"].rsplit("::", 1)[-1], "props": r["outputs"]}
            for r in doc["deployment"]["resources"]]


@pytest.fixture
def rows(dev_rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return copy.deepcopy(dev_rows)


def find(rows: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(r for r in rows if r["name"] == name)


def stack_args(rows: list[dict[str, Any]], deps: dict[str, dict[str, list[str]]] | None = None) -> StackValidationArgs:
    resources = {r["urn"]: PolicyResource(r["type"], unknown_checking_proxy(r["props"]), r["urn"], r["name"], _opts(),
                                          None, None, [], {}) for r in rows}
    for urn, by_prop in (deps or {}).items():
        for prop, names in by_prop.items():
            resources[urn].property_dependencies[prop] = [resources[find(rows, n)["urn"]] for n in names]
    return StackValidationArgs(list(resources.values()))


def resource_args(row: dict[str, Any]) -> ResourceValidationArgs:
    props = {k: v for k, v in row["props"].items() if k != "id"}  # resource policies see inputs: no id
    return ResourceValidationArgs(row["type"], unknown_checking_proxy(props), row["urn"], row["name"], _opts(), None)


def run(policy: Any, args: Any) -> list[tuple[str, str | None]]:
    reports: list[tuple[str, str | None]] = []
    assert policy.validate(args, lambda message, urn=None: reports.append((message, urn))) is None
    return reports


def run_resources(policy: ResourceValidationPolicy, rows: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
    return [r for row in rows for r in run(policy, resource_args(row))]


def linked_rule(uid: str) -> dict[str, Any]:
    return {"linkedAppToken": {"appUid": uid}}


# -- the pack ---------------------------------------------------------------------------------------------------
def test_pack_lists_each_policy_once_with_its_enforcement() -> None:
    levels = {p.name: (type(p), p.enforcement_level) for p in POLICIES}
    assert levels == {
        "linked-app-rule-self-hosted-only": (ResourceValidationPolicy, EnforcementLevel.MANDATORY),
        "linked-app-policy-self-hosted-only": (StackValidationPolicy, EnforcementLevel.MANDATORY),
        "linked-app-rule-non-identity-only": (ResourceValidationPolicy, EnforcementLevel.MANDATORY),
        "linked-app-policy-attached": (StackValidationPolicy, EnforcementLevel.ADVISORY),
        "linked-app-uid-known": (StackValidationPolicy, EnforcementLevel.ADVISORY),
        "linked-app-value-unknown": (ResourceValidationPolicy, EnforcementLevel.ADVISORY),
    }


def test_main_only_builds_the_pack(monkeypatch: pytest.MonkeyPatch) -> None:
    import pulumi_policy

    built: list[tuple[str, list[Any]]] = []
    # The real PolicyPack serves gRPC forever; record what __main__ hands it instead.
    monkeypatch.setattr(pulumi_policy, "PolicyPack", lambda name, policies, **_: built.append((name, policies)))
    # As the engine does: run the directory, which puts it first on sys.path so `from policies import` works.
    runpy.run_path(str(ROOT / "policy"), run_name="__main__")
    assert len(built) == 1
    name, policies = built[0]
    assert name == "linked-apps"
    assert [p.name for p in policies] == [p.name for p in POLICIES]


def test_pack_project_file_points_at_the_project_virtualenv() -> None:
    import yaml

    doc = yaml.safe_load((ROOT / "policy" / "PulumiPolicy.yaml").read_text())
    assert doc["runtime"]["name"] == "python"
    venv = ROOT / "policy" / doc["runtime"]["options"]["virtualenv"]
    assert venv.resolve() == (ROOT / ".venv").resolve()


# -- clean: the real dev stack ------------------------------------------------------------------------------------
@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: p.name)
def test_dev_stack_is_clean(policy: Any, rows: list[dict[str, Any]]) -> None:
    if isinstance(policy, StackValidationPolicy):
        assert run(policy, stack_args(rows)) == []
    else:
        assert run_resources(policy, rows) == []


# -- mandatory: linked-app rule only on self-hosted apps, inline -------------------------------------------------
def test_inline_linked_rule_on_saas_app_is_reported(rows: list[dict[str, Any]]) -> None:
    mcp, hr = find(rows, "mcp-server-app"), find(rows, "hr-portal-app")
    mcp["props"]["policies"].append({"precedence": 2, "decision": "non_identity",
                                     "includes": [linked_rule(hr["props"]["id"])], "name": "from hr"})
    reports = run_resources(pack.LINKED_RULE_SELF_HOSTED_ONLY, rows)
    assert len(reports) == 1
    assert "`mcp-server` is a saas app" in reports[0][0] and "`from hr`" in reports[0][0]


def test_same_inline_rule_on_self_hosted_app_is_clean(rows: list[dict[str, Any]]) -> None:
    docs, hr = find(rows, "docs-api-app"), find(rows, "hr-portal-app")
    docs["props"]["policies"].append({"precedence": 4, "decision": "non_identity",
                                      "includes": [linked_rule(hr["props"]["id"])], "name": "from hr"})
    assert run_resources(pack.LINKED_RULE_SELF_HOSTED_ONLY, rows) == []


# -- mandatory: reusable linked-app policy attached only to self-hosted apps (stack) -----------------------------
def test_reusable_linked_policy_attached_to_saas_app_is_reported(rows: list[dict[str, Any]]) -> None:
    mcp, hr_trust = find(rows, "mcp-server-app"), find(rows, "hr-portal-trust-policy")
    mcp["props"]["policies"].append({"id": hr_trust["props"]["id"], "precedence": 2})
    reports = run(pack.LINKED_POLICY_SELF_HOSTED_ONLY, stack_args(rows))
    assert reports == [(reports[0][0], mcp["urn"])]
    assert "`mcp-server` is a saas app" in reports[0][0] and "`Linked app token: hr-portal`" in reports[0][0]


def test_reusable_policy_without_linked_rule_on_saas_app_is_clean(rows: list[dict[str, Any]]) -> None:
    mcp, allow = find(rows, "mcp-server-app"), find(rows, "hr-portal-allow")
    mcp["props"]["policies"].append({"id": allow["props"]["id"], "precedence": 2})
    assert run(pack.LINKED_POLICY_SELF_HOSTED_ONLY, stack_args(rows)) == []


# -- mandatory: linked-app rules only in non_identity policies ---------------------------------------------------
def test_linked_rule_in_allow_policy_is_reported(rows: list[dict[str, Any]]) -> None:
    find(rows, "hr-portal-trust-policy")["props"]["decision"] = "allow"
    reports = run_resources(pack.LINKED_RULE_NON_IDENTITY_ONLY, rows)
    assert len(reports) == 1
    assert "`Linked app token: hr-portal`" in reports[0][0] and "decision `allow`" in reports[0][0]


def test_linked_rule_in_inline_bypass_policy_is_reported(rows: list[dict[str, Any]]) -> None:
    docs, hr = find(rows, "docs-api-app"), find(rows, "hr-portal-app")
    docs["props"]["policies"].append({"precedence": 4, "decision": "bypass", "includes": [linked_rule(hr["props"]["id"])]})
    reports = run_resources(pack.LINKED_RULE_NON_IDENTITY_ONLY, rows)
    assert len(reports) == 1 and "application `docs-api`" in reports[0][0] and "`bypass`" in reports[0][0]


def test_allow_policy_without_linked_rule_is_clean(rows: list[dict[str, Any]]) -> None:
    allow = find(rows, "docs-api-allow")
    assert allow["props"]["decision"] == "allow"
    assert run(pack.LINKED_RULE_NON_IDENTITY_ONLY, resource_args(allow)) == []


# -- advisory: a linked-app policy attached to no app ------------------------------------------------------------
def test_unattached_linked_policy_is_reported(rows: list[dict[str, Any]]) -> None:
    ledger, trust = find(rows, "ledger-app"), find(rows, "payroll-api-trust-policy")
    ledger["props"]["policies"] = [p for p in ledger["props"]["policies"] if p["id"] != trust["props"]["id"]]
    reports = run(pack.LINKED_POLICY_ATTACHED, stack_args(rows))
    assert reports == [(reports[0][0], trust["urn"])]
    assert "`Linked app token: payroll-api`" in reports[0][0]


def test_trust_policy_of_a_link_closing_a_cycle_is_not_reported_before_the_next_up() -> None:
    cyclic = dev_config()
    cyclic["linked-apps:links"] = [*cyclic["linked-apps:links"], {"from": "ledger", "to": "payroll-api"}]
    del cyclic["linked-apps:assertions"]  # one of them forbids ledger -> payroll-api
    doc = export_document(planned(cyclic, "dev-with-a-cycle"))
    rows = [{"type": r["type"], "urn": r["urn"], "name": r["urn"].rsplit("::", 1)[-1], "props": r["outputs"]}
            for r in doc["deployment"]["resources"]]
    trust = find(rows, "ledger-trust-policy")  # created by the first up, attached by the second
    assert not any(p.get("id") == trust["props"]["id"] for r in rows if r["type"] == APP_TYPE
                   for p in r["props"].get("policies") or [])
    assert run(pack.LINKED_POLICY_ATTACHED, stack_args(rows)) == []
    # Without the stack's word that the link is deferred, the same state is reported.
    stack = next(r for r in rows if r["type"] == "pulumi:pulumi:Stack")
    stack["props"]["deferred"] = []
    assert [urn for _, urn in run(pack.LINKED_POLICY_ATTACHED, stack_args(rows))] == [trust["urn"]]


def test_unattached_policy_without_linked_rule_is_not_this_policys_business(rows: list[dict[str, Any]]) -> None:
    hr = find(rows, "hr-portal-app")
    hr["props"]["policies"] = []
    assert run(pack.LINKED_POLICY_ATTACHED, stack_args(rows)) == []


# -- advisory: a linked uid that is no application known to the stack ------------------------------------------
def test_linked_uid_of_no_known_app_is_reported(rows: list[dict[str, Any]]) -> None:
    find(rows, "hr-portal-trust-policy")["props"]["includes"] = [linked_rule(OTHER_UID)]
    reports = run(pack.LINKED_UID_KNOWN, stack_args(rows))
    assert reports == [(reports[0][0], find(rows, "payroll-api-app")["urn"])]
    assert OTHER_UID in reports[0][0] and "`payroll-api`" in reports[0][0]


def test_existing_app_uid_is_known_through_the_stack_outputs(rows: list[dict[str, Any]]) -> None:
    # legacy-crm is no resource of the stack; its uid is known only from the program's `apps` output.
    crm_trust = find(rows, "legacy-crm-trust-policy")
    assert crm_trust["props"]["includes"] == [linked_rule("7c9e6679-7425-40de-944b-e07fc1f90ae7")]
    assert run(pack.LINKED_UID_KNOWN, stack_args(rows)) == []
    without_outputs = [r for r in rows if r["type"] != "pulumi:pulumi:Stack"]  # a program that exports nothing
    reports = run(pack.LINKED_UID_KNOWN, stack_args(without_outputs))
    assert [urn for _, urn in reports] == [find(rows, "docs-api-app")["urn"]]


# -- values unknown during preview -------------------------------------------------------------------------------
def _preview(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The dev stack as a first preview sees it: no ids yet, so every id, uid and policy id is unknown."""
    for row in rows:
        props = row["props"]
        if row["type"] in (APP_TYPE, POLICY_TYPE):
            props["id"] = UNKNOWN
        if row["type"] == APP_TYPE:
            props["aud"] = UNKNOWN
            for entry in props.get("policies", []):
                entry["id"] = UNKNOWN
        for rule in props.get("includes", []):
            if "linkedAppToken" in rule:
                rule["linkedAppToken"]["appUid"] = UNKNOWN
        if row["type"] == "pulumi:pulumi:Stack":
            row["props"] = {"apps": UNKNOWN, "links": UNKNOWN, "team_domain": "acme.cloudflareaccess.com"}
    return rows


def test_unknown_values_are_what_the_engine_would_raise_on(rows: list[dict[str, Any]]) -> None:
    props = unknown_checking_proxy(find(_preview(rows), "payroll-api-trust-policy")["props"])
    with pytest.raises(UnknownValueError):
        props["includes"][0]["linkedAppToken"]["appUid"]


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: p.name)
def test_preview_with_unknown_values_never_crashes_nor_guesses(policy: Any, rows: list[dict[str, Any]]) -> None:
    preview = _preview(rows)
    if isinstance(policy, StackValidationPolicy):
        assert run(policy, stack_args(preview)) == []
    else:
        assert run_resources(policy, preview) == []


def test_preview_still_catches_a_linked_policy_attached_to_saas_through_dependencies(
        rows: list[dict[str, Any]]) -> None:
    preview = _preview(rows)
    mcp = find(preview, "mcp-server-app")
    mcp["props"]["policies"].append({"id": UNKNOWN, "precedence": 2})
    # The engine tells which resources an app's `policies` input depends on, even before their ids exist.
    deps = {mcp["urn"]: {"policies": ["mcp-server-allow", "hr-portal-trust-policy"]}}
    reports = run(pack.LINKED_POLICY_SELF_HOSTED_ONLY, stack_args(preview, deps))
    assert [urn for _, urn in reports] == [mcp["urn"]]


def test_preview_inline_rule_with_unknown_uid_on_saas_app_is_still_reported(rows: list[dict[str, Any]]) -> None:
    preview = _preview(rows)
    mcp = find(preview, "mcp-server-app")
    mcp["props"]["policies"].append({"precedence": 2, "decision": "non_identity", "includes": [linked_rule(UNKNOWN)]})
    assert len(run_resources(pack.LINKED_RULE_SELF_HOSTED_ONLY, preview)) == 1


def test_unknown_app_type_is_not_judged(rows: list[dict[str, Any]]) -> None:
    mcp = find(rows, "mcp-server-app")
    mcp["props"]["type"] = UNKNOWN
    mcp["props"]["policies"].append({"precedence": 2, "decision": "non_identity", "includes": [linked_rule(OTHER_UID)]})
    assert run(pack.LINKED_RULE_SELF_HOSTED_ONLY, resource_args(mcp)) == []


def test_unresolved_preview_attachments_silence_the_unattached_advisory(rows: list[dict[str, Any]]) -> None:
    preview = _preview(rows)  # no property dependencies given: which policy each app attaches is unknown
    assert run(pack.LINKED_POLICY_ATTACHED, stack_args(preview)) == []
    resolved = {find(preview, f"{n}-app")["urn"]: {"policies": deps} for n, deps in {
        "payroll-api": ["payroll-api-allow", "hr-portal-trust-policy", "mcp-server-trust-policy"],
        "docs-api": ["docs-api-allow", "legacy-crm-trust-policy", "mcp-server-trust-policy"],
        "ledger": [],  # no dependency explains ledger's two unknown policy ids
        "hr-portal": ["hr-portal-allow"], "mcp-server": ["mcp-server-allow"]}.items()}
    reports = run(pack.LINKED_POLICY_ATTACHED, stack_args(preview, resolved))
    assert reports == []  # ledger is still unresolved: payroll-api's policy may be one of its two

    ledger = find(preview, "ledger-app")  # now ledger lists only its external policy, by a known id
    ledger["props"]["policies"] = [ledger["props"]["policies"][0] | {"id": "5f0a3c2e-1b4d-4e6f-8a9b-0c1d2e3f4a5b"}]
    reports = run(pack.LINKED_POLICY_ATTACHED, stack_args(preview, resolved))
    assert [urn for _, urn in reports] == [find(preview, "payroll-api-trust-policy")["urn"]]


def test_wholly_unknown_policies_list_is_unresolved_unless_dependencies_explain_it(rows: list[dict[str, Any]]) -> None:
    preview = _preview(rows)
    for name in ("ledger-app", "payroll-api-app", "docs-api-app"):
        find(preview, name)["props"]["policies"] = pack.UNKNOWN_ARRAY_VALUE
    assert run(pack.LINKED_POLICY_ATTACHED, stack_args(preview)) == []  # cannot tell: silent
    deps = {find(preview, "payroll-api-app")["urn"]: {"policies": ["hr-portal-trust-policy", "mcp-server-trust-policy"]},
            find(preview, "docs-api-app")["urn"]: {"policies": ["legacy-crm-trust-policy", "mcp-server-trust-policy"]},
            find(preview, "ledger-app")["urn"]: {"policies": []},
            find(preview, "hr-portal-app")["urn"]: {"policies": ["hr-portal-allow"]},
            find(preview, "mcp-server-app")["urn"]: {"policies": ["mcp-server-allow"]}}
    reports = run(pack.LINKED_POLICY_ATTACHED, stack_args(preview, deps))
    assert [urn for _, urn in reports] == [find(preview, "payroll-api-trust-policy")["urn"]]


# -- garbage in, no crash out ---------------------------------------------------------------------------------
_VALUE = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=6) | st.just(UNKNOWN),
                      lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
                      max_leaves=12)
_PROP_KEYS = st.sampled_from(["id", "name", "type", "policies", "decision", "includes", "requires", "excludes"])
_ROW = st.builds(lambda i, typ, props: {"type": typ, "urn": f"urn:pulumi:dev::p::{typ}::r{i}", "name": f"r{i}",
                                        "props": props},
                 st.integers(0, 99), st.sampled_from([APP_TYPE, POLICY_TYPE]),
                 st.dictionaries(_PROP_KEYS, _VALUE | st.lists(st.dictionaries(_PROP_KEYS, _VALUE, max_size=3),
                                                               max_size=3), max_size=5))


@settings(max_examples=200, deadline=None)
@given(st.lists(_ROW, max_size=4, unique_by=lambda r: r["urn"]))
def test_no_policy_crashes_on_values_of_the_wrong_kind(rows: list[dict[str, Any]]) -> None:
    for policy in POLICIES:
        if isinstance(policy, StackValidationPolicy):
            run(policy, stack_args(rows))
        else:
            run_resources(policy, rows)


@pytest.mark.parametrize("props", [None, "text", [], 7, {"policies": None, "includes": "x"}],
                         ids=["None", "str", "list", "int", "wrong-kinds"])
def test_no_policy_raises_on_props_that_are_not_an_object(props: Any) -> None:
    for typ in (APP_TYPE, POLICY_TYPE):
        resource = ResourceValidationArgs(typ, props, f"urn:pulumi:dev::p::{typ}::r", "r", _opts(), None)
        stack = StackValidationArgs([PolicyResource(typ, props, f"urn:pulumi:dev::p::{typ}::r", "r", _opts(), None,
                                                    None, [], None)])  # no property dependencies either
        for policy in POLICIES:
            assert run(policy, stack if isinstance(policy, StackValidationPolicy) else resource) == []


# -- unknown values a rule needs: judged where possible, said where not ---------------------------------------------
def test_a_wholly_unknown_linked_rule_is_still_a_linked_rule(rows: list[dict[str, Any]]) -> None:
    policy = find(rows, "hr-portal-trust-policy")
    policy["props"]["decision"] = "allow"
    policy["props"]["includes"] = [{"linkedAppToken": UNKNOWN_OBJECT_VALUE}]
    assert len(run(pack.LINKED_RULE_NON_IDENTITY_ONLY, resource_args(policy))) == 1


def test_an_unknown_decision_over_a_linked_rule_is_advised(rows: list[dict[str, Any]]) -> None:
    policy = find(rows, "hr-portal-trust-policy")
    policy["props"]["decision"] = UNKNOWN
    assert run(pack.LINKED_RULE_NON_IDENTITY_ONLY, resource_args(policy)) == []  # cannot say it is wrong
    (report,) = run(pack.LINKED_VALUE_UNKNOWN, resource_args(policy))
    assert "`decision`" in report[0] and "hr-portal" in report[0]


def test_unknown_rules_under_a_decision_that_forbids_linked_rules_are_advised(rows: list[dict[str, Any]]) -> None:
    allow = find(rows, "hr-portal-allow")
    allow["props"]["includes"] = UNKNOWN_ARRAY_VALUE
    assert allow["props"]["decision"] != "non_identity"
    (report,) = run(pack.LINKED_VALUE_UNKNOWN, resource_args(allow))
    assert "`includes`" in report[0]
    trust = find(rows, "hr-portal-trust-policy")  # under non_identity an unseen rule breaks nothing
    trust["props"]["includes"] = UNKNOWN_ARRAY_VALUE
    assert run(pack.LINKED_VALUE_UNKNOWN, resource_args(trust)) == []


def test_an_unknown_app_type_with_an_inline_linked_rule_is_advised(rows: list[dict[str, Any]]) -> None:
    mcp = find(rows, "mcp-server-app")
    mcp["props"]["type"] = UNKNOWN
    mcp["props"]["policies"].append({"precedence": 2, "decision": UNKNOWN, "includes": [linked_rule(OTHER_UID)]})
    (report,) = run(pack.LINKED_VALUE_UNKNOWN, resource_args(mcp))
    assert "`type`" in report[0] and "`policies[1].decision`" in report[0]
