"""`linked-apps diff` and `linked-apps graph` as users run them: options, formats, exit codes, bad input."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from linked_apps.cli import main
from linked_apps.review.plan import Plan, read_config_file
from tests._review_export import ROOT, dev_config, export_document, output_document, planned, refreshed_example
from tests._review_parsers import fenced_blocks, markdown_tables, parse_dot, parse_mermaid
from tests._startup_probe import loaded_by

EXAMPLE_STATE = "examples/dev-state.json"


def planned_before() -> Plan:
    """The plan of the config the example state was deployed from."""
    return planned(read_config_file(ROOT / "examples" / "dev-before.yaml"), "dev-before")


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def dev_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("state") / "dev-export.json"
    path.write_text(json.dumps(export_document(planned(dev_config(), "dev"))))
    return path


@pytest.fixture(autouse=True)
def _in_repo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # the README's commands use repository-relative paths


# -- diff -------------------------------------------------------------------------------------------------------
def test_diff_json_against_the_same_stack_is_empty_and_exit_code_0(dev_export: Path) -> None:
    result = run("diff", "--stack", "dev", "--against", str(dev_export), "--format", "json", "--exit-code")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["added"] == [] and doc["removed"] == [] and doc["apps_added"] == [] and doc["apps_removed"] == []
    assert len(doc["unchanged"]) == 5 and doc["violations"] == [] and doc["changed"] is False


def test_diff_json_against_the_example_state_exits_1_with_exit_code() -> None:
    result = run("diff", "--stack", "dev", "--against", EXAMPLE_STATE, "--format", "json", "--exit-code")
    assert result.exit_code == 1
    doc = json.loads(result.output)
    assert doc["added"] == [{"from": "mcp-server", "to": "payroll-api"}, {"from": "payroll-api", "to": "ledger"}]
    assert doc["removed"] == [{"from": "hr-portal", "to": "docs-api"}]
    assert [a["name"] for a in doc["apps_added"]] == ["ledger"] and doc["apps_removed"] == []
    # without --exit-code a change is not an error
    assert run("diff", "--stack", "dev", "--against", EXAMPLE_STATE, "--format", "json").exit_code == 0


def test_diff_reads_stack_outputs_like_an_export(tmp_path: Path) -> None:
    before = planned_before()
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(output_document(before)))
    via_outputs = json.loads(run("diff", "--stack", "dev", "--against", str(path), "--format", "json").output)
    via_export = json.loads(run("diff", "--stack", "dev", "--against", EXAMPLE_STATE, "--format", "json").output)
    assert via_outputs == via_export


def test_diff_with_a_broken_config_reports_its_violations(tmp_path: Path, dev_export: Path) -> None:
    config = dev_config()
    config.pop("linked-apps:assertions", None)
    config["linked-apps:links"].append({"from": "ledger", "to": "mcp-server"})
    path = tmp_path / "Pulumi.broken.yaml"
    path.write_text(yaml.safe_dump({"config": config}))
    result = run("diff", "--config", str(path), "--against", str(dev_export), "--format", "json")
    assert result.exit_code == 0
    doc = json.loads(result.output)
    assert doc["added"] == [{"from": "ledger", "to": "mcp-server"}]
    assert [v["rule"] for v in doc["violations"]] == ["target-not-self-hosted"]
    assert "mcp-server" in doc["violations"][0]["message"]
    markdown = run("diff", "--config", str(path), "--against", str(dev_export), "--format", "markdown").output
    assert markdown.splitlines()[0].endswith("; 1 rule violation")
    assert markdown_tables(markdown)[1][0]["rule"] == "target-not-self-hosted"  # after the link changes


def test_diff_markdown_parses(dev_export: Path) -> None:
    text = run("diff", "--stack", "dev", "--against", EXAMPLE_STATE, "--format", "markdown").output
    assert text.splitlines()[0] == ("### Trust review: 2 links added, 1 removed, 3 unchanged; 1 app added, 0 removed; "
                                    "no rule violations")
    changes, apps, unchanged = markdown_tables(text)
    assert apps == [{"app": "ledger", "change": "added", "kind": "self_hosted"}] and len(unchanged) == 3
    assert [(r["change"], r["from"], r["to"]) for r in changes] == [
        ("added", "mcp-server", "payroll-api"), ("added", "payroll-api", "ledger"), ("removed", "hr-portal", "docs-api")]
    chart = parse_mermaid(fenced_blocks(text, "mermaid")[0])
    styled = {(s, t): (e.arrow, style is not None) for s, t, e, style in chart.named_edges()}
    assert styled[("mcp-server", "payroll-api")] == ("==>", True)
    assert styled[("hr-portal", "docs-api")] == ("-.->", True)
    assert styled[("legacy-crm", "docs-api")] == ("-->", False)


def test_diff_text_and_picture_formats() -> None:
    text = run("diff", "--stack", "dev", "--against", EXAMPLE_STATE).output
    assert re.search(r"^  \+ mcp-server -> payroll-api +\[Authorization: Bearer\]$", text, re.M)
    assert re.search(r"^  - hr-portal -> docs-api +\[Cf-Access-Token\]$", text, re.M)
    dot = parse_dot(run("diff", "--stack", "dev", "--against", EXAMPLE_STATE, "--format", "dot").output)
    assert {(a, b): attrs.get("label") for a, b, attrs in dot.edges}[("hr-portal", "docs-api")] == "removed"
    chart = parse_mermaid(run("diff", "--stack", "dev", "--against", EXAMPLE_STATE, "--format", "mermaid").output)
    assert len(chart.edges) == 6


@pytest.mark.parametrize("content, message", [
    (None, "cannot be read"),
    ("{not json", "not JSON"),
    ("[1, 2]", "expected a JSON object"),
    ('{"team_domain": "x"}', "no `apps` object"),
])
def test_diff_unreadable_state_exits_2_naming_the_file(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "state.json"
    if content is not None:
        path.write_text(content)
    result = CliRunner().invoke(main, ["diff", "--stack", "dev", "--against", str(path)])
    assert result.exit_code == 2
    assert f"linked-apps: {path}: " in result.output and message in result.output
    assert "Traceback" not in result.output


def test_diff_needs_a_stack_or_a_config_and_a_state() -> None:
    neither = CliRunner().invoke(main, ["diff", "--state", EXAMPLE_STATE])
    assert neither.exit_code == 2 and "exactly one of --stack NAME or --config FILE" in neither.output
    missing = CliRunner().invoke(main, ["diff", "--stack", "dev"])
    assert missing.exit_code == 2 and "--state" in missing.output
    assert missing.output.count("\n") == 1 and missing.output.startswith("linked-apps: diff: ")
    unknown = CliRunner().invoke(main, ["diff", "--stack", "nope", "--against", EXAMPLE_STATE])
    assert unknown.exit_code == 2 and "Pulumi.nope.yaml: no such file; stacks here:" in unknown.output


# -- graph ------------------------------------------------------------------------------------------------------
def test_graph_of_the_stack_and_of_its_deployed_state_agree(dev_export: Path) -> None:
    desired = parse_mermaid(run("graph", "--stack", "dev").output)
    deployed = parse_mermaid(run("graph", "--state", str(dev_export)).output)
    edges = {(s, t) for s, t, _, _ in desired.named_edges()}
    assert edges == {(s, t) for s, t, _, _ in deployed.named_edges()}
    assert edges == {("hr-portal", "payroll-api"), ("legacy-crm", "docs-api"), ("mcp-server", "docs-api"),
                     ("mcp-server", "payroll-api"), ("payroll-api", "ledger")}
    assert desired.link_styles == {}  # a picture of one side: nothing is added or removed


def test_graph_dot_parses() -> None:
    parsed = parse_dot(run("graph", "--stack", "prod", "--format", "dot").output)
    assert {(a, b) for a, b, _ in parsed.edges} == {("storefront-admin", "orders-api"), ("platform-mcp", "orders-api")}
    assert parsed.nodes["platform-mcp"]["shape"] == "ellipse"
    assert "managed elsewhere" in parsed.nodes["storefront-admin"]["label"]


@pytest.mark.parametrize("args", [[], ["--stack", "dev", "--state", EXAMPLE_STATE], ["--state", "missing.json"],
                                  ["--config", "missing.yaml"]])
def test_graph_bad_input_exits_2(args: list[str]) -> None:
    result = CliRunner().invoke(main, ["graph", *args])
    assert result.exit_code == 2 and result.output.startswith("linked-apps: ")


def test_graph_never_imports_pulumi() -> None:
    code, loaded = loaded_by("graph", "--stack", "dev", "--format", "dot")
    assert code == 0
    assert not loaded & {"pulumi", "pulumi_cloudflare"}


# -- the README's example is what the command prints ------------------------------------------------------------
def test_readme_example_is_the_real_output() -> None:
    readme = (ROOT / "README.md").read_text()
    match = re.search(r"<!-- review-example:start -->\n(.*?)\n<!-- review-example:end -->", readme, re.S)
    assert match, "README lost its review example markers"
    printed = run("diff", "--stack", "dev", "--against", EXAMPLE_STATE, "--format", "markdown").output
    assert match.group(1) == printed.rstrip("\n"), (
        "README example is stale: paste the output of "
        "`linked-apps diff --stack dev --against examples/dev-state.json --format markdown`")


def test_example_state_is_what_the_program_deploys_for_the_before_config() -> None:
    stale = ("examples are stale: .venv/bin/python tests/_review_export.py examples/dev-before.yaml "
             "examples/dev-state.json examples/dev-outputs.json")
    committed = json.loads((ROOT / EXAMPLE_STATE).read_text())
    assert committed == json.loads(json.dumps(export_document(planned_before()))), stale
    outputs = json.loads((ROOT / "examples" / "dev-outputs.json").read_text())
    assert outputs == json.loads(json.dumps(output_document(planned_before()))), stale


def test_refreshed_example_is_the_dev_stack_with_one_hand_made_attachment() -> None:
    committed = json.loads((ROOT / "examples" / "dev-refreshed-state.json").read_text())
    assert committed == json.loads(json.dumps(refreshed_example())), (
        "examples are stale: .venv/bin/python tests/_review_export.py --refreshed examples/dev-refreshed-state.json")
