"""State-reader decisions that mutation testing (`./dev mutate`) found no test defending, and the readers' size and
time limits at their edges: each test here fails on a mutant of linked_apps.state._pulumi or _cloudflare that
survived the older tests.

Documents start from `handmade_export()` (a `pulumi stack export` shape: outputs with ciphertext secrets, every
selector spelled out as the engine writes it) and `pulumi stack output --json` shapes as the program exports them
(team_domain, apps {type, uid, aud, managed, ...}, links [{from, to, policy_id}]).
"""

from __future__ import annotations

import copy
import json
import re
import time
from typing import Any

import pytest

from linked_apps.errors import StateError
from linked_apps.state import _cloudflare, graph_from_export, graph_from_outputs
from linked_apps.state._pulumi import MAX_STATE_BYTES, graph_from_resources, parse_state, read_state
from tests._verifier_support import APP, AUD, POLICY, TEAM, UID, ciphertext, handmade_export

OTHER_UID = "00000000-0000-4000-8000-0000000000ff"


def stack_outputs(doc: dict[str, Any]) -> dict[str, Any]:
    return next(r for r in doc["deployment"]["resources"] if r["type"] == "pulumi:pulumi:Stack")["outputs"]


def app_outputs(doc: dict[str, Any], name: str) -> dict[str, Any]:
    return next(r for r in doc["deployment"]["resources"] if r.get("urn", "").endswith(f"::{name}"))["outputs"]


# -- the stack's `apps` output beside the resources ------------------------------------------------------------
@pytest.mark.parametrize("managed", [False, True])
def test_an_apps_output_entry_never_replaces_a_resource_app_of_the_same_name(managed: bool) -> None:
    doc = handmade_export()
    stack_outputs(doc)["apps"] = {"api": {"type": "saas", "uid": OTHER_UID, "aud": "ee" * 32, "managed": managed}}
    graph = graph_from_export(doc)
    api = graph.apps["api"]
    assert (api.type, api.uid, api.aud) == ("self_hosted", UID["api"], AUD["api"])
    assert ("front", "api") in graph.edges()


def test_an_apps_output_entry_for_a_resource_only_fills_what_the_resource_hides() -> None:
    doc = handmade_export()
    app_outputs(doc, "front").pop("aud")
    app_outputs(doc, "front")["domain"] = ciphertext()
    stack_outputs(doc)["apps"] = {
        "front-renamed": {"type": "self_hosted", "uid": UID["front"], "aud": "ee" * 32, "domain": "f.example.com"},
        "batch": {"type": "self_hosted", "uid": UID["batch"], "aud": "dd" * 32, "domain": "b.example.com"},
    }
    graph = graph_from_export(doc)
    assert graph.apps["front"].aud == "ee" * 32 and graph.apps["front"].domain == "f.example.com"
    assert graph.apps["batch"].aud == AUD["batch"] and graph.apps["batch"].domain == "batch.acme.com"
    assert "front-renamed" not in graph.apps


def test_an_app_only_in_the_apps_output_is_added_when_managed_elsewhere_only() -> None:
    doc = handmade_export()
    stack_outputs(doc)["apps"] = {
        "legacy": {"type": "self_hosted", "uid": OTHER_UID, "aud": "ee" * 32},
        "ghost": {"type": "self_hosted", "uid": "00000000-0000-4000-8000-0000000000fe", "managed": True},
    }
    graph = graph_from_export(doc)
    assert graph.apps["legacy"].uid == OTHER_UID and not graph.apps["legacy"].managed
    assert "ghost" not in graph.apps


def test_an_apps_output_entry_sharing_a_uid_with_two_resources_fills_neither() -> None:
    doc = handmade_export()
    for name in ("front", "batch"):
        app_outputs(doc, name)["id"] = UID["front"]
    for res in doc["deployment"]["resources"]:
        if res.get("urn", "").endswith("::batch"):
            res["id"] = UID["front"]
    app_outputs(doc, "batch").pop("aud")
    stack_outputs(doc)["apps"] = {"x": {"type": "self_hosted", "uid": UID["front"], "aud": "ee" * 32}}
    graph = graph_from_export(doc)
    assert graph.apps["batch"].aud is None
    assert "x" not in graph.apps


# -- outputs documents -----------------------------------------------------------------------------------------
def outputs(**changes: Any) -> dict[str, Any]:
    doc = {"team_domain": TEAM,
           "apps": {"hr": {"type": "self_hosted", "uid": UID["front"], "aud": AUD["front"], "managed": True},
                    "pay": {"type": "self_hosted", "uid": UID["api"], "aud": AUD["api"], "managed": True},
                    "ext": {"type": "saas", "uid": UID["portal"], "client_id": "cid", "managed": False}},
           "links": [{"from": "hr", "to": "pay", "policy_id": "p1"}, {"from": "ext", "to": "pay", "policy_id": "p2"}]}
    doc.update(changes)
    return doc


def test_outputs_give_each_link_a_policy_attached_in_order() -> None:
    graph = graph_from_outputs(outputs())
    assert graph.edges() == frozenset({("hr", "pay"), ("ext", "pay")})
    assert graph.attachments["pay"] == (("p1", 1), ("p2", 2))
    assert graph.policies["p1"].include == (("linked_app_token", UID["front"]),)
    assert graph.policies["p1"].name == "Linked app token: hr" and graph.policies["p1"].decision == "non_identity"
    assert graph.team_domain == TEAM
    assert graph.apps["ext"].client_id == "cid" and not graph.apps["ext"].managed
    assert graph.apps["hr"].managed


def test_one_policy_id_shared_by_two_links_is_one_policy_naming_its_source() -> None:
    doc = outputs(links=[{"from": "hr", "to": "pay", "policy_id": "p1"}, {"from": "hr", "to": "ext", "policy_id": "p1"}])
    graph = graph_from_outputs(doc)
    assert list(graph.policies) == ["p1"]
    assert graph.attachments == {"pay": (("p1", 1),), "ext": (("p1", 1),)}


def test_a_link_without_policy_id_gets_one_per_source() -> None:
    graph = graph_from_outputs(outputs(links=[{"from": "hr", "to": "pay"}, {"from": "hr", "to": "ext"}]))
    assert list(graph.policies) == ["link:hr"]


