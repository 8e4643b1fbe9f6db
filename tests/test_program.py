"""The real program (`__main__.py`) under the SDK's mock runtime: exact resources, uid wiring, rules."""

from __future__ import annotations

import pytest

from linked_apps.errors import ConfigError
from linked_apps.review.plan import fake_uid
from tests._project import plan

from .conftest import ACCOUNT, EXISTING_UID, config, link, saas, self_hosted

APP = "cloudflare:index/zeroTrustAccessApplication:ZeroTrustAccessApplication"
POLICY = "cloudflare:index/zeroTrustAccessPolicy:ZeroTrustAccessPolicy"


def by_name(p):
    return {r["name"]: r for r in p.resources}


def test_self_hosted_to_self_hosted_exact_resources():
    p = plan(config({"app-a": self_hosted("a.acme.com"), "app-b": self_hosted("b.acme.com")}, [link("app-a", "app-b")]))
    assert p.violations == []
    res = by_name(p)
    assert sorted(res) == ["app-a-app", "app-a-trust-policy", "app-b-app"]
    a_uid = res["app-a-app"]["id"]
    assert res["app-a-trust-policy"]["type"] == POLICY
    assert res["app-a-trust-policy"]["inputs"] == {
        "accountId": ACCOUNT,
        "name": "Linked app token: app-a",
        "decision": "non_identity",
        "includes": [{"linkedAppToken": {"appUid": a_uid}}],
    }
    b = res["app-b-app"]["inputs"]
    assert res["app-b-app"]["type"] == APP
    assert (b["type"], b["name"], b["domain"], b["accountId"]) == ("self_hosted", "app-b", "b.acme.com", ACCOUNT)
    assert b["policies"] == [{"id": res["app-a-trust-policy"]["id"], "precedence": 1}]
    assert "policies" not in res["app-a-app"]["inputs"]  # a source gets nothing attached


def test_saas_to_self_hosted_exact_resources():
    p = plan(config({"mcp": saas("https://mcp.acme.com/cb", scopes=["openid", "email"], accessTokenLifetime="15m"),
                     "api": self_hosted("api.acme.com")}, [link("mcp", "api")]))
    res = by_name(p)
    mcp = res["mcp-app"]["inputs"]
    assert mcp["type"] == "saas" and mcp["name"] == "mcp"
    assert mcp["saasApp"] == {"authType": "oidc", "redirectUris": ["https://mcp.acme.com/cb"],
                              "grantTypes": ["authorization_code"], "scopes": ["openid", "email"],
                              "accessTokenLifetime": "15m"}
    assert res["mcp-trust-policy"]["inputs"]["includes"] == [{"linkedAppToken": {"appUid": res["mcp-app"]["id"]}}]
    assert res["api-app"]["inputs"]["policies"] == [{"id": res["mcp-trust-policy"]["id"], "precedence": 1}]
    # The OIDC client id is an output; the client secret never appears in clear.
    assert p.outputs["apps"]["mcp"]["client_id"]
    assert p.outputs["saas_client_secrets"] == "[secret]"
    assert "[secret]" not in str(p.outputs["apps"])


def test_saas_oidc_defaults_come_from_the_component():
    p = plan(config({"mcp": saas("https://mcp.acme.com/cb"), "api": self_hosted("api.acme.com")}, [link("mcp", "api")]))
    saas_app = by_name(p)["mcp-app"]["inputs"]["saasApp"]
    assert saas_app["scopes"] == ["openid", "email", "profile"]
    assert saas_app["grantTypes"] == ["authorization_code"]


def test_receiving_app_keeps_its_own_policies_first_with_unique_precedences():
    own = "5f0a3c2e-1b4d-4e6f-8a9b-0c1d2e3f4a5b"
    p = plan(config({
        "a": self_hosted("a.acme.com"), "c": self_hosted("c.acme.com"),
        "b": self_hosted("b.acme.com", allowEmailDomains=["acme.com"], policyIds=[own]),
    }, [link("c", "b"), link("a", "b")]))
    res = by_name(p)
    assert res["b-allow"]["inputs"]["decision"] == "allow"
    assert res["b-allow"]["inputs"]["includes"] == [{"emailDomain": {"domain": "acme.com"}}]
    attached = res["b-app"]["inputs"]["policies"]
    assert [x["id"] for x in attached] == [res["b-allow"]["id"], own,
                                           res["a-trust-policy"]["id"], res["c-trust-policy"]["id"]]
    assert [x["precedence"] for x in attached] == [1, 2, 3, 4]


