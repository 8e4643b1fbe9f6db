"""The rules in their one home: each rule, ordering, attachment precedence, linked-policy evaluation."""

from __future__ import annotations

import pytest

from linked_apps.model.rules import (
    AppFacts,
    LinkRef,
    can_receive_linked_trust,
    can_send_linked_token,
    check_links,
    creation_order,
    deferred_links,
    evaluate_linked_policy,
    policy_attachments,
    token_header,
)

SH, SAAS = AppFacts("self_hosted"), AppFacts("saas")


def rules_of(apps, links):
    return [v.rule for v in check_links(apps, [LinkRef(a, b) for a, b in links])]


def test_only_self_hosted_receives_and_only_self_hosted_or_saas_sends():
    assert can_receive_linked_trust("self_hosted")
    for other in ("saas", "ssh", "mcp", "mcp_portal", "app_launcher", None):
        assert not can_receive_linked_trust(other)
    assert can_send_linked_token("self_hosted") and can_send_linked_token("saas")
    assert not can_send_linked_token("ssh") and not can_send_linked_token("warp")
    assert token_header("saas") == "Authorization: Bearer" and token_header("self_hosted") == "Cf-Access-Token"


@pytest.mark.parametrize("apps, links, expected", [
    ({"a": SH, "b": SH}, [("a", "b")], []),
    ({"a": SAAS, "b": SH}, [("a", "b")], []),
    ({"a": SH, "b": SAAS}, [("a", "b")], ["target-not-self-hosted"]),
    ({"a": SH, "b": AppFacts("mcp")}, [("a", "b")], ["target-not-self-hosted"]),
    ({"a": SH, "b": AppFacts("self_hosted", managed=False)}, [("a", "b")], ["target-not-managed"]),
    ({"a": AppFacts("ssh", managed=False), "b": SH}, [("a", "b")], ["source-cannot-send-token"]),
    ({"a": SH}, [("a", "a")], ["self-link"]),
    ({"a": SH, "b": SH}, [("a", "b"), ("a", "b")], ["duplicate-link"]),
    ({"a": SH}, [("a", "zz")], ["unknown-app"]),
    ({"a": SH}, [("x", "y")], ["unknown-app", "unknown-app"]),
    ({"a": SH, "b": SH, "c": SH}, [("a", "b"), ("b", "c"), ("c", "a")], []),  # converges: see deferred_links
    # A cycle through an app managed elsewhere cannot be built here anyway: that link is reported, not a cycle.
    ({"a": SH, "b": AppFacts("self_hosted", managed=False)}, [("a", "b"), ("b", "a")], ["target-not-managed"]),
])
def test_each_rule(apps, links, expected):
    assert rules_of(apps, links) == expected


def test_messages_name_the_apps_and_the_fix():
    [v] = check_links({"hr": SH, "mcp": SAAS}, [LinkRef("hr", "mcp", "linked-apps:links[0]")])
    assert v.apps == ("hr", "mcp")
    assert v.message.startswith("linked-apps:links[0]: link hr -> mcp: `mcp` is a saas app")
    assert "point the link at a self_hosted app" in v.message
    [v] = check_links({"payroll": SH}, [LinkRef("hr", "payroll")])
    assert "`hr` is not declared" in v.message
    [v] = check_links({"payroll": SH, "hr": SH}, [LinkRef("hr", "payrol")])
    assert "did you mean `payroll`?" in v.message


@pytest.mark.parametrize("links, expected", [
    ([("a", "b"), ("b", "a")], [("b", "a")]),
    ([("a", "b"), ("b", "c"), ("c", "a")], [("c", "a")]),
    ([("a", "b"), ("b", "a"), ("b", "c"), ("c", "b"), ("c", "a")], [("b", "a"), ("c", "a"), ("c", "b")]),
    ([("a", "b"), ("b", "c")], []),
])
def test_deferred_links_break_every_cycle_deterministically(links, expected):
    apps = {"a": SH, "b": SH, "c": SH}
    deferred = deferred_links(apps, links)
    assert deferred == expected
    assert deferred_links(apps, list(reversed(links))) == deferred  # declaration order does not matter
    rest = [e for e in links if e not in deferred]
    assert creation_order(apps, rest)  # no cycle left


