"""The fail-closed rule (README, "What the verifier will not grant on"): each class of unreadable or ambiguous
state the issue found granting, crashing or hanging now denies with a reason naming the field, or is exit 2.

Documents start from `handmade_export()` (a `pulumi stack export` shape: outputs with ciphertext secrets, engine
spelling of every selector) or the dev stack's real outputs; tokens are minted with PyJWT and keys served through
an httpx MockTransport standing in for the network (the JWKS body is the real certs shape).
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from linked_apps.cli import main
from linked_apps.errors import ConfigError, StateError, UnknownAppError
from linked_apps.state import graph_from_export, graph_from_outputs, read_state
from linked_apps.verifier import Verdict, Verifier
from tests._verifier_support import (
    APP,
    AUD,
    POLICY,
    TEAM,
    UID,
    JwksServer,
    app_claims,
    ciphertext,
    handmade_export,
    jwks,
    signing_key,
    userinfo_path,
)

KEY = signing_key("failclosed")


def certs_client() -> httpx.Client:
    body = json.dumps(jwks(KEY)).encode()
    return httpx.Client(transport=httpx.MockTransport(lambda request: httpx.Response(200, content=body)))


def decide(doc: dict[str, Any], source: str, target: str) -> Verdict:
    verifier = Verifier(graph_from_export(doc), team_domain=TEAM, client=certs_client())
    return verifier.decide(target, cf_access_token=KEY.mint(app_claims(AUD[source])))


def outputs_of(doc: dict[str, Any], urn_name: str) -> dict[str, Any]:
    return next(r for r in doc["deployment"]["resources"] if r.get("urn", "").endswith(f"::{urn_name}"))["outputs"]


def linked(uid: str) -> dict[str, Any]:
    return {"email": None, "linkedAppToken": {"appUid": uid}}


# -- policy rules that cannot be read ------------------------------------------------------------------------
def test_the_fixture_denies_the_excluded_app_and_admits_the_included_one() -> None:
    doc = handmade_export()
    assert decide(doc, "batch", "api").allowed
    verdict = decide(doc, "intruder", "api")
    assert not verdict.allowed and "exclude rule names the source app" in verdict.reason


EXCLUDE_MUTATIONS = {
    "a secret list": (lambda p: p.update(excludes=ciphertext("excludes")), "excludes is a secret"),
    "an entry that is not an object": (lambda p: p["excludes"].append("intruder"), "excludes[1] is a string"),
    "a linked rule without appUid": (lambda p: p["excludes"].__setitem__(0, {"linkedAppToken": {}}),
                                     "excludes[0].linkedAppToken.appUid is missing"),
    "a secret appUid": (lambda p: p["excludes"].__setitem__(0, {"linkedAppToken": {"appUid": ciphertext()}}),
                        "excludes[0].linkedAppToken.appUid is a secret"),
    "an object, not a list": (lambda p: p.update(excludes={"0": linked(UID["intruder"])}),
                              "excludes is an object, not a list"),
    "two spellings": (lambda p: p.update(excludes=[], exclude=[linked(UID["intruder"])]),
                      "both `excludes` and `exclude` are set, and differ"),
    "an unknown selector": (lambda p: p["excludes"].append({"quantumEntanglement": {"id": "x"}}),
                            "unknown selector `quantumEntanglement` in exclude"),
}


@pytest.mark.parametrize("mutation", sorted(EXCLUDE_MUTATIONS))
def test_an_exclude_that_cannot_be_read_denies_naming_the_field(mutation: str) -> None:
    change, field = EXCLUDE_MUTATIONS[mutation]
    doc = handmade_export()
    change(outputs_of(doc, "p-excl"))
    for source in ("intruder", "batch"):  # the excluded app stays out; the one it admitted is no longer sure
        verdict = decide(doc, source, "api")
        assert not verdict.allowed
        assert field in verdict.reason and "p-excl" not in verdict.reason or field in verdict.reason
        assert "grants only on trust it read in full" in verdict.reason


def test_an_unreadable_decision_denies() -> None:
    doc = handmade_export()
    outputs_of(doc, "p-excl")["decision"] = "non_identity_v2"
    verdict = decide(doc, "batch", "api")
    assert not verdict.allowed and "decision 'non_identity_v2' is not a policy decision" in verdict.reason


def test_an_unreadable_attachment_list_denies() -> None:
    doc = handmade_export()
    outputs_of(doc, "api")["policies"][1] = {"id": ciphertext("pid"), "precedence": 2}
    verdict = decide(doc, "front", "api")
    assert not verdict.allowed and "policies[1].id is a secret" in verdict.reason


# -- app types ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("hide", ["delete", "secret", "number"])
def test_a_target_whose_type_is_missing_or_secret_is_not_taken_for_self_hosted(hide: str) -> None:
    """portal is SaaS; front -> portal is a linked rule on it, which Cloudflare never honours."""
    doc = handmade_export()
    portal = outputs_of(doc, "portal")
    if hide == "delete":
        del portal["type"]
    else:
        portal["type"] = ciphertext("type") if hide == "secret" else 7
    verdict = decide(doc, "front", "portal")
    assert not verdict.allowed and ".type is" in verdict.reason and "portal" in verdict.reason


# -- ambiguity ------------------------------------------------------------------------------------------------
def _app(name: str, uid: str, typ: str = "self_hosted", **outputs: Any) -> dict[str, Any]:
    return {"urn": f"urn:pulumi:prod::other::{APP}::{name}", "custom": True, "id": uid, "type": APP,
            "outputs": {"name": name, "type": typ, "id": uid, **outputs}}


U1, U2, U3 = (f"00000000-0000-4000-8000-0000000000c{i}" for i in (1, 2, 3))


def test_a_renamed_duplicate_never_overwrites_an_app_really_named_so() -> None:
    really = f"api [{U1}]"
    doc = {"deployment": {"resources": [_app(really, U3), _app("api", U1), _app("api", U2, "saas")]}}
    graph = graph_from_export(doc)
    assert len(graph.apps) == 3
    assert {graph.find(uid).uid for uid in (U1, U2, U3)} == {U1, U2, U3}
    assert graph.find(really).uid == U3
    with pytest.raises(UnknownAppError, match="'api' is ambiguous"):
        graph.find("api")


def test_a_reference_that_is_one_apps_name_and_anothers_domain_is_ambiguous() -> None:
    doc = {"deployment": {"resources": [_app("pay.acme.com", U1), _app("payroll", U2, domain="pay.acme.com")]}}
    with pytest.raises(UnknownAppError, match=r"'pay.acme.com' is ambiguous.*fits 2 apps"):
        graph_from_export(doc).find("pay.acme.com")
    result = CliRunner().invoke(main, ["verify", "--state", "-", "--to", "pay.acme.com", "--team-domain", TEAM,
                                       "--cf-access-token", "x.y.z"], input=json.dumps(doc))
    assert result.exit_code == 2 and "ambiguous" in result.output


def test_a_uid_shared_by_two_resources_resolves_to_neither() -> None:
    doc = {"deployment": {"resources": [_app("a", U1), _app("b", U1)]}}
    with pytest.raises(UnknownAppError, match="by uid it fits 2 apps"):
        graph_from_export(doc).find(U1)


def test_an_aud_tag_two_apps_share_names_no_sender() -> None:
    """`evil` claims plain's AUD tag; a policy admits evil. A token for plain must not be taken for evil's."""
    doc = handmade_export()
    doc["deployment"]["resources"] += [
        _app("evil", U1, aud=AUD["plain"]),
        {"urn": f"urn:pulumi:prod::other::{POLICY}::p-evil", "custom": True, "id": "p-evil", "type": POLICY,
         "outputs": {"name": "evil", "decision": "non_identity", "id": "p-evil", "includes": [linked(U1)]}},
    ]
    outputs_of(doc, "api")["policies"].append({"id": "p-evil", "precedence": 4})
    verdict = decide(doc, "plain", "api")
    assert not verdict.allowed and "belongs to 2 apps" in verdict.reason


def test_two_policies_with_one_id_never_grant() -> None:
    doc = handmade_export()
    twin = copy.deepcopy(next(r for r in doc["deployment"]["resources"] if r.get("id") == "p-excl"))
    twin["outputs"]["excludes"] = []
    doc["deployment"]["resources"].append(twin)
    verdict = decide(doc, "intruder", "api")
    assert not verdict.allowed and "two policies in the state have id 'p-excl'" in verdict.reason


# -- pending deletes ------------------------------------------------------------------------------------------
def test_a_resource_pending_deletion_is_not_live() -> None:
    doc = handmade_export()
    old = _app("old-front", U1, aud="ab" * 32)
    old["delete"] = True
    doc["deployment"]["resources"].append(old)
    outputs_of(doc, "api")["policies"][0]["includes"].append(linked(U1))
    graph = graph_from_export(doc)
    assert "old-front" not in graph.apps
    verifier = Verifier(graph, team_domain=TEAM, client=certs_client())
    verdict = verifier.decide("api", cf_access_token=KEY.mint(app_claims("ab" * 32)))
    assert not verdict.allowed and "unknown AUD tag" in verdict.reason


# -- state files that are unusable as a whole: exit 2, never a traceback, never a hang -------------------------
def verify_file(path: Path) -> Any:
    return CliRunner().invoke(main, ["verify", "--state", str(path), "--to", "api", "--team-domain", TEAM,
                                     "--cf-access-token", "x.y.z"])


BROKEN = {
    "deep nesting": ('{"apps": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested too deeply"),
    "a 5000-digit integer": ('{"apps": {"a": {"uid": ' + "9" * 5000 + "}}}", "not readable JSON"),
    "inputs a list, no outputs": (json.dumps({"deployment": {"resources": [{"type": APP, "id": U1, "inputs": []}]}}),
                                  "deployment.resources[0].inputs is a list"),
    "inputs a string, no outputs": (json.dumps({"deployment": {"resources": [
        {"type": "pulumi:pulumi:Stack", "inputs": "x"}]}}), "deployment.resources[0].inputs is a string"),
    "a resource that is not an object": (json.dumps({"deployment": {"resources": [3]}}),
                                         "deployment.resources[0] is a number"),
    "an app entry that is a list": (json.dumps({"apps": {"api": []}}), "apps.api is a list"),
    "a duplicated key": ('{"apps": {"api": {"type": "saas"}, "api": {"type": "self_hosted"}}}',
                         "the key 'api' appears twice"),
    "NaN": ('{"apps": {"api": {"precedence": NaN}}}', "NaN is not a JSON number"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_broken_state_file_is_exit_2_naming_the_problem(case: str, tmp_path: Path) -> None:
    text, message = BROKEN[case]
    path = tmp_path / "state.json"
    path.write_text(text)
    result = verify_file(path)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_a_file_that_never_ends_is_refused_not_waited_for() -> None:
    with pytest.raises(StateError, match="larger than 64 MiB"):
        read_state("/dev/zero")


def test_the_size_cap_holds_for_an_ordinary_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from linked_apps.state import _pulumi

    path = tmp_path / "big.json"
    path.write_text(json.dumps({"apps": {}, "pad": "x" * 5000}))
    monkeypatch.setattr(_pulumi, "MAX_STATE_BYTES", 4096)
    with pytest.raises(StateError, match="larger than"):
        read_state(path)


# -- userinfo -------------------------------------------------------------------------------------------------
SAAS = {"saas-a": ("00000000-0000-4000-8000-0000000000d1", "a" * 32),
        "saas-b": ("00000000-0000-4000-8000-0000000000d2", "b" * 32)}


def two_saas_outputs() -> dict[str, Any]:
    """`pulumi stack output --json` shape of the program: apps {type, uid, aud, client_id}, links."""
    apps: dict[str, Any] = {name: {"type": "saas", "uid": uid, "aud": f"{i}" * 64, "client_id": cid}
                            for i, (name, (uid, cid)) in enumerate(SAAS.items(), start=1)}
    apps["api"] = {"type": "self_hosted", "uid": U3, "aud": "f" * 64, "domain": "api.acme.com"}
    return {"team_domain": TEAM, "apps": apps,
            "links": [{"from": name, "to": "api", "policy_id": f"pol-{name}"} for name in SAAS]}


@pytest.mark.parametrize("answer", [{}, {"error": "invalid_token"}, {"sub": ""}, {"sub": 5}, ["sub"]])
def test_userinfo_allows_only_on_an_object_with_a_sub(answer: Any) -> None:
    with JwksServer() as server:
        server.routes[userinfo_path(SAAS["saas-a"][1])] = lambda: (200, json.dumps(answer).encode())
        verifier = Verifier(graph_from_outputs(two_saas_outputs()), access_url=server.url, online_userinfo=True)
        verdict = verifier.decide("api", bearer="opaque-token")
    assert not verdict.allowed and "not a JSON object with a `sub`" in verdict.reason


def test_userinfo_accepted_by_two_apps_is_ambiguous() -> None:
    with JwksServer() as server:
        for _, cid in SAAS.values():
            server.serve_json(userinfo_path(cid), {"sub": "7335d417", "email": "ann@acme.com"})
        verifier = Verifier(graph_from_outputs(two_saas_outputs()), access_url=server.url, online_userinfo=True)
        verdict = verifier.decide("api", bearer="opaque-token")
        assert server.hits == {userinfo_path(cid): 1 for _, cid in SAAS.values()}  # every candidate asked
    assert not verdict.allowed and "accepted by 2 SaaS apps" in verdict.reason and "ambiguous" in verdict.reason


def test_userinfo_accepted_by_exactly_one_app_names_it() -> None:
    with JwksServer() as server:
        server.serve_json(userinfo_path(SAAS["saas-b"][1]), {"sub": "7335d417"})
        server.routes[userinfo_path(SAAS["saas-a"][1])] = lambda: (401, b"{}")
        verifier = Verifier(graph_from_outputs(two_saas_outputs()), access_url=server.url, online_userinfo=True)
        verdict = verifier.decide("api", bearer="opaque-token")
    assert verdict.allowed and verdict.source == "saas-b"


# -- decide_headers and options -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def hv() -> Verifier:
    return Verifier(graph_from_export(handmade_export()), team_domain=TEAM, client=certs_client())


def test_decide_headers_reads_bytes_like_str(hv: Verifier) -> None:
    token = KEY.mint(app_claims(AUD["front"]))
    assert hv.decide_headers("api", {b"Cf-Access-Token": token.encode()}).allowed
    assert hv.decide_headers("api", {"Authorization": b"Bearer " + token.encode()}).flow == "bearer"


@pytest.mark.parametrize("headers", [
    {"cf-access-token": ["a.b.c", "d.e.f"]},
    {"Cf-Access-Token": "a.b.c", "cf-access-token": "a.b.c"},
    {b"authorization": [b"Bearer a.b.c", b"Bearer d.e.f"]},
])
def test_decide_headers_refuses_a_repeated_token_header(hv: Verifier, headers: dict[Any, Any]) -> None:
    verdict = hv.decide_headers("api", headers)
    assert not verdict.allowed and "headers; send one" in verdict.reason


@pytest.mark.parametrize("headers", [{"cf-access-token": None}, {"authorization": None}, {"cf-access-token": 7},
                                     {"authorization": ["Bearer", 7]}, {3: "x"}, {}])
def test_decide_headers_never_raises(hv: Verifier, headers: dict[Any, Any]) -> None:
    verdict = hv.decide_headers("api", headers)
    assert isinstance(verdict, Verdict) and not verdict.allowed


@pytest.mark.parametrize("option", [dict(leeway=math.inf), dict(leeway=-1), dict(leeway=math.nan),
                                    dict(fetch_timeout=0), dict(fetch_timeout=math.inf), dict(key_ttl=-5),
                                    dict(cache_size=1.5), dict(key_cooldown=True)])
def test_numeric_options_are_validated(option: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match=next(iter(option)).replace("key_", "")):
        Verifier(graph_from_export(handmade_export()), team_domain=TEAM, **option)


def test_a_websocket_close_reason_fits_the_frame() -> None:
    from linked_apps.verifier._asgi import close_reason

    cut = close_reason("é" * 200)
    assert len(cut.encode()) <= 123 and cut == "é" * 61
