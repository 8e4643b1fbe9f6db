"""The stack config contract: what parses, and errors that name the key path and the fix."""

from __future__ import annotations

import pytest

from linked_apps.model.topology import (
    ExistingAppSpec,
    LookupAppSpec,
    SaasAppSpec,
    SelfHostedAppSpec,
    StackAppSpec,
    topology_from_config,
)

from .conftest import EXISTING_UID, config, link, problems, saas, self_hosted


def test_dev_stack_parses_every_kind_of_app(dev_config):
    topo = topology_from_config(dev_config)
    assert topo.team_domain == "acme.cloudflareaccess.com"
    assert isinstance(topo.apps["hr-portal"], SelfHostedAppSpec)
    assert isinstance(topo.apps["mcp-server"], SaasAppSpec)
    assert isinstance(topo.apps["legacy-crm"], ExistingAppSpec)
    assert topo.is_managed("hr-portal") and not topo.is_managed("legacy-crm")
    assert [(l.source, l.target) for l in topo.links][:2] == [("hr-portal", "payroll-api"), ("mcp-server", "docs-api")]


def test_structured_values_arrive_as_json_strings_from_the_engine():
    import json

    values = {k: json.dumps(v) if not isinstance(v, str) else v
              for k, v in config({"a": self_hosted("a.acme.com")}, []).items()}
    assert list(topology_from_config(values).apps) == ["a"]


def test_lookup_and_stack_apps():
    topo = topology_from_config(config({
        "found": {"type": "self_hosted", "lookup": "Found App"},
        "mcp": {"type": "saas", "stack": "acme/platform/prod", "app": "mcp-server"},
        "raw": {"type": "saas", "stack": "acme/platform/prod", "output": "mcpUid"},
    }))
    assert isinstance(topo.apps["found"], LookupAppSpec)
    assert isinstance(topo.apps["mcp"], StackAppSpec) and topo.apps["mcp"].app == "mcp-server"
    assert topo.apps["raw"].output == "mcpUid"


@pytest.mark.parametrize("apps, expected", [
    ({"pay": {"type": "self_hosted"}}, "linked-apps:apps.pay: a self_hosted app needs `domain`"),
    ({"pay": {"type": "self_hosted", "domian": "p.acme.com"}}, "linked-apps:apps.pay.domian: unknown key; did you mean `domain`?"),
    ({"mcp": {"type": "saas"}}, "linked-apps:apps.mcp.redirectUris: required key is missing"),
    ({"mcp": saas("ftp://x")}, "linked-apps:apps.mcp.redirectUris: 'ftp://x' is not an absolute https:// redirect URI"),
    ({"ssh": {"type": "ssh"}}, "linked-apps:apps.ssh: cannot tell what app this is"),
    ({"old": {"type": "self_hosted", "uid": "a" * 64}}, "linked-apps:apps.old.uid: this is an AUD tag"),
    ({"old": {"type": "self_hosted", "uid": "not-a-uid"}}, "linked-apps:apps.old.uid: 'not-a-uid' is not an app uid"),
    ({"old": {"uid": EXISTING_UID}}, "linked-apps:apps.old.type: required key is missing"),
    ({"old": {"uid": EXISTING_UID, "type": "selfhosted"}}, "linked-apps:apps.old.type: 'selfhosted' is not one of self_hosted, saas,"),
    ({"old": {"type": "self_hosted", "uid": EXISTING_UID, "aud": "abc"}}, "linked-apps:apps.old.aud: 'abc' is not an AUD tag"),
    ({"m": {"type": "saas", "stack": "a/b/c"}}, "linked-apps:apps.m: give exactly one of `output`"),
    ({"p": self_hosted("p.acme.com", policyIds=["nope"])}, "linked-apps:apps.p.policyIds: 'nope' is not a policy id"),
])
def test_config_errors_name_the_key_path(apps, expected):
    found = problems(config(apps))
    assert any(p.startswith(expected) for p in found), found


def test_top_level_typos_and_bad_team_domain_are_all_reported_at_once():
    values = config({"a": self_hosted("a.acme.com")}, [], lnks=[])
    values["linked-apps:teamDomain"] = "https://acme.cloudflareaccess.com/"
    del values["linked-apps:accountId"]
    found = problems(values)
    assert "linked-apps:lnks: unknown key; did you mean `linked-apps:links`?" in found
    assert any(p.startswith("linked-apps:teamDomain: 'https://acme.cloudflareaccess.com/' is not a team domain") for p in found)
    assert "linked-apps:accountId: required key is missing" in found
    assert len(found) == 3


def test_link_errors_name_the_list_index():
    found = problems(config({"a": self_hosted("a.acme.com")}, [link("a", "b"), {"from": "a", "too": "b"}]))
    assert "linked-apps:links[1].to: required key is missing" in found
    assert any(p.startswith("linked-apps:links[1].too: unknown key; did you mean `to`?") for p in found)


def test_other_namespaces_are_ignored():
    values = config({"a": self_hosted("a.acme.com")})
    values["cloudflare:apiToken"] = {"secure": "v1:abc"}
    assert list(topology_from_config(values).apps) == ["a"]


def test_desired_trust_graph_knows_types_and_policy_names(dev_config):
    graph = topology_from_config(dev_config).trust_graph()
    assert ("mcp-server", "payroll-api") in graph.edges()
    assert graph.apps["legacy-crm"].uid == "7c9e6679-7425-40de-944b-e07fc1f90ae7"
    assert {l.policy_name for l in graph.links_into("payroll-api")} == {
        "Linked app token: hr-portal", "Linked app token: mcp-server"}