def test_no_link_into_an_app_managed_elsewhere_or_a_saas_app_is_deferred():
    apps = {"a": SH, "b": AppFacts("self_hosted", managed=False), "m": SAAS}
    assert deferred_links(apps, [("a", "b"), ("b", "a"), ("a", "m"), ("m", "a")]) == []


def test_creation_order_puts_sources_first_and_refuses_cycles():
    order = creation_order(["d", "c", "b", "a"], [("c", "b"), ("b", "a"), ("d", "a")])
    assert order.index("c") < order.index("b") < order.index("a") and order.index("d") < order.index("a")
    with pytest.raises(ValueError):
        creation_order(["a", "b"], [("a", "b"), ("b", "a")])


def test_policy_attachments_keep_own_policies_first_and_precedences_unique():
    assert policy_attachments(["own1", "own2"], ["l1", "own1", "l2"]) == [
        {"id": "own1", "precedence": 1}, {"id": "own2", "precedence": 2},
        {"id": "l1", "precedence": 3}, {"id": "l2", "precedence": 4}]
    assert policy_attachments([], []) == []


A, B = "uid-a", "uid-b"
L = "linked_app_token"


@pytest.mark.parametrize("decision, include, require, exclude, allowed", [
    ("non_identity", [(L, A)], [], [], True),
    ("non_identity", [(L, B), (L, A)], [], [], True),           # include is OR
    ("allow", [(L, A)], [], [], False),                         # only non_identity grants
    ("non_identity", [(L, B)], [], [], False),
    ("non_identity", [(L, A)], [(L, A)], [], True),             # require AND, met
    ("non_identity", [(L, A)], [(L, B)], [], False),            # require not met
    ("non_identity", [(L, A)], [], [(L, A)], False),            # exclude NOT
    ("non_identity", [(L, A)], [], [(L, B)], True),
    ("non_identity", [("email_domain", None)], [], [], False),  # another selector cannot admit a token
    ("non_identity", [(L, A)], [("ip", None)], [], False),      # cannot be judged offline: fail closed
    ("non_identity", [(L, A)], [], [("ip", None)], False),
])
def test_evaluate_linked_policy(decision, include, require, exclude, allowed):
    ok, reason = evaluate_linked_policy(decision, include, require, exclude, frozenset({A}))
    assert ok is allowed and reason


# -- names ------------------------------------------------------------------------------------------------------
def test_readable_names_in_any_script_pass() -> None:
    from linked_apps.model.rules import app_name_problem, look_alike_problems

    names = ["hr-portal", "Payroll API (prod)", "планировщик", "給与システム", "café-api", "a b"]
    assert [app_name_problem(n) for n in names] == [None] * len(names)
    assert look_alike_problems(names) == []


def test_tr39_skeletons_match_look_alikes_and_only_them() -> None:
    from linked_apps.model._confusables import confusable_skeleton as skeleton

    assert skeleton("paypal") == skeleton("p\u0430yp\u0430l")     # Cyrillic а
    assert skeleton("corn") == skeleton("com")                    # rn and m
    assert skeleton("l1I|") == skeleton("llll")                   # one, capital I and bar read as l
    assert skeleton("\uff48r") == skeleton("hr")                  # fullwidth
    assert skeleton("e\u0301") == skeleton("\u00e9")              # composed or not
    assert skeleton("hr-portal") != skeleton("hr-portals") and skeleton("ab") != skeleton("ba")


def test_printable_shows_what_a_reader_cannot_see() -> None:
    from linked_apps.model.rules import printable

    assert printable("plain text, ünïcode 給与") == "plain text, ünïcode 給与"
    assert printable("a\nb\r\x00\x1b\u202e\u200b\ud800\U000e0100") == \
        "a\\u000ab\\u000d\\u0000\\u001b\\u202e\\u200b\\ud800\\U000e0100"
