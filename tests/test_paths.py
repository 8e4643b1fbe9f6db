"""Paths through the trust graph: reach, callers, shortest paths and explain, on chains, cycles, islands."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linked_apps.errors import UnknownAppError
from linked_apps.model.graph import App, Link, TrustGraph
from linked_apps.model.paths import callers, explain, reach, render_path, shortest_path
from linked_apps.model.rules import LINKED_APP_TOKEN, NON_IDENTITY
from linked_apps.state import APP_TYPE, POLICY_TYPE, graph_from_resources


def graph(edges: str, *, apps: str = "", types: dict[str, str] | None = None) -> TrustGraph:
    """`"a>b b>c"` -> a graph with those links (policy per source, as linked-apps makes them)."""
    pairs = [tuple(e.split(">")) for e in edges.split()]
    names = dict.fromkeys([*itertools.chain.from_iterable(pairs), *apps.split()])
    types = types or {}
    return TrustGraph(
        [App(n, types.get(n, "self_hosted"), uid=f"uid-{n}") for n in names],
        [Link(a, b, f"pol-{a}", f"Linked app token: {a}") for a, b in pairs],
    )


def names(path: list[Link]) -> str:
    return render_path(path)


# -- chains ---------------------------------------------------------------------------------------------------

def test_reach_along_a_chain_with_hops_and_paths():
    g = graph("a>b b>c c>d")
    found = reach(g, "a")
    assert list(found) == ["b", "c", "d"]
    assert dict(found.hops) == {"b": 1, "c": 2, "d": 3}
    assert names(found.path("d")) == "a -> b -> c -> d"
    assert [l.policy_name for l in found.path("d")] == [
        "Linked app token: a", "Linked app token: b", "Linked app token: c"]
    assert list(reach(g, "c")) == ["d"]
    assert list(reach(g, "d")) == []


def test_callers_walk_the_chain_backwards_with_forward_paths():
    g = graph("a>b b>c c>d x>c")
    found = callers(g, "d")
    assert dict(found.hops) == {"c": 1, "b": 2, "x": 2, "a": 3}
    assert names(found.path("a")) == "a -> b -> c -> d"
    assert names(found.path("x")) == "x -> c -> d"
    assert list(callers(g, "a")) == []


def test_the_shortest_of_two_routes_wins():
    g = graph("a>b b>c c>d a>e e>d")
    assert names(shortest_path(g, "a", "d")) == "a -> e -> d"
    assert reach(g, "a").hops["d"] == 2
    assert names(callers(g, "d").path("a")) == "a -> e -> d"


# -- cycles ---------------------------------------------------------------------------------------------------

def test_a_two_app_cycle_terminates_and_never_lists_the_origin():
    g = graph("a>b b>a")
    assert list(reach(g, "a")) == ["b"]
    assert list(reach(g, "b")) == ["a"]
    assert list(callers(g, "a")) == ["b"]
    assert names(shortest_path(g, "b", "a")) == "b -> a"


def test_a_cycle_with_a_tail_and_an_exit():
    g = graph("t>a a>b b>c c>a c>out")
    found = reach(g, "t")
    assert dict(found.hops) == {"a": 1, "b": 2, "c": 3, "out": 4}
    assert names(found.path("out")) == "t -> a -> b -> c -> out"
    assert dict(reach(g, "b").hops) == {"c": 1, "a": 2, "out": 2}
    assert set(callers(g, "a")) == {"t", "b", "c"}


# -- disconnected apps ----------------------------------------------------------------------------------------

def test_islands_reach_nothing_and_are_reached_by_nothing():
    g = graph("a>b c>d", apps="lonely")
    assert list(reach(g, "lonely")) == [] and list(callers(g, "lonely")) == []
    assert shortest_path(g, "a", "d") is None
    assert shortest_path(g, "a", "lonely") is None
    assert set(reach(g, "a")) == {"b"}


# -- names ----------------------------------------------------------------------------------------------------

def test_apps_are_found_by_uid_too_and_unknown_names_get_near_matches():
    g = graph("payroll>ledger")
    assert list(reach(g, "uid-payroll")) == ["ledger"]
    with pytest.raises(UnknownAppError, match="no app named 'payrol'.*known apps: payroll"):
        reach(g, "payrol")
    with pytest.raises(UnknownAppError, match="'ledgr'"):
        shortest_path(g, "payroll", "ledgr")
    with pytest.raises(UnknownAppError, match="'nope'"):
        callers(g, "nope")


# -- explain --------------------------------------------------------------------------------------------------

def test_explain_a_path_hop_by_hop_with_the_header_of_each_source():
    g = graph("mcp>payroll payroll>ledger", types={"mcp": "saas"})
    ex = explain(g, "mcp", "ledger")
    assert ex.reachable
    assert [(h.link.source, h.link.target, h.header) for h in ex.hops] == [
        ("mcp", "payroll", "Authorization: Bearer"), ("payroll", "ledger", "Cf-Access-Token")]
    doc = ex.as_dict()
    assert doc["path"] == ["mcp", "payroll", "ledger"] and doc["missing"] is None
    assert [h["policy_name"] for h in doc["hops"]] == ["Linked app token: mcp", "Linked app token: payroll"]


def test_explain_the_missing_link_with_what_each_side_reaches():
    g = graph("a>b c>d d>a")
    ex = explain(g, "a", "c")
    assert not ex.reachable and ex.hops == ()
    assert ex.reached == ("b",) and ex.callers == ()
    assert names(list(ex.reverse)) == "c -> d -> a"
    assert ex.blocked == ()  # a direct link a -> c would be fine
    doc = ex.as_dict()
    assert doc["path"] is None
    assert doc["missing"]["link"] == {"from": "a", "to": "c"}
    assert doc["missing"]["reverse_path"] == ["c", "d", "a"]


def test_explain_says_when_the_missing_link_is_one_cloudflare_would_refuse():
    g = graph("x>y", apps="api mcp", types={"mcp": "saas"})
    ex = explain(g, "api", "mcp")
    assert [v.rule for v in ex.blocked] == ["target-not-self-hosted"]
    assert "`mcp` is a saas app" in ex.blocked[0].message


def test_explain_refuses_the_same_app_twice():
    with pytest.raises(ValueError, match="`a` is both ends"):
        explain(graph("a>b"), "a", "a")


def _deployed(require_other: bool) -> TrustGraph:
    """Deployed resources: payroll trusts hr by a reusable policy, optionally with a require rule naming another app."""
    hr, pay = "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"
    policy = {"name": "hr may call payroll", "decision": NON_IDENTITY,
              "includes": [{"linkedAppToken": {"appUid": hr}}]}
    if require_other:
        policy["requires"] = [{"linkedAppToken": {"appUid": "33333333-3333-4333-8333-333333333333"}}]
    return graph_from_resources([
        {"type": APP_TYPE, "id": hr, "props": {"name": "hr", "type": "self_hosted", "domain": "hr.acme.com"}},
        {"type": APP_TYPE, "id": pay, "props": {"name": "payroll", "type": "self_hosted", "domain": "pay.acme.com",
                                                "policies": [{"id": "own", "precedence": 1},
                                                             {"id": "pol-hr", "precedence": 2}]}},
        {"type": POLICY_TYPE, "id": "pol-hr", "props": policy},
    ])


def test_explain_on_deployed_state_names_the_policy_its_id_and_precedence():
    [hop] = explain(_deployed(False), "hr", "pay.acme.com").hops
    assert (hop.link.policy_id, hop.link.policy_name, hop.precedence) == ("pol-hr", "hr may call payroll", 2)
    assert hop.grants is True and hop.policy is not None and hop.policy.decision == NON_IDENTITY
    assert hop.as_dict()["decision"] == NON_IDENTITY


def test_explain_flags_a_hop_whose_policy_would_not_grant():
    [hop] = explain(_deployed(True), "hr", "payroll").hops
    assert hop.grants is False
    assert "require rule is not met" in hop.reason


# -- against a naive closure ----------------------------------------------------------------------------------

def _distances(nodes: list[str], edges: set[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """Floyd-Warshall: an independent answer to compare the search with."""
    inf = 10**9
    d = {(a, b): (1 if (a, b) in edges else inf) for a in nodes for b in nodes}
    for k, i, j in itertools.product(nodes, nodes, nodes):
        if d[i, k] + d[k, j] < d[i, j]:
            d[i, j] = d[i, k] + d[k, j]
    return {key: v for key, v in d.items() if v < inf}


@settings(max_examples=150, deadline=None)
@given(st.integers(2, 7).flatmap(lambda n: st.tuples(
    st.just(n), st.sets(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)).filter(lambda e: e[0] != e[1])))))
def test_reach_and_callers_agree_with_floyd_warshall(case):
    n, raw = case
    nodes = [f"n{i}" for i in range(n)]
    edges = {(f"n{a}", f"n{b}") for a, b in raw}
    g = TrustGraph([App(x, "self_hosted") for x in nodes], [Link(a, b) for a, b in sorted(edges)])
    dist = _distances(nodes, edges)
    for origin in nodes:
        fwd, back = reach(g, origin), callers(g, origin)
        assert dict(fwd.hops) == {b: d for (a, b), d in dist.items() if a == origin and b != origin}
        assert dict(back.hops) == {a: d for (a, b), d in dist.items() if b == origin and a != origin}
        for app in fwd:
            path = fwd.path(app)
            assert len(path) == fwd.hops[app] and path[0].source == origin and path[-1].target == app
            assert all(l.edge in edges for l in path) and all(x.target == y.source for x, y in zip(path, path[1:]))
        for app in back:
            path = back.path(app)
            assert len(path) == back.hops[app] and path[0].source == app and path[-1].target == origin
