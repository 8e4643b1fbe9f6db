"""Rules and paths decisions that mutation testing (`./dev mutate`) found no test defending: each test here fails
on a mutant of linked_apps.model.rules or linked_apps.model.paths that survived the older tests."""

from __future__ import annotations

from typing import Any

import pytest

from linked_apps.model.graph import App, Link, Policy, TrustGraph
from linked_apps.model.paths import explain
from linked_apps.model.rules import (
    LINKED_APP_TOKEN,
    NON_IDENTITY,
    AppFacts,
    LinkRef,
    check_app_uid,
    check_aud_tag,
    check_links,
    check_team_domain,
    creation_order,
    deferred_links,
    evaluate_linked_policy,
    identity_problems,
    is_loopback,
    is_loopback_http,
    redirect_uri_problem,
    self_hosted_place_problem,
)

SH, SAAS = AppFacts("self_hosted"), AppFacts("saas")
UID_A = "00000000-0000-4000-8000-00000000000a"
UID_B = "00000000-0000-4000-8000-00000000000b"


# -- redirect URIs and loopback -------------------------------------------------------------------------------
@pytest.mark.parametrize("uris", [[], ()])
def test_a_saas_app_needs_at_least_one_redirect_uri(uris: list[str]) -> None:
    assert redirect_uri_problem(uris) == "give at least one `redirectUris` entry (the OIDC callback of the SaaS app)"
    assert redirect_uri_problem(uris, "redirect_uris") == (
        "give at least one `redirect_uris` entry (the OIDC callback of the SaaS app)")


@pytest.mark.parametrize("uri", ["https://crm.example.com/cb", "http://localhost:8080/cb", "http://localhost/cb",
                                 "http://127.0.0.1:3000/cb"])
def test_https_or_plain_http_to_this_machine_is_a_redirect_uri(uri: str) -> None:
    assert redirect_uri_problem([uri]) is None
    assert redirect_uri_problem(["https://ok.example.com/cb", uri]) is None


@pytest.mark.parametrize("uri", ["http://crm.example.com/cb", "ftp://x", "crm.example.com", "", "HTTPS://x", 5, None])
def test_anything_else_is_not_a_redirect_uri_wherever_it_stands(uri: object) -> None:
    assert redirect_uri_problem([uri]) == f"{uri!r} is not an absolute https:// redirect URI"  # type: ignore[list-item]
    assert redirect_uri_problem(["https://ok.example.com/cb", uri]) is not None  # type: ignore[list-item]


@pytest.mark.parametrize(("url", "local"), [("http://localhost:8080/x", True), ("http://127.0.0.1/x", True),
                                            ("http://127.9.8.7:1/x", True), ("http://[::1]:5/x", True),
                                            ("https://localhost/x", True), ("http://10.0.0.1/x", False),
                                            ("http://localhost.evil.com/x", False), ("http://example.com", False),
                                            ("http://[::2]/x", False), ("not a url", False), ("", False)])
def test_loopback_is_this_machine_only(url: str, local: bool) -> None:
    assert is_loopback(url) is local
    assert is_loopback_http(url) is (local and url.startswith("http://"))


def test_plain_http_is_never_loopback_http_elsewhere_and_https_never_is() -> None:
    assert not is_loopback_http("https://127.0.0.1/x")
    assert not is_loopback_http("http://192.168.1.1/x")


def test_a_self_hosted_app_needs_a_domain_or_destinations() -> None:
    assert self_hosted_place_problem(None, None) == "`domain` (e.g. payroll.acme.com) or `destinations`"
    assert self_hosted_place_problem("", []) is not None
    assert self_hosted_place_problem("pay.acme.com", None) is None
    assert self_hosted_place_problem(None, [{"uri": "pay.acme.com"}]) is None


# -- identities ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("value", "host"), [("acme.cloudflareaccess.com", "acme.cloudflareaccess.com"),
                                             (" ACME.cloudflareaccess.com ", "acme.cloudflareaccess.com"),
                                             ("a-1.b", "a-1.b")])
def test_a_team_domain_is_a_bare_host(value: str, host: str) -> None:
    assert check_team_domain(value) == host


@pytest.mark.parametrize("value", ["https://acme.cloudflareaccess.com", "http://acme.cloudflareaccess.com",
                                   "acme.cloudflareaccess.com/", "acme", "-acme.com", "acme-.com", "ac me.com", ""])
def test_anything_but_a_bare_host_is_not_a_team_domain(value: str) -> None:
    with pytest.raises(ValueError, match="not a team domain"):
        check_team_domain(value)


