"""The pack as the Pulumi engine meets it: `__main__.py` started the way the Python analyzer plugin starts it,
then questioned over gRPC with the engine's own messages (unknowns as the engine's sentinel strings).
"""

from __future__ import annotations

import copy
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import empty_pb2, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

from linked_apps.state import APP_TYPE, POLICY_TYPE
from tests._review_export import SECRET_SIG, dev_config, export_document, planned

ROOT = Path(__file__).resolve().parent.parent
MANDATORY = 1  # EnforcementLevel in the analyzer protocol: ADVISORY = 0, MANDATORY = 1


@pytest.fixture(scope="module")
def analyzer() -> Iterator[analyzer_pb2_grpc.AnalyzerStub]:
    # `pulumi-analyzer-policy-python` runs `python -m pulumi.policy <engine> <pack dir>`; the pack prints its port.
    proc = subprocess.Popen([sys.executable, "-u", "-m", "pulumi.policy", "127.0.0.1:1", str(ROOT / "policy")],
                            cwd=ROOT / "policy", stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        if not line.strip().isdigit():
            proc.kill()
            pytest.fail(f"the pack did not start: {line!r}\n{proc.communicate(timeout=10)[1]}")
        channel = grpc.insecure_channel(f"127.0.0.1:{line.strip()}")
        yield analyzer_pb2_grpc.AnalyzerStub(channel)
        channel.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def dev_resources() -> list[dict[str, Any]]:
    return export_document(planned(dev_config(), "dev"))["deployment"]["resources"]


def _wire(value: Any) -> Any:
    """Engine wire form: a secret travels with its value to the analyzer (a stack export shows ciphertext)."""
    if isinstance(value, dict):
        if SECRET_SIG in value:
            return {SECRET_SIG: value[SECRET_SIG], "value": "not-the-real-secret"}
        return {k: _wire(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_wire(v) for v in value]
    return value


def _struct(props: dict[str, Any]) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(_wire(props))
    return message


def _stack_request(resources: list[dict[str, Any]],
                   deps: dict[str, dict[str, list[str]]] | None = None) -> analyzer_pb2.AnalyzeStackRequest:
    return analyzer_pb2.AnalyzeStackRequest(resources=[
        analyzer_pb2.AnalyzerResource(
            type=r["type"], properties=_struct(r["outputs"]), urn=r["urn"], name=r["urn"].rsplit("::", 1)[-1],
            propertyDependencies={k: analyzer_pb2.AnalyzerPropertyDependencies(urns=v)
                                  for k, v in (deps or {}).get(r["urn"], {}).items()})
        for r in resources])


def _by_name(resources: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(r for r in resources if r["urn"].endswith(f"::{name}"))


def test_the_engine_sees_every_policy(analyzer: analyzer_pb2_grpc.AnalyzerStub) -> None:
    info = analyzer.GetAnalyzerInfo(empty_pb2.Empty())
    assert info.name == "linked-apps"
    assert {p.name for p in info.policies} == {
        "linked-app-rule-self-hosted-only", "linked-app-policy-self-hosted-only", "linked-app-rule-non-identity-only",
        "linked-app-policy-attached", "linked-app-uid-known", "linked-app-value-unknown"}


def test_clean_stack_has_no_diagnostics(analyzer: analyzer_pb2_grpc.AnalyzerStub,
                                        dev_resources: list[dict[str, Any]]) -> None:
    assert list(analyzer.AnalyzeStack(_stack_request(dev_resources)).diagnostics) == []


def test_linked_policy_on_saas_app_fails_the_stack(analyzer: analyzer_pb2_grpc.AnalyzerStub,
                                                   dev_resources: list[dict[str, Any]]) -> None:
    resources = copy.deepcopy(dev_resources)
    mcp = _by_name(resources, "mcp-server-app")
    mcp["outputs"]["policies"].append({"id": _by_name(resources, "hr-portal-trust-policy")["id"], "precedence": 2})
    (diag,) = analyzer.AnalyzeStack(_stack_request(resources)).diagnostics
    assert (diag.policyName, diag.enforcementLevel, diag.urn) == ("linked-app-policy-self-hosted-only", MANDATORY,
                                                                   mcp["urn"])


def test_inline_rule_in_allow_policy_fails_the_resource(analyzer: analyzer_pb2_grpc.AnalyzerStub,
                                                        dev_resources: list[dict[str, Any]]) -> None:
    docs = copy.deepcopy(_by_name(dev_resources, "docs-api-app"))
    docs["inputs"]["policies"].append({"precedence": 4, "decision": "allow",
                                       "includes": [{"linkedAppToken": {"appUid": "7c9e6679-7425-40de-944b-e07fc1f90ae7"}}]})
    response = analyzer.Analyze(analyzer_pb2.AnalyzeRequest(type=APP_TYPE, properties=_struct(docs["inputs"]),
                                                            urn=docs["urn"], name="docs-api-app"))
    assert [(d.policyName, d.enforcementLevel) for d in response.diagnostics] == [
        ("linked-app-rule-non-identity-only", MANDATORY)]


def test_preview_unknowns_never_stop_a_policy(analyzer: analyzer_pb2_grpc.AnalyzerStub,
                                              dev_resources: list[dict[str, Any]]) -> None:
    resources = copy.deepcopy(dev_resources)
    for r in resources:
        if r["type"] in (APP_TYPE, POLICY_TYPE):
            r["outputs"]["id"] = UNKNOWN_STRING_VALUE
            for entry in r["outputs"].get("policies", []):
                entry["id"] = UNKNOWN_STRING_VALUE
            for rule in r["outputs"].get("includes", []):
                rule.get("linkedAppToken", {}).update(appUid=UNKNOWN_STRING_VALUE)
    response = analyzer.AnalyzeStack(_stack_request(resources))
    # Had a policy read an unknown, the engine would show "can't run policy ... during preview".
    assert list(response.diagnostics) == [] and list(response.not_applicable) == []
    for r in resources:
        request = analyzer_pb2.AnalyzeRequest(type=r["type"], properties=_struct(r["outputs"]), urn=r["urn"],
                                              name=r["urn"].rsplit("::", 1)[-1])
        assert list(analyzer.Analyze(request).diagnostics) == []


def test_an_unknown_decision_over_a_linked_rule_is_an_advisory_from_the_engine(
        analyzer: analyzer_pb2_grpc.AnalyzerStub, dev_resources: list[dict[str, Any]]) -> None:
    policy = copy.deepcopy(_by_name(dev_resources, "hr-portal-trust-policy"))
    policy["inputs"]["decision"] = UNKNOWN_STRING_VALUE
    response = analyzer.Analyze(analyzer_pb2.AnalyzeRequest(type=POLICY_TYPE, properties=_struct(policy["inputs"]),
                                                            urn=policy["urn"], name="hr-portal-trust-policy"))
    (diag,) = response.diagnostics
    assert diag.policyName == "linked-app-value-unknown" and diag.enforcementLevel != MANDATORY
    assert "`decision`" in diag.message
