"""Mutual trust converges: a cycle of links is broken at one deterministic link, which attaches on the next up.

The program runs twice under the mock runtime; the second run's lookups see what the first created (the
resources it registered), as a second `pulumi up` sees the account the first one left.
"""

from __future__ import annotations

import json

from linked_apps.model.graph import TrustGraph
from linked_apps.review.diff import diff_trust
from linked_apps.state import APP_TYPE, POLICY_TYPE, graph_from_outputs, graph_from_resources

from ._project import plan
from .conftest import config, link, saas, self_hosted
from .test_cli_plan import run, write

APPS = {"a": self_hosted("a.acme.com"), "b": self_hosted("b.acme.com", allowEmailDomains=["acme.com"]),
        "c": self_hosted("c.acme.com"), "mcp": saas()}
LINKS = [link("a", "b"), link("b", "a"), link("b", "c"), link("c", "a"), link("mcp", "a")]


def deployed(resources: list[dict]) -> TrustGraph:
    """What Cloudflare would hold after an up that created `resources`, read by the state reader."""
    return graph_from_resources([{"type": r["type"], "id": r["id"], "props": r["inputs"], "name": r["name"]}
                                 for r in resources if r["type"] in (APP_TYPE, POLICY_TYPE)])


def test_two_runs_attach_every_link_of_the_cycles():
    values = config(APPS, LINKS)
    first = plan(values)
    assert first.violations == []
    assert first.deferred == [("b", "a"), ("c", "a")]
    after_first = deployed(first.resources)
    assert after_first.edges() == {("a", "b"), ("b", "c"), ("mcp", "a")}
    [warning] = first.warnings
    assert "links still to attach: b -> a, c -> a" in warning and "pulumi up" in warning
    # The trust policies of the deferred links exist already, so the next run can find them.
    assert {"b-trust-policy", "c-trust-policy"} <= {r["name"] for r in first.resources}

    second = plan(values, existing=first.resources)
    assert deployed(second.resources).edges() == {(l["from"], l["to"]) for l in LINKS}
    assert second.warnings == []
    # Same ids both runs: the second run updates what the first created, it does not duplicate it.
    assert {r["name"]: r["id"] for r in second.resources} == {r["name"]: r["id"] for r in first.resources}


def test_outputs_list_only_attached_links_and_name_the_deferred_ones():
    values = config(APPS, LINKS)
    first = plan(values)
    assert {(l["from"], l["to"]) for l in first.outputs["links"]} == {("a", "b"), ("b", "c"), ("mcp", "a")}
    assert first.outputs["deferred"] == [{"from": "b", "to": "a"}, {"from": "c", "to": "a"}]
    second = plan(values, existing=first.resources)
    assert len(second.outputs["links"]) == len(LINKS)
    assert graph_from_outputs(json.loads(json.dumps(second.outputs))).edges() == {(l["from"], l["to"]) for l in LINKS}


def test_a_policy_of_the_right_name_naming_another_app_is_not_attached():
    """Fail closed: the lookup takes a policy only if its sole rule names the source app's uid."""
    values = config(APPS, LINKS)
    first = plan(values)
    forged = [dict(r, inputs={**r["inputs"], "includes": [{"linkedAppToken": {"appUid": "0" * 8 + "-0000-0000-0000-" + "0" * 12}}]})
              if r["name"] == "b-trust-policy" else r for r in first.resources]
    second = plan(values, existing=forged)
    assert ("b", "a") not in deployed(second.resources).edges()
    assert "b -> a" in second.warnings[0] and "c -> a" not in second.warnings[0]


def test_diff_against_the_first_up_shows_deferred_links_as_pending():
    values = config(APPS, LINKS)
    first = plan(values)
    result = diff_trust(first.topology.trust_graph(), deployed(first.resources), deferred=first.deferred)
    assert result.pending == (("b", "a"), ("c", "a"))
    assert result.removed == () and result.added == ()


def test_plan_of_a_cycle_exits_0_and_shows_the_deferred_links(tmp_path):
    path = write(tmp_path, config(APPS, LINKS))
    out = run("plan", "--config", str(path), "--format", "json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["deferred"] == [{"from": "b", "to": "a"}, {"from": "c", "to": "a"}]
    assert doc["violations"] == []
    text = run("plan", "--config", str(path)).stdout
    assert "b -> a" in text and "attaches on the next `pulumi up`" in text
    markdown = run("plan", "--config", str(path), "--format", "markdown").stdout
    assert "| `b` | `a` |" in markdown and "next `pulumi up`" in markdown


def test_pending_links_read_as_such_in_every_diff_format():
    from linked_apps.review.render import Drawing, diff_markdown, diff_text, mermaid

    values = config(APPS, LINKS)
    first = plan(values)
    result = diff_trust(first.topology.trust_graph(), deployed(first.resources), deferred=first.deferred)
    text = diff_text(result, "stack dev", "state.json")
    assert "  ~ b -> a" in text and "attaches on the next `pulumi up`" in text
    assert "0 links added, 2 pending, 0 removed" in text
    markdown = diff_markdown(result, "stack dev", "state.json")
    assert "| pending | `b` | `a` |" in markdown
    assert "==>|pending|" in mermaid(Drawing.of_diff(result))
    assert result.as_dict()["pending"] == [{"from": "b", "to": "a"}, {"from": "c", "to": "a"}]


def test_a_first_preview_of_a_cycle_runs_through_with_ids_unknown():
    """A real first `pulumi preview`: nothing exists, ids are unknown, the lookups answer from an empty account."""
    import runpy

    from pulumi.runtime import mocks

    from ._mock_engine import run_program
    from ._project import PROGRAM

    class EmptyAccount(mocks.Mocks):
        def __init__(self) -> None:
            self.names: list[str] = []
            self.calls: list[str] = []

        def new_resource(self, args):
            self.names.append(args.name)
            return "", dict(args.inputs)  # preview: no id yet

        def call(self, args):
            self.calls.append(args.token.rsplit(":", 1)[-1])
            return {"results": []}, []

    account = EmptyAccount()
    values = {k: v if isinstance(v, str) else json.dumps(v) for k, v in config(APPS, LINKS).items()}
    run_program(lambda: runpy.run_path(str(PROGRAM), run_name="__main__") and None, account, config=values,
                preview=True)
    assert {"a-app", "b-app", "c-app", "b-trust-policy", "c-trust-policy"} <= set(account.names)
    assert sorted(set(account.calls)) == ["getZeroTrustAccessApplications", "getZeroTrustAccessPolicies"]