def test_an_app_uid_is_a_uuid_and_an_aud_tag_is_named_as_the_wrong_thing() -> None:
    assert check_app_uid(" " + UID_A.upper() + " ") == UID_A
    with pytest.raises(ValueError, match="this is an AUD tag"):
        check_app_uid("ab" * 32)
    with pytest.raises(ValueError, match="is not an app uid"):
        check_app_uid("c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6")
    assert check_aud_tag(" " + "AB" * 32) == "ab" * 32
    for bad in ("ab" * 31, "ab" * 33, UID_A, "zz" * 32):
        with pytest.raises(ValueError, match="is not an AUD tag"):
            check_aud_tag(bad)


def test_two_apps_with_one_identity_are_named_once_per_shared_identity() -> None:
    found = identity_problems({"crm": [("uid", UID_A), ("name", "CRM")], "hr": [("uid", UID_A), ("uid", UID_A)],
                               "pay": [("stack", "org/p/prod")], "ops": [("stack", "org/p/prod")],
                               "solo": [("aud", "ab" * 32)]})
    assert found == [f"apps 'crm' and 'hr' are one Cloudflare app (the same uid '{UID_A}'); declare it once",
                     "apps 'pay' and 'ops' are one Cloudflare app (the same stack reference 'org/p/prod'); "
                     "declare it once"]
    assert identity_problems({"a": [("aud", "x")], "b": [("aud", "x")]}) == [
        "apps 'a' and 'b' are one Cloudflare app (the same AUD tag 'x'); declare it once"]
    assert identity_problems({"a": [("name", "x")], "b": [("name", "x")]})[0].endswith(
        "(the same Cloudflare name 'x'); declare it once")


# -- links: every violation names its apps ------------------------------------------------------------------
@pytest.mark.parametrize(("edges", "deferred"), [
    ([("a", "b"), ("b", "a")], [("b", "a")]),
    ([("a", "b"), ("b", "c"), ("c", "a")], [("c", "a")]),
    ([("x", "a"), ("a", "b"), ("b", "c"), ("c", "b")], [("c", "b")]),
    ([("a", "b"), ("b", "a"), ("c", "d"), ("d", "c")], [("b", "a"), ("d", "c")]),
])
def test_each_cycle_is_broken_at_its_back_edge_in_name_order_and_is_no_violation(
        edges: list[tuple[str, str]], deferred: list[tuple[str, str]]) -> None:
    apps = {n: SH for e in edges for n in e}
    assert [v for v in check_links(apps, [LinkRef(a, b) for a, b in edges]) if v.rule == "cycle"] == []
    assert deferred_links(apps, edges) == deferred
    rest = [e for e in edges if e not in deferred]
    assert sorted(creation_order(apps, rest)) == sorted(apps)  # what is left builds in one deployment


def test_a_diamond_is_no_cycle() -> None:
    edges = [("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")]
    assert check_links({n: SH for n in "abcd"}, [LinkRef(a, b) for a, b in edges]) == []


@pytest.mark.parametrize("facts", [{"a": SH, "b": SAAS}, {"a": SH, "b": AppFacts("self_hosted", managed=False)},
                                   {"a": AppFacts("self_hosted", managed=False), "b": SH}])
def test_a_loop_through_an_app_that_cannot_be_attached_to_here_is_no_cycle(facts: dict[str, AppFacts]) -> None:
    found = check_links(facts, [LinkRef("a", "b"), LinkRef("b", "a")])
    assert "cycle" not in [v.rule for v in found]


def test_each_violation_names_the_apps_it_is_about() -> None:
    facts = {"hr": SH, "mcp": SAAS, "kiosk": AppFacts("ssh"), "ext": AppFacts("self_hosted", managed=False)}
    found = check_links(facts, [LinkRef("hr", "mcp"), LinkRef("hr", "ext"), LinkRef("kiosk", "hr"),
                                LinkRef("hr", "hr"), LinkRef("hr", "nope", "links[4]"), LinkRef("kiosk", "hr")])
    assert [(v.rule, v.apps) for v in found] == [
        ("target-not-self-hosted", ("hr", "mcp")), ("target-not-managed", ("hr", "ext")),
        ("source-cannot-send-token", ("kiosk", "hr")), ("self-link", ("hr",)), ("unknown-app", ("hr", "nope")),
        ("duplicate-link", ("kiosk", "hr"))]
    assert found[4].message.startswith("links[4]: link hr -> nope: `nope` is not declared")
    assert "(first at link kiosk -> hr)" in found[5].message


def test_a_saas_target_that_also_cannot_be_sent_from_is_reported_both_ways() -> None:
    found = check_links({"k": AppFacts("ssh"), "m": SAAS}, [LinkRef("k", "m")])
    assert [v.rule for v in found] == ["target-not-self-hosted", "source-cannot-send-token"]


def test_an_unknown_name_gets_no_hint_when_nothing_is_close() -> None:
    [v] = check_links({"payroll": SH}, [LinkRef("payroll", "zzzzzz")])
    assert "did you mean" not in v.message


