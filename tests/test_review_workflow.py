"""The trust-review workflow: valid against GitHub's workflow schema (vendored, offline), and doing what the
README promises. Its review step is run for real with a stand-in for `./dev`."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from linked_apps.state import read_state
from tests._review_parsers import markdown_tables

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / ".github" / "workflows" / "trust-review.yml"
MARKER = "<!-- linked-apps-trust-review -->"
OFFLINE = {"http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9",
           "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9"}


@pytest.fixture(scope="module")
def workflow() -> dict[Any, Any]:
    return yaml.safe_load(WORKFLOW.read_text())


def steps(workflow: dict[Any, Any]) -> list[dict[str, Any]]:
    return workflow["jobs"]["review"]["steps"]


def check_jsonschema(path: Path) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("check-jsonschema")
    return subprocess.run([str(exe), "--builtin-schema", "vendor.github-workflows", str(path)],
                          capture_output=True, text=True, env={**os.environ, **OFFLINE})


@pytest.mark.parametrize("path", sorted((ROOT / ".github" / "workflows").glob("*.y*ml")), ids=lambda p: p.name)
def test_workflows_match_githubs_schema_offline(path: Path) -> None:
    result = check_jsonschema(path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_catches_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(WORKFLOW.read_text().replace("runs-on: ubuntu-latest", "runs_on: ubuntu-latest"))
    result = check_jsonschema(broken)
    assert result.returncode == 1 and "'runs-on' is a required property" in result.stdout


def test_runs_on_pull_requests_and_may_comment(workflow: dict[Any, Any]) -> None:
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    assert "pull_request" in triggers
    assert workflow["permissions"] == {"contents": "read", "pull-requests": "write"}


def test_installs_tests_plans_and_diffs(workflow: dict[Any, Any]) -> None:
    runs = "\n".join(s.get("run", "") for s in steps(workflow))
    assert "./dev test" in runs
    assert re.search(r"\./dev linked-apps plan --stack \"\$STACK\" --format markdown", runs)
    assert re.search(r"\./dev linked-apps diff --stack \"\$STACK\" --against \"\$LINKED_APPS_STATE\" "
                     r"--format markdown", runs)
    assert "pulumi stack export" in runs  # with a backend, the deployed state is fetched


def test_one_comment_updated_by_its_marker(workflow: dict[Any, Any]) -> None:
    (post,) = [s for s in steps(workflow) if s.get("uses", "").startswith("actions/github-script@")]
    script = post["with"]["script"]
    assert f'"{MARKER}"' in script and "updateComment" in script and "createComment" in script
    assert script.index("updateComment") < script.index("createComment")  # update first, create only if none
    assert MARKER in "\n".join(s.get("run", "") for s in steps(workflow))


def test_preview_with_policy_pack_only_when_secrets_exist(workflow: dict[Any, Any]) -> None:
    (preview,) = [s for s in steps(workflow) if s.get("with", {}).get("command") == "preview"]
    assert preview["uses"].startswith("pulumi/actions@")
    assert preview["with"]["comment-on-pr"] is True
    assert preview["with"]["policyPacks"] == "policy/"
    assert (ROOT / preview["with"]["policyPacks"] / "PulumiPolicy.yaml").is_file()
    assert "HAS_BACKEND == 'true'" in preview["if"] and "HAS_CLOUDFLARE == 'true'" in preview["if"]
    assert preview["env"]["CLOUDFLARE_API_TOKEN"] == "${{ secrets.CLOUDFLARE_API_TOKEN }}"


def test_default_state_is_committed_and_readable(workflow: dict[Any, Any]) -> None:
    default = re.search(r"\|\| '([^']+)'", workflow["jobs"]["review"]["env"]["LINKED_APPS_STATE"]).group(1)
    assert read_state(ROOT / default).edges()


def test_every_secret_and_variable_is_documented(workflow: dict[Any, Any]) -> None:
    text = WORKFLOW.read_text()
    used = set(re.findall(r"(?:secrets|vars)\.([A-Z_]+)", text))
    assert {"PULUMI_BACKEND_URL", "CLOUDFLARE_API_TOKEN", "LINKED_APPS_STATE"} <= used
    readme = (ROOT / "README.md").read_text()
    for name in used:
        assert f"`{name}`" in readme, f"README does not document {name}"
        assert re.search(rf"#\s+(secrets|vars)\.{name}\b", text), f"workflow header does not document {name}"


def test_review_step_builds_the_comment(workflow: dict[Any, Any], tmp_path: Path) -> None:
    (review,) = [s for s in steps(workflow) if s.get("id") == "review"]
    script = review["run"].replace("${{ github.event.pull_request.head.sha }}", "0123abc")
    shim = tmp_path / "dev"  # `./dev CMD` runs CMD from the venv, as the real ./dev does once installed
    shim.write_text(f'#!/usr/bin/env bash\ncmd=$1; shift\ncd "{ROOT}" && exec "{Path(sys.executable).parent}/$cmd" "$@"\n')
    shim.chmod(0o755)
    out, summary = tmp_path / "output", tmp_path / "summary"
    env = {**os.environ, "STACK": "dev", "LINKED_APPS_STATE": "examples/dev-state.json", "RUNNER_TEMP": str(tmp_path),
           "GITHUB_OUTPUT": str(out), "GITHUB_STEP_SUMMARY": str(summary)}
    subprocess.run(["bash", "-e", "-c", script], cwd=tmp_path, env=env, check=True)
    assert dict(line.split("=") for line in out.read_text().split()) == {"plan": "0", "diff": "0"}
    comment = (tmp_path / "comment.md").read_text()
    assert comment.splitlines()[0] == MARKER
    assert comment.splitlines()[1].startswith("### Trust review: 2 links added, 1 removed")
    changes = markdown_tables(comment)[0]
    assert [(r["change"], r["from"], r["to"]) for r in changes][0] == ("added", "mcp-server", "payroll-api")
    assert "```mermaid" in comment and "<details><summary>linked-apps plan" in comment
    assert summary.read_text() == comment


# -- the comment script, run under Node against a fake GitHub API ---------------------------------------------------
HARNESS = r"""
const fs = require("fs");
const [script, statePath] = process.argv.slice(2);
const state = JSON.parse(fs.readFileSync(statePath, "utf8"));
const calls = [];
const github = {
  paginate: async (method, args) => { calls.push(["list", args.issue_number]); return state.comments; },
  rest: { issues: {
    listComments: () => { throw new Error("called through paginate only"); },
    updateComment: async ({ comment_id, body }) => {
      calls.push(["update", comment_id]);
      state.comments.find((c) => c.id === comment_id).body = body;
    },
    createComment: async ({ issue_number, body }) => {
      calls.push(["create", issue_number]);
      state.comments.push({ id: 1000 + state.comments.length, user: { type: "Bot" }, body });
    },
  } },
};
const context = { repo: { owner: "acme", repo: "infra" }, payload: { pull_request: { number: 7 } },
                  serverUrl: "https://github.com", runId: 42 };