def test_managed_defaults_to_true_in_outputs_and_false_in_an_export_stack_output() -> None:
    doc = outputs()
    del doc["apps"]["ext"]["managed"]
    doc["apps"]["ext"]["managed"] = "yes"  # not a boolean: the default
    assert graph_from_outputs(doc).apps["ext"].managed is True


@pytest.mark.parametrize(("link", "why"), [({"from": "nobody", "to": "pay"}, "names an app that is not in `apps`"),
                                           ({"from": "hr", "to": "nobody"}, "names an app that is not in `apps`"),
                                           ("hr->pay", "expected an object"), (ciphertext(), "expected an object")])
def test_a_link_naming_an_unknown_app_or_of_the_wrong_shape_refuses_the_document(link: Any, why: str) -> None:
    with pytest.raises(StateError, match=why):
        graph_from_outputs(outputs(links=[link]))


def test_a_link_from_an_app_without_uid_refuses_the_document() -> None:
    doc = outputs()
    doc["apps"]["hr"]["uid"] = "[secret]"
    with pytest.raises(StateError, match=r"links\[0\]"):
        graph_from_outputs(doc)


@pytest.mark.parametrize("apps", [None, [], "x"])
def test_outputs_without_an_apps_object_are_not_linked_apps_outputs(apps: Any) -> None:
    with pytest.raises(StateError, match="not linked-apps stack outputs"):
        graph_from_outputs(outputs(apps=apps))
    with pytest.raises(StateError, match="not linked-apps stack outputs"):
        graph_from_outputs({"team_domain": TEAM})


def test_a_secret_apps_output_says_how_to_show_it() -> None:
    with pytest.raises(StateError, match="--show-secrets"):
        graph_from_outputs(outputs(apps="[secret]"))


def test_an_apps_entry_that_is_secret_is_an_unreadable_app_and_one_of_another_shape_refuses() -> None:
    doc = outputs(links=[])
    doc["apps"]["hr"] = "[secret]"
    hr = graph_from_outputs(doc).apps["hr"]
    assert hr.unreadable == ("apps.hr is a secret", "apps.hr.type is missing") and hr.type == "unknown"
    doc["apps"]["hr"] = ["self_hosted"]
    with pytest.raises(StateError, match=r"apps.hr is a list; expected an object"):
        graph_from_outputs(doc)


def test_links_that_are_not_a_list_refuse_the_document() -> None:
    with pytest.raises(StateError, match="`links` is not a list"):
        graph_from_outputs(outputs(links={"from": "hr"}))
    assert graph_from_outputs(outputs(links=None)).edges() == frozenset()


# -- export documents ---------------------------------------------------------------------------------------
def test_an_export_reads_only_live_apps_and_policies_and_the_stack_outputs() -> None:
    doc = handmade_export()
    resources = doc["deployment"]["resources"]
    gone = copy.deepcopy(next(r for r in resources if r.get("urn", "").endswith("::plain")))
    gone["delete"] = True
    gone["outputs"]["name"] = gone["inputs"]["name"] = "plain-old"
    resources.append(gone)
    graph = graph_from_export(doc)
    assert "plain-old" not in graph.apps
    assert graph.team_domain == TEAM


def test_an_export_resource_without_outputs_is_read_from_its_inputs() -> None:
    doc = handmade_export()
    res = next(r for r in doc["deployment"]["resources"] if r.get("urn", "").endswith("::reports"))
    res["inputs"]["id"] = UID["reports"]
    del res["outputs"]
    graph = graph_from_export(doc)
    assert graph.apps["reports"].uid == UID["reports"]
    assert graph.attachments["reports"] == (("p-req", 1),)


@pytest.mark.parametrize(("change", "why"), [
    (lambda d: d.pop("deployment"), "has no `deployment` object"),
    (lambda d: d["deployment"].update(resources={"a": 1}), "`deployment.resources` is not a list"),
    (lambda d: d["deployment"]["resources"].append("x"), r"resources\[\d+\] is a string; a resource is an object"),
    (lambda d: d["deployment"]["resources"].append({"urn": "u"}), r"resources\[\d+\].type is missing"),
    (lambda d: d["deployment"]["resources"].append({"type": ""}), r"resources\[\d+\].type is a string"),
    (lambda d: d["deployment"]["resources"].append({"type": APP, "outputs": [1]}), r"\.outputs is a list"),
    (lambda d: d["deployment"]["resources"].append({"type": POLICY, "outputs": ciphertext()}), r"\.outputs is a secret"),
])
def test_an_export_that_is_unusable_as_a_whole_is_refused_naming_where(change: Any, why: str) -> None:
    doc = handmade_export()
    change(doc)
    with pytest.raises(StateError, match=why):
        graph_from_export(doc)


def test_an_empty_export_is_an_empty_graph() -> None:
    graph = graph_from_export({"deployment": {"resources": None}})
    assert not graph.apps


# -- resources: names, attachments, precedences --------------------------------------------------------------
def resource_app(name: str, uid: str | None, policies: list[Any] | None = None, **props: Any) -> dict[str, Any]:
    return {"type": APP, "id": uid, "props": {"name": name, "type": "self_hosted", "policies": policies or [], **props}}


def test_apps_sharing_a_name_are_kept_apart_by_uid_and_listed_under_the_name() -> None:
    graph = graph_from_resources([resource_app("crm", UID["front"]), resource_app("crm", UID["batch"]),
                                  resource_app("crm", None), resource_app(f"crm [{UID['front']}]", UID["api"]),
                                  resource_app("solo", UID["plain"])])
    assert sorted(graph.apps) == sorted([f"crm [{UID['front']}]", f"crm [{UID['front']}] #2", f"crm [{UID['batch']}]",
                                         "crm [no uid]", "solo"])
    assert graph.apps[f"crm [{UID['front']}]"].uid == UID["api"]  # the app really named so keeps its name


@pytest.mark.parametrize(("precedence", "read"), [(3, 3), (2.0, 2), (2**31 - 1, 2**31 - 1), (2**31, 2),
                                                  (-(2**31), 2), (True, 2), ("1", 2), (None, 2)])