def test_creation_order_is_by_name_among_apps_that_are_ready() -> None:
    assert creation_order(["c", "b", "a"], []) == ["a", "b", "c"]
    assert creation_order(["a", "b", "c", "z"], [("z", "a"), ("z", "a"), ("x", "a")]) == ["b", "c", "z", "a"]
    assert creation_order(["b", "a", "a"], [("b", "a")]) == ["b", "a"]


# -- policy evaluation ---------------------------------------------------------------------------------------
def rule(uid: str) -> tuple[str, str | None]:
    return (LINKED_APP_TOKEN, uid)


@pytest.mark.parametrize(("include", "require", "exclude", "result"), [
    ([rule(UID_B), rule(UID_A)], [], [], (True, "an include rule names the source app")),
    ([rule(UID_A)], [rule(UID_A)], [], (True, "an include rule names the source app")),
    ([rule(UID_A)], [rule(UID_A), rule(UID_B)], [], (False, "a require rule is not met (another app)")),
    ([rule(UID_A)], [("email", "ann@acme.com")], [],
     (False, "a require rule is not met (a email rule this verifier cannot evaluate)")),
    ([rule(UID_A)], [], [rule(UID_B)], (True, "an include rule names the source app")),
    ([rule(UID_A)], [], [rule(UID_A)], (False, "an exclude rule names the source app")),
    ([rule(UID_A)], [], [("geo", "NL")], (False, "an exclude rule (geo) cannot be evaluated offline, so it is "
                                                 "taken to match")),
    ([("email", UID_A)], [], [], (False, "no include rule names the source app")),
    ([], [], [], (False, "no include rule names the source app")),
    ([(LINKED_APP_TOKEN, None)], [], [], (False, "no include rule names the source app")),
])
def test_a_linked_policy_is_judged_as_access_would(include: list, require: list, exclude: list,
                                                   result: tuple[bool, str]) -> None:
    assert evaluate_linked_policy(NON_IDENTITY, include, require, exclude, frozenset({UID_A})) == result


@pytest.mark.parametrize("decision", ["allow", "bypass", "deny", "", "NON_IDENTITY"])
def test_only_a_service_auth_policy_grants_through_a_linked_rule(decision: str) -> None:
    assert evaluate_linked_policy(decision, [rule(UID_A)], [], [], frozenset({UID_A})) == (
        False, f"decision is {decision!r}, and a linked_app_token rule grants only under 'non_identity'")


# -- explain: a hop is judged as Access would ----------------------------------------------------------------
def hop_graph(target_type: str) -> TrustGraph:
    admits = Policy("p1", "hr may call", NON_IDENTITY, include=((LINKED_APP_TOKEN, UID_A),))
    return TrustGraph([App("hr", "self_hosted", uid=UID_A), App("dst", target_type, uid=UID_B)],
                      [Link("hr", "dst", "p1", "hr may call")], policies={"p1": admits},
                      attachments={"dst": (("p1", 1),)})


@pytest.mark.parametrize("target_type", ["saas", "ssh", "bookmark"])
def test_a_hop_into_an_app_that_is_not_self_hosted_never_grants_whatever_its_policy_says(target_type: str) -> None:
    [hop] = explain(hop_graph(target_type), "hr", "dst").hops
    assert hop.grants is False
    assert hop.reason == (f"`dst` is a {target_type} app; Cloudflare honours linked_app_token rules only on "
                          "self-hosted apps")
    assert hop.precedence == 1 and hop.policy is not None


def test_a_hop_into_a_self_hosted_app_is_judged_by_its_policy() -> None:
    [hop] = explain(hop_graph("self_hosted"), "hr", "dst").hops
    assert (hop.grants, hop.reason, hop.precedence) == (True, "an include rule names the source app", 1)
    assert hop.header == "Cf-Access-Token"


def test_a_hop_from_a_source_without_uid_never_grants() -> None:
    graph = hop_graph("self_hosted")
    graph = TrustGraph([App("hr", "self_hosted"), graph.apps["dst"]], graph.links, policies=graph.policies,
                       attachments=graph.attachments)
    [hop] = explain(graph, "hr", "dst").hops
    assert hop.grants is False


def test_a_hop_whose_policy_is_attached_elsewhere_has_no_precedence() -> None:
    graph = hop_graph("self_hosted")
    graph = TrustGraph(graph.apps.values(), graph.links, policies=graph.policies,
                       attachments={"dst": (("other", 1),)})
    [hop] = explain(graph, "hr", "dst").hops
    assert hop.precedence is None


# -- names a person must read ----------------------------------------------------------------------------------
from linked_apps.model.rules import (  # noqa: E402
    app_name_problem,
    linked_policy_name,
    look_alike_problems,
    policy_attachments,
    printable,
    shown,
)