def test_one_reusable_policy_per_source_shared_by_its_targets():
    p = plan(config({"a": self_hosted("a.acme.com"), "b": self_hosted("b.acme.com"), "c": self_hosted("c.acme.com")},
                    [link("a", "b"), link("a", "c")]))
    res = by_name(p)
    policies = [n for n, r in res.items() if r["type"] == POLICY]
    assert policies == ["a-trust-policy"]
    pid = res["a-trust-policy"]["id"]
    assert res["b-app"]["inputs"]["policies"] == res["c-app"]["inputs"]["policies"] == [{"id": pid, "precedence": 1}]
    assert [(l["from"], l["to"], l["policy_id"]) for l in p.outputs["links"]] == [("a", "b", pid), ("a", "c", pid)]


def test_existing_source_uid_is_used_verbatim():
    p = plan(config({"old": {"type": "self_hosted", "uid": EXISTING_UID.upper()}, "b": self_hosted("b.acme.com")},
                    [link("old", "b")]))
    res = by_name(p)
    assert res["old-trust-policy"]["inputs"]["includes"] == [{"linkedAppToken": {"appUid": EXISTING_UID}}]
    assert "old-app" not in res  # not managed here: nothing created for it
    assert p.outputs["apps"]["old"] == {"type": "self_hosted", "managed": False, "uid": EXISTING_UID}


def test_looked_up_source_uid_comes_from_the_lookup():
    p = plan(config({"crm": {"type": "self_hosted", "lookup": "Sales CRM"}, "b": self_hosted("b.acme.com")},
                    [link("crm", "b")]))
    res = by_name(p)
    assert res["crm-trust-policy"]["inputs"]["includes"] == [
        {"linkedAppToken": {"appUid": fake_uid("lookup", "Sales CRM")}}]
    assert res["crm-trust-policy"]["inputs"]["name"] == "Linked app token: Sales CRM"


@pytest.mark.parametrize("spec, expected", [
    ({"type": "saas", "stack": "acme/platform/prod", "app": "mcp-server"},
     fake_uid("stack", "acme/platform/prod/mcp-server")),
    ({"type": "saas", "stack": "acme/platform/prod", "output": "mcpUid"},
     fake_uid("stack", "acme/platform/prod/mcpUid")),
])
def test_stack_referenced_source_uid_comes_from_the_other_stack(spec, expected):
    p = plan(config({"mcp": spec, "b": self_hosted("b.acme.com")}, [link("mcp", "b")]))
    res = by_name(p)
    assert res["mcp-trust-policy"]["inputs"]["includes"] == [{"linkedAppToken": {"appUid": expected}}]
    assert p.outputs["apps"]["mcp"]["uid"] == expected


def test_link_into_saas_app_fails_before_anything_is_registered():
    p = plan(config({"a": self_hosted("a.acme.com"), "mcp": saas()}, [link("a", "mcp")]))
    assert p.resources == []
    assert [v.rule for v in p.violations] == ["target-not-self-hosted"]
    assert "`mcp` is a saas app" in p.violations[0].message
    assert "only on self-hosted apps" in p.violations[0].message


def test_three_broken_links_give_three_violations():
    p = plan(config({"a": self_hosted("a.acme.com"), "mcp": saas(),
                     "old": {"type": "self_hosted", "uid": EXISTING_UID}},
                    [link("a", "mcp"), link("a", "old"), link("a", "a")]))
    assert [v.rule for v in p.violations] == ["target-not-self-hosted", "target-not-managed", "self-link"]
    assert all(v.apps for v in p.violations)


def test_outputs_follow_the_contract(dev_config):
    p = plan(dev_config)
    assert p.outputs["team_domain"] == "acme.cloudflareaccess.com"
    hr = p.outputs["apps"]["hr-portal"]
    assert set(hr) == {"type", "managed", "uid", "aud", "domain"} and len(hr["aud"]) == 64
    assert set(p.outputs["apps"]["mcp-server"]) == {"type", "managed", "uid", "aud", "client_id"}
    assert {(l["from"], l["to"]) for l in p.outputs["links"]} == p.graph.edges()


def test_program_resources_and_desired_graph_agree(dev_config):
    # The state reader, fed the resources the program registered, must see the trust the topology declares.
    from linked_apps.state import graph_from_resources

    p = plan(dev_config)
    rows = [{"type": r["type"], "id": r["id"], "props": r["inputs"]} for r in p.resources]
    deployed = graph_from_resources(rows)
    managed = {e for e in p.graph.edges() if p.topology.is_managed(e[0])}
    assert {e for e in deployed.edges()} == managed
    assert deployed.unknown_uids == (("docs-api", "7c9e6679-7425-40de-944b-e07fc1f90ae7"),)


def test_unreadable_config_is_a_config_error():
    with pytest.raises(ConfigError) as info:
        plan(config({"a": {"type": "self_hosted"}}))
    assert "linked-apps:apps.a" in str(info.value)
