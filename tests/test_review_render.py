"""The pictures and the PR comment, parsed back (Markdown tables, Mermaid, DOT), never just printed."""

from __future__ import annotations

import re

import pytest

from linked_apps.model.graph import App, Link, TrustGraph
from linked_apps.model.rules import Violation
from linked_apps.review.diff import diff_trust
from linked_apps.review.render import (
    ADDED_COLOUR,
    REMOVED_COLOUR,
    Drawing,
    diff_markdown,
    diff_text,
    dot,
    mermaid,
    summary,
)
from tests._review_parsers import fenced_blocks, markdown_tables, parse_dot, parse_mermaid

APPS = [App("hr", "self_hosted"), App("pay", "self_hosted"), App("docs", "self_hosted"), App("mcp", "saas"),
        App("crm", "self_hosted", uid="7c9e6679-7425-40de-944b-e07fc1f90ae7", managed=False)]


def graph(apps: list[App], edges: list[tuple[str, str]], **kw: object) -> TrustGraph:
    return TrustGraph(apps, [Link(a, b) for a, b in edges], **kw)  # type: ignore[arg-type]


DESIRED = graph(APPS + [App("ledger", "self_hosted")],
                [("hr", "pay"), ("mcp", "pay"), ("mcp", "docs"), ("crm", "docs"), ("pay", "ledger")])
DEPLOYED = graph(APPS + [App("wiki", "self_hosted")],
                 [("hr", "pay"), ("mcp", "docs"), ("crm", "docs"), ("wiki", "docs"), ("hr", "docs")],
                 unknown_uids=[("docs", "0b6c7a2e-9f1d-4c3b-8e5a-6d7f8a9b0c1d")])
VIOLATION = Violation("target-not-self-hosted", "link pay -> mcp: `mcp` is a saas app | fix it", ("pay", "mcp"))
DIFF = diff_trust(DESIRED, DEPLOYED, [VIOLATION])


# -- Markdown ---------------------------------------------------------------------------------------------------
def test_markdown_comment_parses_into_summary_table_and_picture() -> None:
    text = diff_markdown(DIFF, "stack dev", "state.json")
    first = text.splitlines()[0]
    assert first == f"### Trust review: {summary(DIFF)}"
    assert first.startswith("### Trust review: 2 links added, 2 removed, 3 unchanged; 1 app added, 1 removed; "
                            "1 rule violation")
    changes, violations, apps, unknown, unchanged = markdown_tables(text)
    assert changes == [
        {"change": "added", "from": "mcp", "to": "pay", "token": "Authorization: Bearer"},
        {"change": "added", "from": "pay", "to": "ledger", "token": "Cf-Access-Token"},
        {"change": "removed", "from": "hr", "to": "docs", "token": "Cf-Access-Token"},
        {"change": "removed", "from": "wiki", "to": "docs", "token": "Cf-Access-Token"},
    ]
    assert violations == [{"rule": "target-not-self-hosted", "message": VIOLATION.message}]  # `|` survives
    assert apps == [{"app": "ledger", "change": "added", "kind": "self_hosted"},
                    {"app": "wiki", "change": "removed", "kind": "self_hosted"}]
    assert unknown == [{"app": "docs", "accepts uid": "0b6c7a2e-9f1d-4c3b-8e5a-6d7f8a9b0c1d"}]
    assert [(r["from"], r["to"]) for r in unchanged] == sorted(DIFF.unchanged)
    (block,) = fenced_blocks(text, "mermaid")
    assert parse_mermaid(block).edges  # the picture is the diff's (checked in detail below)


def test_markdown_when_nothing_changed_has_no_table_and_a_plain_picture() -> None:
    text = diff_markdown(diff_trust(DESIRED, DESIRED), "stack dev", "state.json")
    assert text.splitlines()[0] == "### Trust review: no trust change (5 links unchanged); no rule violations"
    (unchanged,) = markdown_tables(text)  # only the unchanged links, folded away
    assert len(unchanged) == 5 and "<details><summary>5 unchanged links</summary>" in text
    assert "_No link is added or removed._" in text
    chart = parse_mermaid(fenced_blocks(text, "mermaid")[0])
    assert {e.arrow for e in chart.edges} == {"-->"} and chart.link_styles == {}


# -- Mermaid ----------------------------------------------------------------------------------------------------
def test_mermaid_styles_added_and_removed_edges_apart() -> None:
    chart = parse_mermaid(mermaid(Drawing.of_diff(DIFF)))
    seen = {}
    for source, target, edge, style in chart.named_edges():
        seen[(source, target)] = (edge.arrow, edge.label, style)
    green = f"stroke:{ADDED_COLOUR},stroke-width:3px"
    red = f"stroke:{REMOVED_COLOUR},stroke-width:2px,stroke-dasharray:5 5"
    assert seen == {
        ("hr", "pay"): ("-->", None, None), ("mcp", "docs"): ("-->", None, None), ("crm", "docs"): ("-->", None, None),
        ("mcp", "pay"): ("==>", "added", green), ("pay", "ledger"): ("==>", "added", green),
        ("hr", "docs"): ("-.->", "removed", red), ("wiki", "docs"): ("-.->", "removed", red),
    }
    assert len(chart.edges) == 7  # one arrow per edge, none drawn twice


def test_mermaid_nodes_show_type_shape_and_change() -> None:
    chart = parse_mermaid(mermaid(Drawing.of_diff(DIFF)))
    by_name = {chart.name(node): node for node in chart.nodes}
    assert set(by_name) == {"hr", "pay", "docs", "mcp", "crm", "ledger", "wiki"}
    assert chart.nodes[by_name["mcp"]] == ("mcp<br/>saas", "stadium")
    assert chart.nodes[by_name["crm"]] == ("crm<br/>self_hosted, managed elsewhere", "box")
    assert chart.classes == {by_name["ledger"]: "added", by_name["wiki"]: "removed", by_name["crm"]: "external"}
    assert REMOVED_COLOUR in chart.class_defs["removed"] and ADDED_COLOUR in chart.class_defs["added"]