@pytest.mark.parametrize(("name", "problem"), [
    ("hr\u200bportal", "app name 'hr\\u200bportal' holds U+200B (ZERO WIDTH SPACE), an invisible format character "
                       "(bidi or zero-width); names must be printable text that reads as what it is: remove the "
                       "character"),
    ("hr\nportal", "app name 'hr\\nportal' holds U+000A, a control character; names must be printable text that "
                   "reads as what it is: remove the character"),
    ("hr\ud800", "app name 'hr\\ud800' holds U+D800, a lone surrogate; names must be printable text that reads as "
                 "what it is: remove the character"),
    ("hr\u3164", "app name 'hr\\u3164' holds U+3164 (HANGUL FILLER), an invisible or blank character; names must be "
                 "printable text that reads as what it is: remove the character"),
    ("hr\u00a0x", "app name 'hr\\xa0x' holds U+00A0 (NO-BREAK SPACE), a space other than U+0020; names must be "
                  "printable text that reads as what it is: remove the character"),
    ("hr\U000e0100", "app name 'hr\\U000e0100' holds U+E0100 (VARIATION SELECTOR-17), an invisible or blank "
                     "character; names must be printable text that reads as what it is: remove the character"),
    ("\ue000", "app name '\\ue000' holds U+E000, a private-use character; names must be printable text that reads "
               "as what it is: remove the character"),
    ("a\u2028", "app name 'a\\u2028' holds U+2028 (LINE SEPARATOR), a line separator; names must be printable text "
                "that reads as what it is: remove the character"),
    ("a\u2029", "app name 'a\\u2029' holds U+2029 (PARAGRAPH SEPARATOR), a paragraph separator; names must be "
                "printable text that reads as what it is: remove the character"),
    ("a\U000effff", "app name 'a\\U000effff' holds U+EFFFF, an unassigned code point; names must be printable text "
                    "that reads as what it is: remove the character"),
    (" hr", "app name ' hr' must be non-empty with no surrounding spaces (it is the Cloudflare name)"),
    ("hr ", "app name 'hr ' must be non-empty with no surrounding spaces (it is the Cloudflare name)"),
    ("", "app name '' must be non-empty with no surrounding spaces (it is the Cloudflare name)"),
    ("   ", "app name '   ' must be non-empty with no surrounding spaces (it is the Cloudflare name)"),
])
def test_a_name_that_does_not_read_as_what_it_is_is_refused_naming_the_character(name: str, problem: str) -> None:
    assert app_name_problem(name) == problem


@pytest.mark.parametrize("name", ["hr portal", "a", "x\u0301", "\u1160x"[1:], "café", "給与"])
def test_a_name_that_reads_as_itself_passes(name: str) -> None:
    assert app_name_problem(name) is None


@pytest.mark.parametrize(("text", "out"), [("tab\there", "tab\\u0009here"), ("nbsp\u00a0", "nbsp\\u00a0"),
                                           ("ok ünï", "ok ünï"), ("\u3164", "\\u3164"), ("\U000e0100", "\\U000e0100"),
                                           ("\U0001f600", "\U0001f600"), ("a b", "a b")])
def test_printable_escapes_exactly_what_cannot_be_read(text: str, out: str) -> None:
    assert printable(text) == out


def test_look_alikes_are_named_in_pairs_with_the_first_seen_first() -> None:
    names = ["paypal", "p\u0430yp\u0430l", "corn", "com", "unique", "p\u0430ypal"]
    assert look_alike_problems(names) == [
        "app names 'paypal' and 'p\\u0430yp\\u0430l' look alike (the same Unicode TR39 skeleton), so a reviewer "
        "cannot tell them apart; rename one",
        "app names 'corn' and 'com' look alike (the same Unicode TR39 skeleton), so a reviewer cannot tell them "
        "apart; rename one",
        "app names 'paypal' and 'p\\u0430ypal' look alike (the same Unicode TR39 skeleton), so a reviewer cannot "
        "tell them apart; rename one"]
    assert look_alike_problems(["a", "a"]) == []


def test_shown_quotes_in_ascii_and_the_linked_policy_is_named_for_its_source() -> None:
    assert shown("hr-p\u043ertal") == "'hr-p\\u043ertal'"
    assert linked_policy_name("hr") == "Linked app token: hr"


def test_policy_attachments_keep_deploy_time_values_by_identity() -> None:
    first, second = object(), object()
    assert policy_attachments([first], [second, first]) == [{"id": first, "precedence": 1},
                                                            {"id": second, "precedence": 2}]


# -- the trust diff: what a name stands for ---------------------------------------------------------------
from linked_apps.review.diff import app_changes, diff_trust, resolve_identities  # noqa: E402


def changes(desired: App, deployed: App) -> list[tuple[str, object, object]]:
    return [(c.field, c.before, c.after) for c in app_changes(desired, deployed)]