const AsyncFunction = Object.getPrototypeOf(async function () {}).constructor;
new AsyncFunction("require", "github", "context", fs.readFileSync(script, "utf8"))(require, github, context)
  .then(() => console.log(JSON.stringify({ calls, comments: state.comments })))
  .catch((e) => { console.error(e); process.exit(1); });
"""


def _post(workflow: dict[Any, Any], tmp_path: Path, comments: list[dict[str, Any]], body: str) -> dict[str, Any]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("needs Node.js (actions/github-script runs the script under Node)")
    (post,) = [s for s in steps(workflow) if s.get("uses", "").startswith("actions/github-script@")]
    (tmp_path / "script.js").write_text(post["with"]["script"])
    (tmp_path / "harness.js").write_text(HARNESS)
    (tmp_path / "state.json").write_text(json.dumps({"comments": comments}))
    (tmp_path / "comment.md").write_text(body)
    out = subprocess.run([node, str(tmp_path / "harness.js"), str(tmp_path / "script.js"), str(tmp_path / "state.json")],
                         env={**os.environ, "COMMENT_FILE": str(tmp_path / "comment.md")}, capture_output=True,
                         text=True, check=True).stdout
    return json.loads(out)


def test_comment_is_created_once_then_updated(workflow: dict[Any, Any], tmp_path: Path) -> None:
    human = {"id": 1, "user": {"type": "User"}, "body": f"why does the bot post {MARKER}?"}
    first = _post(workflow, tmp_path, [human], f"{MARKER}\nfirst push")
    assert first["calls"] == [["list", 7], ["create", 7]]
    second = _post(workflow, tmp_path, first["comments"], f"{MARKER}\nsecond push")
    assert second["calls"] == [["list", 7], ["update", 1001]]
    assert [c["body"] for c in second["comments"]] == [human["body"], f"{MARKER}\nsecond push"]


def test_oversized_comment_is_cut_to_githubs_limit(workflow: dict[Any, Any], tmp_path: Path) -> None:
    result = _post(workflow, tmp_path, [], f"{MARKER}\n" + "x" * 70_000)
    body = result["comments"][0]["body"]
    assert body.startswith(MARKER) and len(body) < 65_536
    assert "https://github.com/acme/infra/actions/runs/42" in body


def test_secrets_reach_only_the_steps_that_need_them(workflow: dict[Any, Any]) -> None:
    """Tests, plan and diff run the pull request's code: no secret may be in their environment."""
    job = workflow["jobs"]["review"]
    # `secrets.X != ''` is only a flag (true/false); any other use of a secret puts its value in the environment.
    leaked = {k: v for k, v in job["env"].items() if "secrets." in str(v) and "!= ''" not in str(v)}
    assert leaked == {}
    for step in steps(workflow):
        runs_pr_code = "./dev" in step.get("run", "")
        secrets = [k for k, v in (step.get("env") or {}).items() if "secrets." in str(v)]
        assert not (runs_pr_code and secrets), step["name"]