def test_a_precedence_that_makes_no_sense_falls_back_to_its_place(precedence: Any, read: int) -> None:
    graph = graph_from_resources([{"type": POLICY, "id": "p1", "props": {"decision": "allow"}},
                                  {"type": POLICY, "id": "p0", "props": {"decision": "allow"}},
                                  resource_app("a", UID["front"], [{"id": "p0", "precedence": 1},
                                                                   {"id": "p1", "precedence": precedence}])])
    assert dict(graph.attachments["a"])["p1"] == read


def test_attachments_are_ordered_by_precedence() -> None:
    graph = graph_from_resources([resource_app("a", UID["front"], [{"id": "x", "precedence": 3},
                                                                   {"id": "y", "precedence": 1}])])
    assert graph.attachments["a"] == (("y", 1), ("x", 3))


@pytest.mark.parametrize(("entry", "problem"), [
    ({"precedence": 1}, "a.policies[0] has neither an `id` nor rules"),
    ("p1", "a.policies[0] is a string, not a policy reference or an inline policy"),
    (ciphertext(), "a.policies[0] is a secret, not a policy reference or an inline policy"),
])
def test_an_attachment_that_is_neither_a_reference_nor_a_policy_is_unreadable(entry: Any, problem: str) -> None:
    graph = graph_from_resources([dict(resource_app("a", UID["front"], [entry]), path="a")])
    assert graph.apps["a"].unreadable == (problem,)


def test_an_inline_policy_gets_an_id_of_its_app_and_place_and_a_policy_outside_the_state_is_kept() -> None:
    inline = {"decision": "non_identity", "includes": [{"linkedAppToken": {"appUid": UID["batch"]}}]}
    graph = graph_from_resources([resource_app("a", UID["front"], [{"id": "elsewhere", "precedence": 1},
                                                                   dict(inline, precedence=2)]),
                                  resource_app("b", UID["batch"])])
    assert graph.attachments["a"] == (("elsewhere", 1), ("inline:a:1", 2))
    assert graph.policies["inline:a:1"].inline
    assert ("b", "a") in graph.edges()


def test_an_entry_with_rules_and_an_id_of_a_reusable_policy_stays_a_reference() -> None:
    reusable = {"type": POLICY, "id": "p1", "props": {"decision": "non_identity",
                                                      "includes": [{"linkedAppToken": {"appUid": UID["batch"]}}]}}
    copied = {"id": "p1", "decision": "non_identity", "includes": [{"linkedAppToken": {"appUid": UID["front"]}}]}
    graph = graph_from_resources([reusable, resource_app("a", UID["api"], [copied]), resource_app("b", UID["batch"])])
    assert graph.policies["p1"].include == (("linked_app_token", UID["batch"]),)
    assert not graph.policies["p1"].inline


@pytest.mark.parametrize(("rules", "problem"), [
    ({"requires": [{"fooBar": {}}]}, "unknown selector `fooBar` in require"),
    ({"excludes": [{"email": None, "geo": {"country_code": "NL"}, "ip": {"ip": "1.2.3.4"}}]}, "has 2 selectors set"),
    ({"includes": [{}]}, "has 0 selectors set"),
    ({"includes": "everyone"}, "is a string, not a list of rules"),
    ({"includes": [{"linkedAppToken": {"appUid": "not-a-uuid"}}]}, "is not an app uid (a UUID)"),
    ({"includes": [{"linkedAppToken": "x"}]}, "not {appUid: <uid>}"),
    ({"includes": [{"linkedAppToken": {}}]}, "appUid is missing"),
    ({"includes": [{"linked_app_token": {"app_uid": ciphertext()}}]}, "app_uid is a secret"),
    ({"decision": "maybe"}, "is not a policy decision"),
    ({"decision": None}, "decision is missing"),
    ({"includes": [], "include": [{"everyone": {}}]}, "both `includes` and `include` are set, and differ"),
])
def test_a_rule_that_cannot_be_read_makes_its_policy_unreadable_naming_it(rules: dict[str, Any], problem: str) -> None:
    props = {"decision": "non_identity", **rules}
    graph = graph_from_resources([{"type": POLICY, "id": "p1", "props": {k: v for k, v in props.items()
                                                                        if v is not None}}])
    assert any(problem in p for p in graph.policies["p1"].unreadable), graph.policies["p1"].unreadable


def test_an_unknown_selector_in_include_is_only_never_met() -> None:
    graph = graph_from_resources([{"type": POLICY, "id": "p1", "props": {
        "decision": "non_identity", "includes": [{"fooBar": {}}, {"linkedAppToken": {"appUid": UID["front"].upper()}}]}}])
    policy = graph.policies["p1"]
    assert policy.unreadable == ()
    assert policy.include == (("foo_bar", None), ("linked_app_token", UID["front"]))


def test_a_rule_spelled_with_both_spellings_agreeing_is_read() -> None:
    rules = [{"linkedAppToken": {"appUid": UID["front"]}}]
    graph = graph_from_resources([{"type": POLICY, "id": "p1", "props": {"decision": "non_identity",
                                                                        "includes": rules, "include": rules}}])
    assert graph.policies["p1"].unreadable == ()
    assert graph.policies["p1"].linked_uids() == frozenset({UID["front"]})


def test_an_app_without_uid_or_type_is_unreadable_naming_the_field() -> None:
    graph = graph_from_resources([{"type": APP, "props": {"name": "a", "type": 5}, "path": "r[0]"}])
    assert graph.apps["a"].unreadable == ("r[0].type is a number, not a non-empty string",
                                          "r[0]: the app's `id` (its uid) is missing or secret")
    assert graph.apps["a"].type == "unknown"


def test_the_name_falls_back_to_the_resource_name_then_its_id() -> None:
    graph = graph_from_resources([{"type": APP, "id": UID["front"], "name": "urn-name", "props": {"type": "self_hosted"}},
                                  {"type": APP, "id": UID["batch"], "props": {"type": "self_hosted"}}])
    assert sorted(graph.apps) == sorted(["urn-name", UID["batch"]])
    assert graph.apps["urn-name"].uid == UID["front"]