def test_a_uid_is_compared_only_where_both_sides_know_it() -> None:
    assert changes(App("a", "self_hosted"), App("a", "self_hosted", uid=UID_A)) == []
    assert changes(App("a", "self_hosted", uid=UID_A), App("a", "self_hosted")) == []
    assert changes(App("a", "self_hosted", uid=UID_B), App("a", "self_hosted", uid=UID_A)) == [("uid", UID_A, UID_B)]


def test_a_lookup_or_stack_reference_counts_wherever_either_side_has_one() -> None:
    assert changes(App("a", "self_hosted", lookup="x"), App("a", "self_hosted")) == [("lookup", None, "x")]
    assert changes(App("a", "self_hosted"), App("a", "self_hosted", stack="o/p/s")) == [("stack", "o/p/s", None)]
    assert changes(App("a", "self_hosted", stack="o/p/s"), App("a", "self_hosted", stack="o/p/s")) == []


def test_changes_are_reported_in_the_order_managed_type_uid_lookup_stack() -> None:
    desired = App("a", "saas", uid=UID_B, managed=False, lookup="l", stack="s")
    deployed = App("a", "self_hosted", uid=UID_A, managed=True)
    assert [c[0] for c in changes(desired, deployed)] == ["managed", "type", "uid", "lookup", "stack"]
    [change] = app_changes(App("a", "saas"), App("a", "self_hosted"))
    assert change.as_dict() == {"app": "a", "field": "type", "from": "self_hosted", "to": "saas"}


def two_sides(want: list[tuple[str, str]], have: list[tuple[str, str]], **apps: App) -> Any:
    names = {n for e in want for n in e}
    desired = TrustGraph([apps.get(n, App(n, "self_hosted")) for n in sorted(names)],
                         [Link(a, b) for a, b in want])
    deployed = TrustGraph([App(n, "self_hosted") for n in sorted({x for e in have for x in e})],
                          [Link(a, b) for a, b in have])
    return diff_trust(desired, deployed)


def test_the_diff_partitions_edges_and_apps() -> None:
    diff = two_sides([("a", "b"), ("b", "c")], [("a", "b"), ("c", "d")])
    assert (diff.added, diff.removed, diff.unchanged) == ((("b", "c"),), (("c", "d"),), (("a", "b"),))
    assert [a.name for a in diff.apps_added] == [] and [a.name for a in diff.apps_removed] == ["d"]
    assert diff.changed
    assert diff.as_dict()["removed"] == [{"from": "c", "to": "d"}] and diff.as_dict()["changed"] is True


def test_no_change_is_unchanged() -> None:
    diff = two_sides([("a", "b")], [("a", "b")])
    assert not diff.changed and diff.as_dict()["changed"] is False
    assert two_sides([("a", "b")], [("a", "b")], b=App("b", "saas")).changed  # a name kept, its type changed


def test_a_deployed_rule_naming_an_app_of_the_desired_side_by_uid_is_its_edge() -> None:
    desired = TrustGraph([App("ext", "self_hosted", uid=UID_A, managed=False), App("t", "self_hosted")],
                         [Link("ext", "t")])
    deployed = TrustGraph([App("t", "self_hosted")], [], unknown_uids=[("t", UID_A), ("t", UID_B)])
    diff = diff_trust(desired, deployed)
    assert diff.unchanged == (("ext", "t"),) and diff.added == ()
    assert diff.unknown_uids == (("t", UID_B),)
    assert diff.apps_added == ()


def test_two_desired_names_for_one_deployed_uid_are_one_app_sharing_links() -> None:
    desired = TrustGraph([App("crm", "self_hosted"), App("hr", "self_hosted", uid=UID_A, managed=False),
                          App("x", "self_hosted")], [Link("x", "crm")])
    deployed = TrustGraph([App("crm", "self_hosted", uid=UID_A)], [])
    graph, violations = resolve_identities(desired, deployed)
    assert [(v.rule, v.apps) for v in violations] == [("same-app", ("crm", "hr"))]
    assert graph.edges() == frozenset({("x", "crm"), ("x", "hr")})
    unmanaged = TrustGraph([App("crm", "self_hosted", managed=False), App("hr", "self_hosted", uid=UID_A)], [])
    assert resolve_identities(unmanaged, deployed)[1] == []  # an app managed elsewhere does not take a deployed uid
    same, none = resolve_identities(TrustGraph([App("crm", "self_hosted")], []), deployed)
    assert none == [] and same.apps["crm"].uid is None


