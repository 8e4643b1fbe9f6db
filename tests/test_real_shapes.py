"""The committed examples have the shapes the engine and the provider emit, and the readers take both.

Shapes and their sources are listed in tests/_review_export.py (the generator of examples/dev-state.json and
examples/dev-outputs.json).
"""

from __future__ import annotations

import json
import re

import pytest

from linked_apps.errors import StateError
from linked_apps.state import read_state
from linked_apps.state._pulumi import graph_from_outputs

from ._review_export import ROOT, SECRET_SIG, dev_config, planned

EXPORT = ROOT / "examples" / "dev-state.json"
OUTPUTS = ROOT / "examples" / "dev-outputs.json"
APP = "cloudflare:index/zeroTrustAccessApplication:ZeroTrustAccessApplication"


@pytest.fixture(scope="module")
def resources() -> list[dict]:
    return json.loads(EXPORT.read_text())["deployment"]["resources"]


def test_children_of_components_carry_the_parent_type_chain(resources):
    by_urn = {r["urn"]: r for r in resources}
    app = next(r for r in resources if r["urn"].endswith("::hr-portal-app"))
    assert app["urn"] == ("urn:pulumi:dev::linked-apps::linked-apps:index:SelfHostedApp$" + APP + "::hr-portal-app")
    parent = by_urn[app["parent"]]
    assert parent["type"] == "linked-apps:index:SelfHostedApp" and parent["custom"] is False
    assert parent["parent"].endswith("::pulumi:pulumi:Stack::linked-apps-dev")
    assert "pulumi:pulumi:Stack$" not in "".join(by_urn)  # the root stack's type is never in a chain


def test_the_provider_is_a_resource_every_custom_resource_names(resources):
    [provider] = [r for r in resources if r["type"] == "pulumi:providers:cloudflare"]
    assert SECRET_SIG in provider["inputs"]["apiToken"]
    customs = [r for r in resources if r["custom"] and r is not provider]
    assert customs and all(r["provider"] == f"{provider['urn']}::{provider['id']}" for r in customs)


def test_dependencies_come_before_their_dependents(resources):
    seen: set[str] = set()
    for r in resources:
        assert set(r.get("dependencies", ())) <= seen, r["urn"]
        assert r.get("parent") is None or r["parent"] in seen
        seen.add(r["urn"])


def test_outputs_hold_computed_fields_and_a_secret_saas_app(resources):
    apps = [r for r in resources if r["type"] == APP]
    assert all(re.fullmatch(r"[0-9a-f]{64}", r["outputs"]["aud"]) and "aud" not in r["inputs"] for r in apps)
    assert all(r["outputs"]["sessionDuration"] for r in apps)  # the provider's default
    [saas] = [r for r in apps if r["outputs"]["type"] == "saas"]
    assert set(saas["outputs"]["saasApp"]) == {SECRET_SIG, "ciphertext"}
    assert "clientId" not in saas["inputs"]["saasApp"]


def test_stack_outputs_print_secrets_as_the_cli_does_and_client_ids_in_clear():
    outputs = json.loads(OUTPUTS.read_text())
    assert outputs["saas_client_secrets"] == "[secret]"
    assert re.fullmatch(r"[0-9a-f]{32}", outputs["apps"]["mcp-server"]["client_id"])


def test_the_program_exports_client_ids_unsecreted_though_saas_app_is_secret():
    result = planned(dev_config(), "dev")
    assert isinstance(result.outputs["apps"], dict), "apps became a secret: the client id must be unsecreted"
    mcp = next(r for r in result.resources if r["name"] == "mcp-server-app")
    assert mcp["outputs"]["saasApp"][SECRET_SIG]  # secret as the provider makes it
    assert result.outputs["apps"]["mcp-server"]["client_id"] == mcp["outputs"]["saasApp"]["value"]["clientId"]


def test_export_and_outputs_read_to_the_same_trust():
    export, outputs = read_state(EXPORT), read_state(OUTPUTS)
    assert export.edges() == outputs.edges() and export.edges()
    for name, app in outputs.apps.items():
        assert export.apps[name].uid == app.uid
    # The SaaS app's client id is secret in its resource; the stack's `apps` output gives it.
    assert export.apps["mcp-server"].client_id == outputs.apps["mcp-server"].client_id is not None


def test_secret_text_in_stack_outputs_is_unreadable_never_a_value():
    outputs = json.loads(OUTPUTS.read_text())
    outputs["apps"]["mcp-server"]["client_id"] = "[secret]"
    assert graph_from_outputs(outputs).apps["mcp-server"].client_id is None
    outputs["apps"]["hr-portal"]["uid"] = "[secret]"
    with pytest.raises(StateError, match="hr-portal"):
        graph_from_outputs(outputs)  # a link from an app whose uid cannot be read grants nothing
    outputs["apps"] = "[secret]"
    with pytest.raises(StateError, match=r"`apps` output is a secret"):
        graph_from_outputs(outputs)