def test_graph_drawing_has_plain_edges_and_undeclared_apps() -> None:
    g = graph(APPS[:2], [("hr", "pay"), ("ghost", "pay")])  # `ghost`: an unknown-app violation in the config
    chart = parse_mermaid(mermaid(Drawing.of_graph(g)))
    assert [(s, t, e.arrow) for s, t, e, _ in chart.named_edges()] == [("ghost", "pay", "-->"), ("hr", "pay", "-->")]
    assert "ghost<br/>undeclared" in {label for label, _ in chart.nodes.values()}


def test_empty_graph_still_draws() -> None:
    chart = parse_mermaid(mermaid(Drawing.of_graph(graph([], []))))
    assert chart.edges == [] and len(chart.nodes) == 1
    assert parse_dot(dot(Drawing.of_graph(graph([], [])))).nodes == {}


# -- DOT --------------------------------------------------------------------------------------------------------
def test_dot_parses_with_styles_for_changes() -> None:
    parsed = parse_dot(dot(Drawing.of_diff(DIFF)))
    assert parsed.name == "trust" and parsed.graph_attrs == {"rankdir": "LR"}
    assert set(parsed.nodes) == {"hr", "pay", "docs", "mcp", "crm", "ledger", "wiki"}
    assert parsed.nodes["mcp"]["shape"] == "ellipse" and parsed.nodes["mcp"]["label"] == "mcp\nsaas"
    assert "dashed" in parsed.nodes["crm"]["style"].split(",")
    assert parsed.nodes["ledger"]["color"] == ADDED_COLOUR and parsed.nodes["wiki"]["color"] == REMOVED_COLOUR
    edges = {(a, b): attrs for a, b, attrs in parsed.edges}
    assert len(edges) == len(parsed.edges) == 7
    assert edges[("mcp", "pay")] == {"color": ADDED_COLOUR, "penwidth": "3", "label": "added"}
    assert edges[("wiki", "docs")] == {"color": REMOVED_COLOUR, "style": "dashed", "label": "removed"}
    assert edges[("hr", "pay")] == {}


# -- names that would break the markup --------------------------------------------------------------------------
@pytest.mark.parametrize("name", ['say "hi"', "a|b", "<b>bold</b>", "#35; hash", "back`tick", "new\\line"])
def test_awkward_names_round_trip(name: str) -> None:
    desired = graph([App(name, "self_hosted"), App("api", "self_hosted")], [(name, "api")])
    result = diff_trust(desired, graph([App("api", "self_hosted")], []))
    text = diff_markdown(result, "stack dev", "state.json")
    assert markdown_tables(text)[0] == [{"change": "added", "from": name, "to": "api", "token": "Cf-Access-Token"}]
    chart = parse_mermaid(fenced_blocks(text, "mermaid")[0])
    assert [(s, t) for s, t, _, _ in chart.named_edges()] == [(name, "api")]
    parsed = parse_dot(dot(Drawing.of_diff(result)))
    assert [(a, b) for a, b, _ in parsed.edges] == [(name, "api")]


# -- text -------------------------------------------------------------------------------------------------------
def test_text_marks_each_edge_and_ends_with_the_summary() -> None:
    lines = diff_text(DIFF, "stack dev", "state.json").splitlines()
    assert lines[0] == "Trust diff: stack dev (desired) against state.json (deployed)"
    rows = [re.fullmatch(r"  ([+\- ]) (\S+) -> (\S+) +\[(.+)\]", line) for line in lines[1:8]]
    assert all(rows), lines[1:8]
    assert {(m.group(2), m.group(3)): (m.group(1), m.group(4)) for m in rows if m} == {
        ("mcp", "pay"): ("+", "Authorization: Bearer"), ("pay", "ledger"): ("+", "Cf-Access-Token"),
        ("hr", "docs"): ("-", "Cf-Access-Token"), ("wiki", "docs"): ("-", "Cf-Access-Token"),
        ("crm", "docs"): (" ", "Cf-Access-Token"), ("hr", "pay"): (" ", "Cf-Access-Token"),
        ("mcp", "docs"): (" ", "Authorization: Bearer")}
    assert "Apps added: ledger (self_hosted)" in lines and "Apps removed: wiki (self_hosted)" in lines
    assert any(VIOLATION.message in line for line in lines)
    assert lines[-1] == summary(DIFF)


def test_big_graphs_draw_only_the_changes() -> None:
    names = [f"app-{i}" for i in range(40)]
    edges = [(a, b) for a in names[:20] for b in names[20:]][:300]
    desired = graph([App(n, "self_hosted") for n in names], edges + [("app-0", "app-1")])
    deployed = graph([App(n, "self_hosted") for n in names], edges + [("app-2", "app-3")])
    text = diff_markdown(diff_trust(desired, deployed), "stack big", "state.json")
    chart = parse_mermaid(fenced_blocks(text, "mermaid")[0])
    assert [(s, t, e.label) for s, t, e, _ in chart.named_edges()] == [("app-0", "app-1", "added"),
                                                                         ("app-2", "app-3", "removed")]
    assert sorted(chart.name(n) for n in chart.nodes) == ["app-0", "app-1", "app-2", "app-3"]
    assert "The 300 unchanged links are not drawn" in text
    small = diff_markdown(diff_trust(desired, deployed), "stack big", "state.json", max_drawn_edges=1000)
    assert len(parse_mermaid(fenced_blocks(small, "mermaid")[0]).edges) == 302