# -- the words of each violation (what a reader is told to do) ---------------------------------------------
def test_each_violation_says_what_is_wrong_and_what_to_do() -> None:
    facts = {"hr": SH, "mcp": SAAS, "kiosk": AppFacts("ssh"), "ext": AppFacts("self_hosted", managed=False)}
    found = check_links(facts, [LinkRef("hr", "mcp"), LinkRef("hr", "ext"), LinkRef("kiosk", "hr"),
                                LinkRef("hr", "hr"), LinkRef("hr", "nope"), LinkRef("kiosk", "hr")])
    assert [v.message for v in found] == [
        "link hr -> mcp: `mcp` is a saas app, and Cloudflare accepts a linked_app_token rule only on self-hosted "
        "apps; point the link at a self_hosted app (e.g. the API `hr` calls) or make `mcp` self_hosted",
        "link hr -> ext: `ext` is managed outside this stack, and a policy reaches an app only through that app's "
        "own policies list; manage `ext` in this stack, or declare the link in the stack that manages it",
        "link kiosk -> hr: `kiosk` is a ssh app, which carries no user token another app can accept; the source "
        "must be self_hosted (it forwards Cf-Access-Token) or saas (it sends Authorization: Bearer)",
        "link hr -> hr: an app cannot link to itself; remove this link",
        "link hr -> nope: `nope` is not declared under linked-apps:apps; declare it (managed here, or existing with "
        "`uid`, `lookup` or `stack`) or fix the name",
        "link kiosk -> hr is declared twice (first at link kiosk -> hr); keep one",
    ]
    assert check_links({"a": SH, "b": SH}, [LinkRef("a", "b"), LinkRef("b", "a")]) == []  # a cycle converges


def test_links_after_a_self_link_or_a_duplicate_are_still_checked() -> None:
    found = check_links({"a": SH, "m": SAAS}, [LinkRef("a", "a"), LinkRef("a", "m"), LinkRef("a", "m"),
                                               LinkRef("m", "a"), LinkRef("x", "a"), LinkRef("a", "m")])
    assert [v.rule for v in found] == ["self-link", "target-not-self-hosted", "duplicate-link", "unknown-app",
                                       "duplicate-link"]


def test_an_identity_of_another_kind_is_named_by_its_kind() -> None:
    assert identity_problems({"a": [("lookup", "x")], "b": [("lookup", "x")]}) == [
        "apps 'a' and 'b' are one Cloudflare app (the same lookup 'x'); declare it once"]


def test_the_last_code_point_of_the_basic_plane_is_escaped_short() -> None:
    assert printable("a\uffff") == "a\\uffff"
    assert printable("a\U00010000") == "a\U00010000"  # LINEAR B SYLLABLE B008 A: readable


# -- explain: the JSON answer -----------------------------------------------------------------------------------
from linked_apps.model.paths import render_path, shortest_path  # noqa: E402


def chain() -> TrustGraph:
    """hr -> pay (policy p1, attached at precedence 2) -> ledger (no policy recorded); ext is managed elsewhere."""
    admits = Policy("p1", "hr may call", NON_IDENTITY, include=((LINKED_APP_TOKEN, UID_A),))
    return TrustGraph([App("hr", "self_hosted", uid=UID_A), App("pay", "self_hosted", uid=UID_B),
                       App("ledger", "self_hosted"), App("ext", "self_hosted", managed=False)],
                      [Link("hr", "pay", "p1", "hr may call"), Link("pay", "ledger")], policies={"p1": admits},
                      attachments={"pay": (("x", 1), ("p1", 2))})


def test_an_explained_path_as_json() -> None:
    assert explain(chain(), "hr", "ledger").as_dict() == {
        "from": "hr", "to": "ledger", "reachable": True, "path": ["hr", "pay", "ledger"], "missing": None,
        "hops": [{**Link("hr", "pay", "p1", "hr may call").as_dict(), "header": "Cf-Access-Token", "precedence": 2,
                  "decision": NON_IDENTITY, "grants": True, "reason": "an include rule names the source app"},
                 {**Link("pay", "ledger").as_dict(), "header": "Cf-Access-Token", "precedence": None,
                  "decision": None, "grants": None, "reason": ""}]}


def test_a_missing_link_as_json_with_the_way_back_and_the_rules_it_would_break() -> None:
    answer = explain(chain(), "ledger", "hr").as_dict()
    assert answer == {"from": "ledger", "to": "hr", "reachable": False, "path": None, "hops": [],
                      "missing": {"link": {"from": "ledger", "to": "hr"}, "reached": [], "callers": [],
                                  "rules": [], "reverse_path": ["hr", "pay", "ledger"]}}
    into_ext = explain(chain(), "hr", "ext")
    assert [v.rule for v in into_ext.blocked] == ["target-not-managed"]
    assert into_ext.as_dict()["missing"]["reached"] == ["pay", "ledger"]
    assert into_ext.as_dict()["missing"]["reverse_path"] is None
    assert explain(chain(), "ext", "pay").as_dict()["missing"]["callers"] == ["hr"]


def test_shortest_path_stops_at_the_target_and_render_path_of_nothing_is_empty() -> None:
    path = shortest_path(chain(), "hr", "pay")
    assert render_path(path) == "hr -> pay"
    assert shortest_path(chain(), "ledger", "hr") is None
    assert render_path([]) == ""