def test_a_uid_is_read_lower_case_from_the_id_or_the_uid_prop() -> None:
    graph = graph_from_resources([{"type": APP, "props": {"name": "a", "type": "self_hosted",
                                                          "uid": UID["front"].upper()}}])
    assert graph.apps["a"].uid == UID["front"]


# -- size limit of a state file -------------------------------------------------------------------------------
def test_a_state_of_exactly_the_size_cap_is_read_and_one_byte_more_is_refused(tmp_path: Any) -> None:
    body = json.dumps({"team_domain": TEAM, "apps": {}}).encode()
    exact = body + b" " * (MAX_STATE_BYTES - len(body))
    assert parse_state(exact, "s.json")["team_domain"] == TEAM
    with pytest.raises(StateError, match="s.json: larger than 64 MiB"):
        parse_state(exact + b" ", "s.json")
    path = tmp_path / "s.json"
    path.write_bytes(exact)
    assert read_state(path).team_domain == TEAM
    path.write_bytes(exact + b" ")
    with pytest.raises(StateError, match="larger than 64 MiB"):
        read_state(path)


@pytest.mark.parametrize(("data", "why"), [(b'{"a": 1, "a": 2}', "appears twice"), (b'{"a": NaN}', "not a JSON number"),
                                           (b"\xff", "not UTF-8 text (byte 0)"), (b"[]", "expected a JSON object"),
                                           (b"{", "not JSON (line 1"), (b"[" * 100000, "nested too deeply"),
                                           (b'{"a": 1' + b"1" * 5000 + b"}", "not readable JSON")])
def test_a_state_that_is_not_one_json_object_is_refused_naming_the_file(data: bytes, why: str) -> None:
    with pytest.raises(StateError, match=f"^s\\.json: .*{re.escape(why)}"):
        parse_state(data, "s.json")


def test_a_file_that_cannot_be_read_is_named(tmp_path: Any) -> None:
    with pytest.raises(StateError, match="missing.json: cannot be read"):
        read_state(tmp_path / "missing.json")


# -- the account reader: account ids, body cap, deadline -------------------------------------------------------
@pytest.mark.parametrize(("source", "account"), [("cloudflare:" + "ab" * 16, "ab" * 16),
                                                 ("cloudflare:" + "AB" * 16, "ab" * 16)])
def test_an_account_id_is_32_hex_characters(source: str, account: str) -> None:
    assert _cloudflare.is_account_source(source)
    assert _cloudflare.account_id_of(source) == account


@pytest.mark.parametrize("source", ["cloudflare:" + "ab" * 15 + "a", "cloudflare:" + "ab" * 16 + "a",
                                    "cloudflare:" + "zz" * 16, "cloudflare:"])
def test_anything_else_is_not_an_account_id(source: str) -> None:
    with pytest.raises(StateError, match="not an account id"):
        _cloudflare.account_id_of(source)


def test_only_the_cloudflare_prefix_names_an_account() -> None:
    assert not _cloudflare.is_account_source("state.json")
    assert not _cloudflare.is_account_source(None)  # type: ignore[arg-type]


def test_a_body_of_exactly_the_cap_is_read_and_one_byte_more_is_refused() -> None:
    far = time.monotonic() + 60
    cap = _cloudflare.BODY_CAP
    assert sum(map(len, _cloudflare._capped(iter([b"x" * (cap - 1), b"x"]), far))) == cap
    with pytest.raises(StateError, match=f"over {cap} bytes"):
        list(_cloudflare._capped(iter([b"x" * cap, b"x"]), far))


def test_a_body_still_arriving_at_the_deadline_is_refused() -> None:
    with pytest.raises(StateError, match="no whole answer within 120 s"):
        list(_cloudflare._capped(iter([b"x"]), time.monotonic() - 0.001))


def test_no_request_starts_once_the_deadline_has_passed() -> None:
    transport = _cloudflare._CappedTransport(time.monotonic() - 0.001)
    with pytest.raises(StateError, match="no answer within 120 s"):
        transport.handle_request(object())
    transport.close()


def test_an_account_is_read_through_the_same_reader_as_a_state() -> None:
    account = _cloudflare.Account("ab" * 16, TEAM,
                                  apps=[{"id": UID["front"], "name": "hr", "type": "self_hosted", "policies": []},
                                        {"id": UID["api"], "name": "pay", "type": "self_hosted",
                                         "policies": [{"id": "p1", "precedence": 1}]}],
                                  policies=[{"id": "p1", "decision": "non_identity",
                                             "include": [{"linked_app_token": {"app_uid": UID["front"]}}]}])
    graph = account.graph()
    assert graph.edges() == frozenset({("hr", "pay")})
    assert graph.team_domain == TEAM


@pytest.mark.parametrize(("env", "url", "why"), [({}, None, "CLOUDFLARE_API_TOKEN: not set"),
                                                 ({"CLOUDFLARE_API_TOKEN": "  "}, None, "not set"),
                                                 ({"CLOUDFLARE_API_TOKEN": "t"}, "http://api.example.com", "use https://")])
def test_reading_an_account_needs_a_token_and_https(env: dict[str, str], url: str | None, why: str) -> None:
    with pytest.raises(StateError, match=why):
        _cloudflare.fetch_account("cloudflare:" + "ab" * 16, api_url=url, environ=env)


@pytest.mark.parametrize(("body", "read"), [
    ({"errors": [{"message": "Authentication error", "code": 10000}, {"message": "second", "code": 7}]},
     "Authentication error (code 10000); second (code 7)"),
    ({"errors": ["not an object", {"message": "kept", "code": 1}]}, "kept (code 1)"),
    ({"errors": []}, "the SDK's message"),
    ({"errors": None}, "the SDK's message"),
    ("not a mapping", "the SDK's message"),
])
def test_an_api_error_is_told_in_the_apis_own_words(body: Any, read: str) -> None:
    class Error:
        message = "the SDK's message"

    error = Error()
    error.body = body  # type: ignore[attr-defined]
    assert _cloudflare._api_errors(error) == read


