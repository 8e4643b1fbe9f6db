"""The trust diff: every case (nothing changed, edges added, removed, apps added and removed, violations),
desired = the real program's plan, deployed = a state file built from the real program's plan of another config.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linked_apps.model.graph import App, Link, TrustGraph
from linked_apps.review.diff import TrustDiff, diff_trust
from linked_apps.review.plan import Plan
from linked_apps.state import read_state
from tests._review_export import dev_config, export_document, output_document, planned

DEV_EDGES = (("hr-portal", "payroll-api"), ("legacy-crm", "docs-api"), ("mcp-server", "docs-api"),
             ("mcp-server", "payroll-api"), ("payroll-api", "ledger"))


def variant(*, drop_apps: tuple[str, ...] = (), drop_links: tuple[tuple[str, str], ...] = (),
            add_apps: dict[str, Any] | None = None, add_links: tuple[tuple[str, str], ...] = ()) -> dict[str, Any]:
    """The dev stack config with apps and links taken out or put in (and without its trust assertions, which
    are about the dev stack as it is)."""
    config = dev_config()
    config.pop("linked-apps:assertions", None)
    apps = config["linked-apps:apps"]
    for name in drop_apps:
        del apps[name]
    apps.update(copy.deepcopy(add_apps or {}))
    config["linked-apps:links"] = [
        link for link in config["linked-apps:links"]
        if (link["from"], link["to"]) not in drop_links and not {link["from"], link["to"]} & set(drop_apps)
    ] + [{"from": a, "to": b} for a, b in add_links]
    return config


def deployed(result: Plan, tmp_path: Path, kind: str = "export") -> TrustGraph:
    """What a user hands `--against`: the plan written as a stack export (or stack outputs) and read back."""
    path = tmp_path / f"{kind}.json"
    doc = export_document(result) if kind == "export" else output_document(result)
    path.write_text(json.dumps(doc))
    return read_state(path)


@pytest.fixture(scope="module")
def dev() -> Plan:
    return planned(dev_config(), "dev")


def names(apps: tuple[App, ...]) -> list[str]:
    return [a.name for a in apps]


# -- nothing changed --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["export", "outputs"])
def test_nothing_changed(dev: Plan, tmp_path: Path, kind: str) -> None:
    result = diff_trust(dev.graph, deployed(dev, tmp_path, kind), dev.violations)
    assert result.added == () and result.removed == ()
    assert result.unchanged == DEV_EDGES
    assert result.apps_added == () and result.apps_removed == ()
    assert result.violations == () and result.unknown_uids == ()
    assert not result.changed


def test_app_managed_elsewhere_matches_by_name(dev: Plan, tmp_path: Path) -> None:
    graph = deployed(dev, tmp_path)
    crm = graph.apps["legacy-crm"]
    assert (crm.managed, crm.uid) == (False, "7c9e6679-7425-40de-944b-e07fc1f90ae7")
    result = diff_trust(dev.graph, graph)
    assert ("legacy-crm", "docs-api") in result.unchanged
    assert result.apps["legacy-crm"].managed is False


def test_existing_app_missing_from_state_is_matched_by_its_uid(dev: Plan, tmp_path: Path) -> None:
    # A stack export whose program exports nothing: legacy-crm is known to the state only as a uid in a rule.
    doc = export_document(dev)
    doc["deployment"]["resources"] = [r for r in doc["deployment"]["resources"] if r["type"] != "pulumi:pulumi:Stack"]
    path = tmp_path / "bare.json"
    path.write_text(json.dumps(doc))
    graph = read_state(path)
    assert "legacy-crm" not in graph.apps and graph.unknown_uids == (("docs-api", "7c9e6679-7425-40de-944b-e07fc1f90ae7"),)
    result = diff_trust(dev.graph, graph)
    assert result.unchanged == DEV_EDGES and not result.changed and result.unknown_uids == ()


# -- edges added, edges removed ---------------------------------------------------------------------------------
def test_edges_added(dev: Plan, tmp_path: Path) -> None:
    before = planned(variant(drop_links=(("mcp-server", "payroll-api"), ("payroll-api", "ledger"))), "dev-fewer-links")
    result = diff_trust(dev.graph, deployed(before, tmp_path), dev.violations)
    assert result.added == (("mcp-server", "payroll-api"), ("payroll-api", "ledger"))
    assert result.removed == ()
    assert result.unchanged == (("hr-portal", "payroll-api"), ("legacy-crm", "docs-api"), ("mcp-server", "docs-api"))
    assert result.apps_added == () and result.apps_removed == ()
    assert result.changed


def test_edges_removed(dev: Plan, tmp_path: Path) -> None:
    before = planned(variant(add_links=(("hr-portal", "docs-api"), ("legacy-crm", "payroll-api"))), "dev-more-links")
    result = diff_trust(dev.graph, deployed(before, tmp_path), dev.violations)
    assert result.added == ()
    assert result.removed == (("hr-portal", "docs-api"), ("legacy-crm", "payroll-api"))
    assert result.unchanged == DEV_EDGES
    assert result.changed


# -- apps added and removed -------------------------------------------------------------------------------------
def test_apps_added_and_removed(dev: Plan, tmp_path: Path) -> None:
    wiki = {"old-wiki": {"type": "self_hosted", "domain": "wiki.acme.com"}}
    before = planned(variant(drop_apps=("ledger",), add_apps=wiki, add_links=(("old-wiki", "docs-api"),)),
                     "dev-old-wiki")
    result = diff_trust(dev.graph, deployed(before, tmp_path), dev.violations)
    assert names(result.apps_added) == ["ledger"]
    assert names(result.apps_removed) == ["old-wiki"]
    assert result.apps_removed[0].uid == before.outputs["apps"]["old-wiki"]["uid"]  # the deployed app's facts
    assert result.added == (("payroll-api", "ledger"),)
    assert result.removed == (("old-wiki", "docs-api"),)
    assert len(result.unchanged) == 4
    assert result.as_dict()["apps_removed"] == [{"name": "old-wiki", "type": "self_hosted", "managed": True}]


def test_app_added_without_links_is_still_a_change(dev: Plan, tmp_path: Path) -> None:
    config = dev_config()
    config["linked-apps:apps"]["status-page"] = {"type": "self_hosted", "domain": "status.acme.com"}
    result = diff_trust(planned(config, "dev-status-page").graph, deployed(dev, tmp_path))
    assert names(result.apps_added) == ["status-page"] and result.added == () and result.changed


# -- violations -------------------------------------------------------------------------------------------------
def test_violations_of_the_plan_are_carried(dev: Plan, tmp_path: Path) -> None:
    broken = variant(add_links=(("ledger", "mcp-server"),))  # into a SaaS app: Cloudflare would reject it
    desired = planned(broken, "dev-into-saas")
    assert desired.resources == []  # the program stopped before registering anything
    result = diff_trust(desired.graph, deployed(dev, tmp_path), desired.violations)
    assert [v.rule for v in result.violations] == ["target-not-self-hosted"]
    assert "mcp-server" in result.violations[0].message
    assert result.added == (("ledger", "mcp-server"),)  # the link is still shown: that is what the PR asks for
    assert result.as_dict()["violations"][0]["apps"] == ["ledger", "mcp-server"]


def test_deployed_rule_naming_no_app_is_reported(tmp_path: Path) -> None:
    desired = TrustGraph([App("b", "self_hosted")], [])
    graph = TrustGraph([App("b", "self_hosted", uid="u-b")], [], unknown_uids=[("b", "u-gone")])
    result = diff_trust(desired, graph)
    assert result.unknown_uids == (("b", "u-gone"),)
    assert result.as_dict()["unknown_uids"] == [{"app": "b", "uid": "u-gone"}]


# -- the JSON contract ------------------------------------------------------------------------------------------
def test_json_shape(dev: Plan, tmp_path: Path) -> None:
    before = planned(variant(drop_links=(("mcp-server", "payroll-api"), ("payroll-api", "ledger"))), "dev-fewer-links")
    doc = json.loads(json.dumps(diff_trust(dev.graph, deployed(before, tmp_path)).as_dict()))
    assert doc["added"] == [{"from": "mcp-server", "to": "payroll-api"}, {"from": "payroll-api", "to": "ledger"}]
    assert doc["removed"] == []
    assert all(set(e) == {"from", "to"} for e in doc["unchanged"]) and len(doc["unchanged"]) == 3
    assert {"apps_added", "apps_removed", "violations"} <= set(doc)
    assert doc["changed"] is True


# -- properties of the pure diff ----------------------------------------------------------------------------------
NAMES = st.sampled_from(["a", "b", "c", "d", "e"])
EDGES = st.sets(st.tuples(NAMES, NAMES).filter(lambda e: e[0] != e[1]), max_size=12)


def _graph(edges: set[tuple[str, str]], apps: set[str]) -> TrustGraph:
    names_ = apps | {n for e in edges for n in e}
    return TrustGraph([App(n, "self_hosted") for n in sorted(names_)], [Link(a, b) for a, b in sorted(edges)])


@settings(max_examples=150, deadline=None)
@given(EDGES, EDGES, st.sets(NAMES), st.sets(NAMES))
def test_diff_partitions_both_sides_and_reverses(want: set, have: set, want_apps: set, have_apps: set) -> None:
    desired, deployed_ = _graph(want, want_apps), _graph(have, have_apps)
    result: TrustDiff = diff_trust(desired, deployed_)
    assert set(result.added) | set(result.unchanged) == want
    assert set(result.removed) | set(result.unchanged) == have
    assert not set(result.added) & set(result.removed)
    assert set(names(result.apps_added)) == set(desired.apps) - set(deployed_.apps)
    back = diff_trust(deployed_, desired)
    assert (back.added, back.removed, back.unchanged) == (result.removed, result.added, result.unchanged)
    assert result.changed == (want != have or set(desired.apps) != set(deployed_.apps))