def test_a_hop_from_a_saas_app_travels_as_a_bearer_token_and_a_missing_app_is_unknown() -> None:
    graph = TrustGraph([App("mcp", "saas", uid=UID_A), App("pay", "self_hosted")], [Link("mcp", "pay")])
    [hop] = explain(graph, "mcp", "pay").hops
    assert hop.header == "Authorization: Bearer" and hop.policy is None and hop.grants is None


def test_one_app_under_two_names_keeps_every_link_of_both_with_its_policy() -> None:
    desired = TrustGraph([App("crm", "self_hosted"), App("hr", "self_hosted", uid=UID_A, managed=False),
                          App("x", "self_hosted"), App("y", "self_hosted"), App("z", "self_hosted", uid=UID_B)],
                         [Link("x", "crm", "p1", "x may call", "why"), Link("crm", "y", "p2", "crm may call")],
                         team_domain="acme.cloudflareaccess.com")
    deployed = TrustGraph([App("crm", "self_hosted", uid=UID_A)], [])
    graph, [violation] = resolve_identities(desired, deployed)
    assert violation.message == (f"apps 'crm' and 'hr' are one Cloudflare app (uid {UID_A}, as deployed): trust "
                                 "given to one is given to the other; declare the app once")
    assert graph.edges() == frozenset({("x", "crm"), ("x", "hr"), ("crm", "y"), ("hr", "y")})
    assert sorted((l.source, l.target, l.policy_id, l.policy_name, l.description) for l in graph.links) == [
        ("crm", "y", "p2", "crm may call", None), ("hr", "y", "p2", "crm may call", None),
        ("x", "crm", "p1", "x may call", "why"), ("x", "hr", "p1", "x may call", "why")]
    assert graph.team_domain == "acme.cloudflareaccess.com"


def test_apps_with_different_uids_are_not_one_app() -> None:
    desired = TrustGraph([App("a", "self_hosted", uid=UID_A), App("b", "self_hosted", uid=UID_B)], [])
    graph, violations = resolve_identities(desired, TrustGraph([], []))
    assert violations == [] and graph is desired


def test_a_changed_identity_is_in_the_json_of_the_diff() -> None:
    diff = diff_trust(TrustGraph([App("a", "saas")], []), TrustGraph([App("a", "self_hosted")], []))
    assert diff.as_dict()["apps_changed"] == [{"app": "a", "field": "type", "from": "self_hosted", "to": "saas"}]


def test_a_hop_whose_target_has_no_attachments_has_no_precedence() -> None:
    graph = hop_graph("self_hosted")
    graph = TrustGraph(graph.apps.values(), graph.links, policies=graph.policies, attachments={})
    [hop] = explain(graph, "hr", "dst").hops
    assert hop.precedence is None and hop.grants is True


def test_a_refused_hop_keeps_its_link_and_header() -> None:
    [hop] = explain(hop_graph("saas"), "hr", "dst").hops
    assert hop.link == Link("hr", "dst", "p1", "hr may call") and hop.header == "Cf-Access-Token"


def test_a_source_without_uid_is_not_matched_by_a_rule_whose_uid_could_not_be_read() -> None:
    unreadable_rule = Policy("p1", "?", NON_IDENTITY, include=((LINKED_APP_TOKEN, None),))
    graph = TrustGraph([App("hr", "self_hosted"), App("dst", "self_hosted", uid=UID_B)],
                       [Link("hr", "dst", "p1", "?")], policies={"p1": unreadable_rule},
                       attachments={"dst": (("p1", 1),)})
    [hop] = explain(graph, "hr", "dst").hops
    assert hop.grants is False


def test_a_hop_through_an_app_the_graph_does_not_hold_never_grants() -> None:
    admits = Policy("p1", "a may call", NON_IDENTITY, include=((LINKED_APP_TOKEN, UID_A),))
    graph = TrustGraph([App("a", "self_hosted", uid=UID_A), App("b", "self_hosted")],
                       [Link("a", "ghost", "p1"), Link("ghost", "b", "p1")], policies={"p1": admits})
    into, out_of = explain(graph, "a", "b").hops
    assert (into.grants, into.reason) == (False, "`ghost` is a unknown app; Cloudflare honours linked_app_token "
                                                 "rules only on self-hosted apps")
    assert (out_of.grants, out_of.header) == (False, "Cf-Access-Token")


# -- provider value rules: the exact refusal, at each edge -----------------------------------------------------
from linked_apps.model.rules import (  # noqa: E402
    GRANT_TYPES,
    SCOPES,
    check_access_domain,
    check_access_token_lifetime,
    check_choices,
    check_email_domain,
    check_session_duration,
)