def test_an_sdk_object_is_read_as_the_json_the_api_sent() -> None:
    class Model:
        def to_dict(self, mode: str) -> dict[str, Any]:
            return {"mode": mode}

    assert _cloudflare._plain(Model()) == {"mode": "json"}
    assert _cloudflare._plain({"a": 1}) == {"a": 1}
    assert _cloudflare._plain(None) == {}
    assert _cloudflare._plain(["a"]) == {}


def test_an_account_is_resources_of_the_provider_types() -> None:
    account = _cloudflare.Account("ab" * 16, None, apps=[{"id": "a1", "name": "x"}], policies=[{"id": "p1"}])
    assert account.resources() == [
        {"type": POLICY, "id": "p1", "props": {"id": "p1"}, "path": "access/policies[0]"},
        {"type": APP, "id": "a1", "props": {"id": "a1", "name": "x"}, "path": "access/apps[0]"}]
    assert account.graph().team_domain is None


def test_each_request_gets_at_most_the_time_left_of_the_read() -> None:
    import httpx

    seen: list[dict[str, float]] = []

    class Inner:
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            seen.append(dict(request.extensions["timeout"]))
            return httpx.Response(200, content=b"{}")

        def close(self) -> None:
            pass

    transport = _cloudflare._CappedTransport(time.monotonic() + 10)
    transport._inner = Inner()  # the network stand-in: the transport under test only caps and decodes
    request = httpx.Request("GET", "https://api.cloudflare.com/client/v4/x",
                            extensions={"timeout": {"connect": 5.0, "read": 30.0, "write": None, "pool": 1.0}})
    response = transport.handle_request(request)
    assert response.content == b"{}"
    [timeouts] = seen
    assert timeouts["connect"] == 5.0 and timeouts["pool"] == 1.0
    assert 9 < timeouts["read"] <= 10 and 9 < timeouts["write"] <= 10
    transport.handle_request(httpx.Request("GET", "https://api.cloudflare.com/client/v4/x"))
    assert set(seen[1]) == {"connect", "read", "write", "pool"} and all(9 < v <= 10 for v in seen[1].values())


def test_a_compressed_answer_is_handed_on_decoded_and_counted_decoded() -> None:
    import gzip

    import httpx

    body = b'{"result": []}'

    class Inner:
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            return httpx.Response(200, headers={"content-encoding": "gzip", "x-kept": "1"}, content=gzip.compress(body))

        def close(self) -> None:
            pass

    transport = _cloudflare._CappedTransport(time.monotonic() + 10)
    transport._inner = Inner()  # the network stand-in: the transport under test only caps and decodes
    response = transport.handle_request(httpx.Request("GET", "https://api.cloudflare.com/client/v4/x"))
    assert response.content == body
    assert "content-encoding" not in response.headers and response.headers["x-kept"] == "1"
    assert response.headers.get("content-length") in (None, str(len(body)))


# -- what an unreadable field is called, exactly ----------------------------------------------------------------
def unreadable_of(props: dict[str, Any], **res: Any) -> tuple[str, ...]:
    graph = graph_from_resources([{"type": APP, "id": UID["front"], "props": {"name": "a", "type": "self_hosted",
                                                                              **props}, "path": "a", **res}])
    return graph.apps["a"].unreadable


@pytest.mark.parametrize(("props", "problems"), [
    ({"policies": "p1"}, ("a.policies is a string, not a list",)),
    ({"policies": {"id": "p1"}}, ("a.policies is an object, not a list",)),
    ({"type": True}, ("a.type is a boolean, not a non-empty string",)),
    ({"type": 5}, ("a.type is a number, not a non-empty string",)),
    ({"type": ""}, ("a.type is a string, not a non-empty string",)),
    ({"policies": [{"id": 5}]}, ("a.policies[0].id is a number, not a non-empty string",)),
])
def test_an_apps_unreadable_field_is_named_by_its_path(props: dict[str, Any], problems: tuple[str, ...]) -> None:
    assert unreadable_of(props) == problems


def policy_problems(props: dict[str, Any]) -> tuple[str, ...]:
    merged = {k: v for k, v in {"decision": "non_identity", **props}.items() if v is not None}
    graph = graph_from_resources([{"type": POLICY, "id": "p1", "props": merged, "path": "p"}])
    return graph.policies["p1"].unreadable


@pytest.mark.parametrize(("props", "problems"), [
    ({"includes": [None]}, ("p.includes[0] is null, not a rule object",)),
    ({"includes": [ciphertext()]}, ("p.includes[0] is a secret, not a rule object",)),
    ({"includes": [{"linkedAppToken": ciphertext()}]}, ("p.includes[0].linkedAppToken is a secret, not {appUid: <uid>}",)),
    ({"includes": [{"linkedAppToken": 5}]}, ("p.includes[0].linkedAppToken is a number, not {appUid: <uid>}",)),
    ({"includes": [{"linkedAppToken": {"appUid": "u" * 100}}]},
     (f"p.includes[0].linkedAppToken.appUid {'u' * 80!r} is not an app uid (a UUID)",)),
    ({"decision": "d" * 50}, (f"p.decision {'d' * 40!r} is not a policy decision (allow, bypass, deny, non_identity)",)),
    ({"decision": None, "includes": [{"everyone": {}}]}, ("p.decision is missing",)),
    ({"requires": "x"}, ("p.requires is a string, not a list of rules",)),
])
def test_a_policys_unreadable_field_is_named_by_its_path(props: dict[str, Any], problems: tuple[str, ...]) -> None:
    assert policy_problems(props) == problems


def test_an_inline_policys_problems_are_named_by_its_place_in_the_app() -> None:
    graph = graph_from_resources([{"type": APP, "id": UID["front"], "path": "a", "props": {
        "name": "a", "type": "self_hosted", "policies": [{"decision": "maybe", "excludes": "x", "precedence": 1}]}}])
    assert graph.policies["inline:a:0"].unreadable == (
        "a.policies[0].decision 'maybe' is not a policy decision (allow, bypass, deny, non_identity)",
        "a.policies[0].excludes is a string, not a list of rules")
    assert graph.apps["a"].unreadable == ()


