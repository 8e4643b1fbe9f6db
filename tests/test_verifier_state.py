"""Deployed state as the verifier reads it (linked_apps.state): the facts a decision needs survive secrets."""

from __future__ import annotations

import shutil

import pytest

from linked_apps.errors import StateError
from linked_apps.state import graph_from_export, graph_from_outputs, read_stack
from tests._verifier_support import (
    APP,
    AUD,
    PORTAL_CLIENT_ID,
    UID,
    ciphertext,
    dev_export,
    dev_outputs,
    handmade_export,
)


def test_export_and_outputs_give_the_verifier_the_same_facts() -> None:
    exported, output = graph_from_export(dev_export()), graph_from_outputs(dev_outputs())
    facts = lambda g: {n: (a.type, a.uid, a.aud, a.client_id) for n, a in g.apps.items()}  # noqa: E731
    assert facts(exported) == facts(output)
    assert exported.edges() == output.edges()
    assert exported.team_domain == output.team_domain == "acme.cloudflareaccess.com"


def test_a_saas_app_whose_settings_are_secret_whole_keeps_its_client_id_from_the_outputs() -> None:
    doc = dev_export()
    for res in doc["deployment"]["resources"]:
        if res["type"] == APP and "saasApp" in res["outputs"]:
            res["outputs"]["saasApp"] = ciphertext("saasApp")
            res["outputs"]["aud"] = ciphertext("aud")
    mcp = graph_from_export(doc).apps["mcp-server"]
    assert mcp.client_id == dev_outputs()["apps"]["mcp-server"]["client_id"]
    assert mcp.aud == dev_outputs()["apps"]["mcp-server"]["aud"]


def test_trust_made_by_hand_is_read_with_inline_policies_and_secrets() -> None:
    graph = graph_from_export(handmade_export())
    assert set(graph.apps) == {"front", "batch", "intruder", "plain", "api", "reports", "portal"}
    assert graph.apps["portal"].client_id == PORTAL_CLIENT_ID and graph.apps["api"].aud == AUD["api"]
    assert [p.name for p in graph.attached_policies("api")] == ["front may call", "batch but not intruder",
                                                                "portal may call"]
    assert graph.attached_policies("api")[0].inline
    assert ("front", "api") in graph.edges() and ("front", "portal") in graph.edges()
    assert not any(p.id == "p-orphan" for a in graph.apps for p in graph.attached_policies(a))
    assert graph.by_uid(UID["intruder"]).name == "intruder"


def test_live_state_needs_the_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)
    with pytest.raises(StateError, match="needs the Pulumi CLI on PATH.*pulumi stack export > state.json"):
        read_stack("dev", ".")


def test_apps_that_share_a_cloudflare_name_are_never_confused() -> None:
    """Cloudflare does not make names unique: asking by the bare name must not pick one of them at random."""
    from linked_apps.errors import UnknownAppError

    first, second = "00000000-0000-4000-8000-0000000000a1", "00000000-0000-4000-8000-0000000000a2"
    doc = {"deployment": {"resources": [
        {"type": APP, "id": first, "outputs": {"name": "api", "type": "self_hosted", "domain": "a.acme.com"}},
        {"type": APP, "id": second, "outputs": {"name": "api", "type": "saas"}},
    ]}}
    graph = graph_from_export(doc)
    assert sorted(graph.apps) == [f"api [{first}]", f"api [{second}]"]
    assert graph.find(first).type == "self_hosted" and graph.find(second).type == "saas"
    assert graph.find("a.acme.com").uid == first
    with pytest.raises(UnknownAppError, match=r"'api' is ambiguous.*fits 2 apps.*api \[.*api \["):
        graph.find("api")


def test_an_app_whose_outputs_give_no_type_never_grants() -> None:
    """Only a self-hosted app grants through a linked_app_token rule; outputs that do not say fail closed."""
    from linked_apps.verifier._decide import grant

    caller, untyped = "00000000-0000-4000-8000-0000000000b1", "00000000-0000-4000-8000-0000000000b2"
    graph = graph_from_outputs({"apps": {"caller": {"uid": caller, "type": "self_hosted"}, "api": {"uid": untyped}},
                                "links": [{"from": "caller", "to": "api", "policy_id": "pol-1"}]})
    verdict = grant(graph, graph.apps["api"], [graph.apps["caller"]])
    assert not verdict.allowed and "apps.api.type is missing" in verdict.reason


def test_deployed_service_tokens_are_read_by_client_id() -> None:
    from tests._verifier_support import CI_CLIENT_ID, service_token_resource, with_service_token

    assert graph_from_export(with_service_token(dev_export())).service_tokens == {CI_CLIENT_ID: "ci-deploy"}
    # a client id the export keeps secret names no token (never a guess); other resources are unaffected
    doc = dev_export()
    hidden = service_token_resource("hidden")
    hidden["outputs"]["clientId"] = ciphertext("clientId")
    doc["deployment"]["resources"].append(hidden)
    graph = graph_from_export(doc)
    assert graph.service_tokens == {} and graph.edges() == graph_from_export(dev_export()).edges()