@pytest.mark.parametrize(("values", "what", "message"), [
    (["bogus"], "OIDC scope", "'bogus' is not an OIDC scope; use openid, groups, email or profile"),
    (["bogus"], "scope", "'bogus' is not a scope; use openid, groups, email or profile"),
    (["bogus"], "extra scope", "'bogus' is not an extra scope; use openid, groups, email or profile"),
    (["a", "openid", 7], "OIDC scope", "'a', 7 are not OIDC scopes; use openid, groups, email or profile"),
    (["offline_access"], "OIDC scope", "'offline_access' is not an OIDC scope; use openid, groups, email or profile; "
                                       "Cloudflare adds offline_access itself when refresh_tokens is a grant type"),
])
def test_a_value_outside_the_choices_is_refused_with_an_exact_sentence(values: list, what: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        check_choices(values, SCOPES, what)
    assert str(caught.value) == message


def test_choices_are_compared_and_returned_lower_cased() -> None:
    assert check_choices(["OpenID", "EMAIL"], SCOPES, "OIDC scope") == ["openid", "email"]
    assert check_choices(["Authorization_Code"], GRANT_TYPES, "OIDC grant type") == ["authorization_code"]


@pytest.mark.parametrize(("value", "ok"), [("payroll.acme.com", True), ("payroll.acme.com/api", True),
                                           ("*.acme.com", True), ("payroll.acme.com/go?to=https://x", False),
                                           ("https://payroll.acme.com", False), ("not a host", False),
                                           ("payroll", False), (7, False), (None, False)])
def test_an_access_domain_is_a_host_and_optional_path_without_any_scheme(value: object, ok: bool) -> None:
    if ok:
        assert check_access_domain(f" {value} ") == value
    else:
        with pytest.raises(ValueError, match="is not an Access domain"):
            check_access_domain(value)  # type: ignore[arg-type]


@pytest.mark.parametrize(("value", "ok"), [(" Acme.COM ", True), ("@acme.com", False), ("acme", False), (7, False),
                                           (None, False), ("", False)])
def test_an_email_domain_is_a_bare_host_returned_lower_cased(value: object, ok: bool) -> None:
    if ok:
        assert check_email_domain(value) == "acme.com"  # type: ignore[arg-type]
    else:
        with pytest.raises(ValueError, match="is not an email domain"):
            check_email_domain(value)  # type: ignore[arg-type]


@pytest.mark.parametrize(("value", "ok"), [("1m", True), ("59s", False), ("24h", True), ("1440m", True),
                                           ("1440.1m", False), ("24h1m", False), ("0.5h", True), ("90s", False)])
def test_an_access_token_lifetime_lies_between_one_minute_and_a_day(value: str, ok: bool) -> None:
    if ok:
        assert check_access_token_lifetime(value) == value
    else:
        with pytest.raises(ValueError):
            check_access_token_lifetime(value)


@pytest.mark.parametrize(("value", "ok"), [("24h", True), ("2h45m", True), ("1ns", True), ("300ms", True),
                                           ("0s", False), ("0h0m", False), ("1d", False), ("", False), ("h", False),
                                           ("2h 45m", False), ("-1h", False), ("2h45", False)])
def test_a_session_duration_is_a_positive_go_duration_without_days(value: str, ok: bool) -> None:
    if ok:
        assert check_session_duration(f" {value} ") == value
    else:
        with pytest.raises(ValueError, match="is not a duration"):
            check_session_duration(value)


def test_deferred_links_search_each_cycle_once_and_only_among_managed_receivers() -> None:
    apps = {n: SH for n in "abcd"}
    # two cycles sharing b, found from the first root in name order; d only points into them
    edges = [("a", "b"), ("b", "a"), ("b", "c"), ("c", "b"), ("d", "a")]
    assert deferred_links(apps, edges) == [("b", "a"), ("c", "b")]
    assert deferred_links({**apps, "a": AppFacts("self_hosted", managed=False)}, edges) == [("c", "b")]
    assert deferred_links(apps, []) == []


# -- diff: a cycle's deferred link is pending, not added --------------------------------------------------------

def test_a_deferred_link_not_deployed_yet_is_pending_and_counts_as_a_change() -> None:
    apps = [App(name="a", type="self_hosted"), App(name="b", type="self_hosted")]
    desired = TrustGraph(apps, [Link("a", "b"), Link("b", "a")])
    deployed = TrustGraph(apps, [Link("a", "b")])
    diff = diff_trust(desired, deployed, deferred=[("b", "a")])
    assert (diff.added, diff.pending, diff.unchanged, diff.removed) == ((), (("b", "a"),), (("a", "b"),), ())
    assert diff.changed
    as_json = diff.as_dict()
    assert as_json["pending"] == [{"from": "b", "to": "a"}] and as_json["added"] == [] and as_json["changed"] is True
    settled = diff_trust(desired, TrustGraph(apps, [Link("a", "b"), Link("b", "a")]), deferred=[("b", "a")])
    assert (settled.pending, settled.changed) == ((), False)