def test_a_rule_after_an_unreadable_one_is_still_read() -> None:
    graph = graph_from_resources([{"type": POLICY, "id": "p1", "props": {
        "decision": "non_identity", "includes": [ciphertext(), {"linkedAppToken": {"appUid": UID["front"]}}]}}])
    assert graph.policies["p1"].linked_uids() == frozenset({UID["front"]})


def test_a_policy_without_a_decision_has_an_empty_one_and_a_reusable_one_is_not_inline() -> None:
    graph = graph_from_resources([{"type": POLICY, "id": "p1", "props": {}},
                                  {"type": POLICY, "props": {"id": "p2", "decision": "allow"}}])
    assert graph.policies["p1"].decision == ""
    assert graph.policies["p2"].inline is False and graph.policies["p2"].name == "p2"


def test_an_inline_policy_with_only_a_decision_is_an_inline_policy() -> None:
    graph = graph_from_resources([resource_app("a", UID["front"], [{"decision": "allow", "precedence": 1}])])
    assert graph.attachments["a"] == (("inline:a:0", 1),)
    assert graph.apps["a"].unreadable == ()


@pytest.mark.parametrize("selector", ["LinkedAppToken", "linkedAppToken", "linked_app_token"])
def test_a_selector_in_any_case_style_is_read(selector: str) -> None:
    graph = graph_from_resources([{"type": POLICY, "id": "p1", "props": {
        "decision": "non_identity", "requires": [{selector: {"appUid": UID["front"]}}]}}])
    assert graph.policies["p1"].require == (("linked_app_token", UID["front"]),)
    assert graph.policies["p1"].unreadable == ()


def test_apps_sharing_a_name_and_a_uid_are_both_kept() -> None:
    graph = graph_from_resources([resource_app("crm", UID["front"]), resource_app("crm", UID["front"])])
    assert sorted(graph.apps) == [f"crm [{UID['front']}]", f"crm [{UID['front']}] #2"]


def test_resources_are_named_by_their_path_else_their_name_else_their_type() -> None:
    for res, at in (({"path": "p", "name": "n"}, "p"), ({"name": "n"}, "n"), ({}, APP)):
        graph = graph_from_resources([{"type": APP, "props": {"name": "a", "type": "self_hosted"}, **res}])
        assert graph.apps["a"].unreadable == (f"{at}: the app's `id` (its uid) is missing or secret",)
    nameless = graph_from_resources([{"type": APP, "props": {"type": "self_hosted"}}])
    assert list(nameless.apps) == ["?"]


def test_props_that_are_not_an_object_read_as_empty() -> None:
    graph = graph_from_resources([{"type": APP, "id": UID["front"], "name": "a", "props": "x"}])
    assert graph.apps["a"].type == "unknown" and "a.type is missing" in graph.apps["a"].unreadable


# -- export documents: names, stack outputs ---------------------------------------------------------------------
def test_an_app_without_a_name_in_its_outputs_is_named_after_its_urn() -> None:
    doc = handmade_export()
    res = next(r for r in doc["deployment"]["resources"] if r.get("urn", "").endswith("::plain"))
    del res["outputs"]["name"]
    res["urn"] = f"urn:pulumi:prod::other::{APP}::plain-from-urn"
    assert "plain-from-urn" in graph_from_export(doc).apps


def test_an_export_without_a_stack_resource_has_no_team_domain() -> None:
    doc = handmade_export()
    doc["deployment"]["resources"] = [r for r in doc["deployment"]["resources"] if r["type"] != "pulumi:pulumi:Stack"]
    assert graph_from_export(doc).team_domain is None


def test_apps_output_entries_in_an_export_are_managed_elsewhere_and_named_by_their_path() -> None:
    doc = handmade_export()
    stack_outputs(doc)["apps"] = {"legacy": {"type": "self_hosted", "uid": OTHER_UID}, "hidden": "[secret]"}
    graph = graph_from_export(doc)
    assert graph.apps["legacy"].managed is False
    assert graph.apps["hidden"].unreadable == ("deployment.resources[0].outputs.apps.hidden is a secret",
                                               "deployment.resources[0].outputs.apps.hidden.type is missing")


@pytest.mark.parametrize("hidden", ["[secret]", "ciphertext"])
def test_outputs_whose_apps_are_secret_say_so(hidden: str) -> None:
    apps = ciphertext() if hidden == "ciphertext" else hidden
    with pytest.raises(StateError, match=r"the `apps` output is a secret .* run `pulumi stack output --json "
                                         r"--show-secrets`, or pass `pulumi stack export`"):
        graph_from_outputs(outputs(apps=apps))


def test_outputs_do_not_record_attachments_an_export_does() -> None:
    assert graph_from_outputs(outputs()).attachments_recorded is False
    assert graph_from_export(handmade_export()).attachments_recorded is True


# -- reading a file or standard input ---------------------------------------------------------------------------
class EndlessInput:
    """Standard input that never ends (as /dev/zero): only a bounded read returns."""

    class buffer:  # noqa: N801 - sys.stdin.buffer's name
        @staticmethod
        def read(size: int | None = -1) -> bytes:
            if size is None or size < 0:
                raise AssertionError("an unbounded read of standard input never returns")
            return b" " * size


