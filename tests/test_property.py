"""Random topologies either plan cleanly or produce violations, never a traceback."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from linked_apps.model.rules import AppFacts, LinkRef, check_links, creation_order, deferred_links
from linked_apps.state import graph_from_resources
from tests._project import plan

from .conftest import EXISTING_UID, config

TYPES = ["self_hosted", "saas", "ssh", "mcp", "app_launcher"]
NAMES = ["a", "b", "c", "d", "e", "f"]


@st.composite
def topologies(draw):
    apps = {}
    for i, name in enumerate(draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=5, unique=True))):
        kind = draw(st.sampled_from(["self_hosted", "saas", "existing", "lookup"]))
        if kind == "self_hosted":
            apps[name] = {"type": "self_hosted", "domain": f"{name}.acme.com"}
        elif kind == "saas":
            apps[name] = {"type": "saas", "redirectUris": [f"https://{name}.acme.com/cb"]}
        elif kind == "existing":
            apps[name] = {"type": draw(st.sampled_from(TYPES)), "uid": EXISTING_UID[:-2] + f"{i:02d}"}
        else:
            apps[name] = {"type": draw(st.sampled_from(TYPES)), "lookup": f"CF {name}"}
    # Links mostly among declared apps, sometimes to an undeclared one.
    pool = list(apps) + ["ghost"]
    links = draw(st.lists(st.tuples(st.sampled_from(pool), st.sampled_from(pool)), max_size=7))
    return apps, links


@settings(max_examples=300, deadline=None)
@given(topologies())
def test_clean_rule_check_means_buildable_order(topo):
    apps, links = topo
    facts = {n: AppFacts(s["type"], "uid" not in s and "lookup" not in s) for n, s in apps.items()}
    violations = check_links(facts, [LinkRef(a, b) for a, b in links])
    if not violations:
        deferred = set(deferred_links(facts, links))
        order = creation_order(apps, [e for e in links if e not in deferred])
        assert all(order.index(a) < order.index(b) for a, b in links if (a, b) not in deferred)
    for v in violations:
        assert v.message and v.rule and set(v.apps) <= set(apps) | {"ghost"}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(topologies())
def test_random_topologies_plan_cleanly_or_report_violations(topo):
    apps, links = topo
    result = plan(config(apps, [{"from": a, "to": b} for a, b in links]))
    if result.violations:
        assert result.resources == []  # nothing is registered when a rule is broken
        assert all(v.rule and v.message for v in result.violations)
    else:
        # Every declared link is wired: the deployed-state reader sees exactly the declared managed-source trust.
        rows = [{"type": r["type"], "id": r["id"], "props": r["inputs"]} for r in result.resources]
        seen = graph_from_resources(rows)
        managed_sources = {(a, b) for a, b in links if "type" in apps[a] and "uid" not in apps[a] and "lookup" not in apps[a]}
        assert managed_sources <= seen.edges()
        assert len([r for r in result.resources if r["type"].endswith("ZeroTrustAccessApplication")]) == sum(
            1 for s in apps.values() if "uid" not in s and "lookup" not in s)