def test_standard_input_is_read_up_to_the_cap_and_named_in_refusals(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", EndlessInput)
    with pytest.raises(StateError, match=r"^standard input: larger than 64 MiB; give the output of"):
        read_state("-")


def test_standard_input_of_exactly_the_cap_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    body = json.dumps({"team_domain": TEAM, "apps": {}}).encode()
    data = body + b" " * (MAX_STATE_BYTES - len(body))

    class Exact:
        class buffer:  # noqa: N801 - sys.stdin.buffer's name
            @staticmethod
            def read(size: int) -> bytes:
                return data[:size]

    monkeypatch.setattr("sys.stdin", Exact)
    assert read_state("-").team_domain == TEAM


def test_a_refusal_names_the_file_and_how_to_get_a_good_one(tmp_path: Any) -> None:
    path = tmp_path / "s.json"
    path.write_text("{")
    with pytest.raises(StateError) as caught:
        read_state(path)
    assert str(caught.value) == (f"{path}: not JSON (line 1: Expecting property name enclosed in double quotes); "
                                 "give the output of `pulumi stack export` or `pulumi stack output --json`")


# -- the account reader against the loopback fake of the API ------------------------------------------------
def test_the_token_comes_from_the_environment_given_and_every_list_asks_for_full_pages(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from tests._fake_cloudflare import ACCOUNT, TOKEN, FakeCloudflare, account_from_export
    from tests._verifier_support import dev_export

    monkeypatch.delenv("CLOUDFLARE_API_TOKEN", raising=False)
    with FakeCloudflare(account_from_export(dev_export())) as api:
        graph = _cloudflare.read_account(f"cloudflare:{ACCOUNT}", api_url=api.url,
                                         environ={"CLOUDFLARE_API_TOKEN": f" {TOKEN} "})
        lists = [query for path, query in api.requests if path.endswith(("/apps", "/policies"))]
    assert ("hr-portal", "payroll-api") in graph.edges()
    assert lists and all(query.get("per_page") == [str(_cloudflare.PER_PAGE)] for query in lists)


def test_an_https_api_that_cannot_be_reached_is_named_by_its_host() -> None:
    with pytest.raises(StateError) as caught:
        _cloudflare.fetch_account("cloudflare:" + "ab" * 16, api_url="https://127.0.0.1:1/client/v4",
                                  environ={"CLOUDFLARE_API_TOKEN": "t"})
    assert str(caught.value) == f"cloudflare:{'ab' * 16}: cannot reach the Cloudflare API at 127.0.0.1:1"


def test_an_api_error_without_body_or_message_is_told_as_itself() -> None:
    class Bare(Exception):
        pass

    assert _cloudflare._api_errors(Bare("plain words")) == "plain words"


def test_a_body_in_many_pieces_is_handed_on_whole() -> None:
    import httpx

    class Pieces(httpx.SyncByteStream):
        def __iter__(self) -> Any:
            yield from (b'{"result": ', b"[1, 2", b"]}")

    class Inner:
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            return httpx.Response(200, stream=Pieces())

        def close(self) -> None:
            pass

    transport = _cloudflare._CappedTransport(time.monotonic() + 10)
    transport._inner = Inner()  # the network stand-in: the transport under test only caps and decodes
    response = transport.handle_request(httpx.Request("GET", "https://api.cloudflare.com/client/v4/x"))
    assert response.content == b'{"result": [1, 2]}' and response.status_code == 200


@pytest.mark.filterwarnings("ignore:Pydantic serializer warnings")  # the SDK's model expects a string here
@pytest.mark.parametrize("domain", ["", 5])
def test_an_organization_without_a_readable_auth_domain_gives_no_team_domain(
        domain: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests._fake_cloudflare import ACCOUNT, TOKEN, FakeCloudflare, account_from_export
    from tests._verifier_support import dev_export

    account = account_from_export(dev_export())
    account["organization"] = {**account["organization"], "auth_domain": domain}
    with FakeCloudflare(account) as api:
        read = _cloudflare.fetch_account(f"cloudflare:{ACCOUNT}", api_url=api.url,
                                         environ={"CLOUDFLARE_API_TOKEN": TOKEN})
    assert read.team_domain is None


# -- more of the readers' choices -----------------------------------------------------------------------------
def test_an_apps_output_entry_keeps_how_an_app_managed_elsewhere_is_found() -> None:
    doc = outputs(links=[])
    doc["apps"]["ext"] = {"type": "saas", "uid": UID["portal"], "clientId": "cid-camel", "managed": False,
                          "lookup": "Portal", "stack": "org/portal/prod"}
    ext = graph_from_outputs(doc).apps["ext"]
    assert (ext.client_id, ext.lookup, ext.stack) == ("cid-camel", "Portal", "org/portal/prod")
    doc["apps"]["ext"] = {"type": "saas", "uid": UID["portal"], "client_id": "cid-snake", "lookup": 5, "stack": ""}
    ext = graph_from_outputs(doc).apps["ext"]
    assert (ext.client_id, ext.lookup, ext.stack) == ("cid-snake", None, None)


def test_a_rule_after_one_with_two_selectors_is_still_read() -> None:
    graph = graph_from_resources([{"type": POLICY, "id": "p1", "props": {"decision": "non_identity", "includes": [
        {"email": {"email": "a@b.c"}, "everyone": {}}, {"linkedAppToken": {"appUid": UID["front"]}}]}}])
    assert graph.policies["p1"].linked_uids() == frozenset({UID["front"]})


def test_a_secret_list_is_named_by_its_path() -> None:
    assert unreadable_of({"policies": ciphertext()}) == ("a.policies is a secret",)
    assert policy_problems({"includes": ciphertext()}) == ("p.includes is a secret",)
    assert policy_problems({"includes": [], "include": [{"everyone": {}}]}) == (
        "p: both `includes` and `include` are set, and differ",)


def test_a_name_that_is_not_a_string_is_not_a_name() -> None:
    graph = graph_from_resources([{"type": APP, "id": UID["front"], "name": "from-resource",
                                   "props": {"name": 5, "type": "self_hosted"}}])
    assert list(graph.apps) == ["from-resource"]


def test_an_app_with_neither_a_name_nor_a_urn_is_named_by_its_id() -> None:
    doc = handmade_export()
    res = next(r for r in doc["deployment"]["resources"] if r.get("urn", "").endswith("::plain"))
    del res["outputs"]["name"]
    del res["urn"]
    assert UID["plain"] in graph_from_export(doc).apps


def test_live_state_is_the_stacks_export_through_the_automation_api(monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    from pulumi import automation

    from linked_apps.state._pulumi import read_stack

    asked: list[tuple[str, str]] = []

    class Stack:  # the Automation API's Stack, standing in for the CLI; the deployment is a real export's
        def export_stack(self) -> automation.Deployment:
            doc = handmade_export()
            return automation.Deployment(version=doc["version"], deployment=doc["deployment"])

    def select_stack(*, stack_name: str, work_dir: str) -> Stack:
        asked.append((stack_name, work_dir))
        return Stack()

    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: "/usr/bin/pulumi" if name == "pulumi" else None)
    monkeypatch.setattr(automation, "select_stack", select_stack)
    from pathlib import Path

    graph = read_stack("prod", Path("/srv/infra"))
    assert asked == [("prod", "/srv/infra")]
    assert ("front", "api") in graph.edges() and graph.team_domain == TEAM


def test_a_stack_that_cannot_be_exported_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    from pulumi import automation

    from linked_apps.state._pulumi import read_stack

    def select_stack(**_: Any) -> Any:
        raise RuntimeError("  no stack named 'prod' found  ")

    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: "/usr/bin/pulumi")
    monkeypatch.setattr(automation, "select_stack", select_stack)
    with pytest.raises(StateError) as caught:
        read_stack("prod", ".")
    assert str(caught.value) == "--stack prod: cannot export the stack's state: no stack named 'prod' found"


def test_an_api_answering_with_a_redirect_is_not_followed() -> None:
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from tests._fake_cloudflare import ACCOUNT, TOKEN, FakeCloudflare, account_from_export
    from tests._verifier_support import dev_export

    with FakeCloudflare(account_from_export(dev_export())) as api:
        class Redirect(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                self.send_response(302)
                self.send_header("location", api.url.rsplit("/client/v4", 1)[0] + self.path)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        redirector = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
        threading.Thread(target=redirector.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        try:
            with pytest.raises(StateError, match="302"):
                _cloudflare.fetch_account(f"cloudflare:{ACCOUNT}",
                                          api_url=f"http://127.0.0.1:{redirector.server_address[1]}/client/v4",
                                          environ={"CLOUDFLARE_API_TOKEN": TOKEN})
            assert api.requests == []  # the API the redirect pointed at was never asked
        finally:
            redirector.shutdown()
            redirector.server_close()


# -- after the merges: service tokens, two versions of one policy, the account's proxy --------------------------
# Rows in the reader's own input form `{"type", "id", "name", "path", "props"}`, as graph_from_export builds them
# from a stack export (props: a resource's outputs, camelCase as pulumi-cloudflare 6 names them) and as the account
# reader builds them from the API (snake_case, e.g. `client_id`).
def _token_row(**props: Any) -> dict[str, Any]:
    return {"type": "cloudflare:index/zeroTrustAccessServiceToken:ZeroTrustAccessServiceToken", "id": "st-1",
            "name": "ci-urn-name", "props": props}


@pytest.mark.parametrize(("props", "named"), [
    ({"clientId": "cid.access", "name": "ci deploy"}, "ci deploy"),
    ({"client_id": "cid.access", "name": "ci deploy"}, "ci deploy"),   # the API's spelling
    ({"clientId": "cid.access"}, "ci-urn-name"),                       # no name in the props: the URN's
])
def test_a_service_token_is_named_by_its_props_then_its_urn(props: dict[str, Any], named: str) -> None:
    assert graph_from_resources([_token_row(**props)]).service_tokens == {"cid.access": named}


def test_a_service_token_with_no_name_anywhere_is_named_by_its_id() -> None:
    row = {**_token_row(clientId="cid.access"), "name": None}
    assert graph_from_resources([row]).service_tokens == {"cid.access": "st-1"}


def _policy_row(pid: str, **props: Any) -> dict[str, Any]:
    return {"type": POLICY, "id": pid, "path": f"policies[{pid}]", "props": {"name": pid, **props}}


def _app_with(entry: dict[str, Any]) -> dict[str, Any]:
    return {"type": APP, "id": UID["api"], "path": "apps[api]",
            "props": {"name": "api", "type": "self_hosted", "policies": [entry]}}


LINKED = {"linkedAppToken": {"appUid": UID["front"]}}


@pytest.mark.parametrize(("copy_of", "another"), [
    ({"decision": "allow"}, "decision"),
    ({"requires": [LINKED]}, "require"),
    ({"decision": "allow", "excludes": [LINKED]}, "decision, exclude"),
])
def test_an_attachment_repeating_a_policy_differently_makes_it_unreadable(copy_of: dict[str, Any],
                                                                          another: str) -> None:
    rows = [_policy_row("p1", decision="non_identity", includes=[LINKED]),
            _app_with({"id": "p1", "precedence": 1, **copy_of})]
    policy = graph_from_resources(rows).policies["p1"]
    assert policy.unreadable == (f"apps[api].policies[0] repeats policy 'p1' with another {another}",)


def test_an_attachment_repeating_a_policy_faithfully_changes_nothing() -> None:
    rows = [_policy_row("p1", decision="non_identity", includes=[LINKED]),
            _app_with({"id": "p1", "precedence": 1, "decision": "non_identity", "includes": [LINKED]})]
    assert graph_from_resources(rows).policies["p1"].unreadable == ()


def test_an_attachment_repeating_a_policy_unreadably_makes_it_unreadable() -> None:
    rows = [_policy_row("p1", decision="non_identity", includes=[LINKED]),
            _app_with({"id": "p1", "precedence": 1, "includes": [LINKED, 7, "x"]})]
    (why,) = graph_from_resources(rows).policies["p1"].unreadable
    assert why == ("apps[api].policies[0] repeats policy 'p1' unreadably: apps[api].policies[0].includes[1] is a "
                   "number, not a rule object; apps[api].policies[0].includes[2] is a string, not a rule object")


def test_two_policies_with_one_id_keep_the_first_and_mark_it() -> None:
    rows = [_policy_row("p1", decision="non_identity", includes=[LINKED]), _policy_row("p1", decision="allow")]
    policy = graph_from_resources(rows).policies["p1"]
    assert policy.decision == "non_identity" and policy.unreadable == ("two policies in the state have id 'p1'",)


def test_all_proxy_serves_when_no_scheme_proxy_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("ALL_PROXY", "http://proxy.corp.example:3128")
    assert _cloudflare._proxy_for("https://api.cloudflare.com/client/v4") == "http://proxy.corp.example:3128"


def test_the_account_transport_goes_through_the_proxy_it_is_given() -> None:
    import httpcore

    assert isinstance(_cloudflare._CappedTransport(time.monotonic() + 1, proxy="http://127.0.0.1:9")._inner._pool,
                      httpcore.HTTPProxy)
    assert not isinstance(_cloudflare._CappedTransport(time.monotonic() + 1)._inner._pool, httpcore.HTTPProxy)
