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


def steps(workflow: dict[Any, Any], job: str = "review") -> list[dict[str, Any]]:
    return workflow["jobs"][job]["steps"]


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


def test_runs_on_pull_requests_and_only_the_review_may_comment(workflow: dict[Any, Any]) -> None:
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    assert "pull_request" in triggers and "pull_request_target" not in triggers
    assert workflow["permissions"] == {}
    perms = {name: job["permissions"] for name, job in workflow["jobs"].items()}
    assert perms == {"test": {"contents": "read"}, "review": {"contents": "read", "pull-requests": "write"},
                     "preview": {"contents": "read"}}


# -- where the pull request's code runs, and where secrets are ----------------------------------------------------
_FLAG = re.compile(r"\$\{\{\s*secrets\.\w+\s*!=\s*''\s*\}\}")


def secrets_in(value: Any) -> list[str]:
    """Secrets whose VALUE `value` carries (`secrets.X != ''` is only a true/false flag)."""
    return re.findall(r"secrets\.(\w+)", _FLAG.sub("", json.dumps(value)))


def pr_checkouts(job: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Path -> `with` of each checkout of the pull request (its merge commit by default, or its head)."""
    out = {}
    for step in job["steps"]:
        if step.get("uses", "").startswith("actions/checkout@"):
            opts = step.get("with") or {}
            if "ref" not in opts or "pull_request.head" in str(opts["ref"]):
                out[opts.get("path", ".")] = opts
    return out


def runs_pr_code(step: dict[str, Any], job: dict[str, Any]) -> bool:
    """The step executes something the pull request wrote: a command in a full checkout of it, or Pulumi running
    the program there. A sparse checkout of stacks/ alone holds only YAML."""
    full = {path for path, opts in pr_checkouts(job).items() if "sparse-checkout" not in opts}
    if "run" in step:
        return step.get("working-directory", ".") in full
    if step.get("uses", "").startswith("pulumi/actions@") and (step.get("with") or {}).get("command"):
        return (step.get("with") or {}).get("work-dir", ".").rstrip("/") in full | {"./"}
    return False


@pytest.mark.parametrize("name", ["test", "review", "preview"])
def test_no_secret_reaches_a_step_after_pull_request_code_ran(workflow: dict[Any, Any], name: str) -> None:
    """A step running PR code can plant $GITHUB_ENV/$GITHUB_PATH entries or files for every later step: so a step
    holding a secret never follows one; the one step that runs PR code with secrets is `pulumi preview`."""
    job = workflow["jobs"][name]
    assert secrets_in(job.get("env", {})) == [], "job-level env reaches every step"
    ran_pr_code = False
    for step in job["steps"]:
        held = secrets_in({k: v for k, v in step.items() if k != "if"})
        assert not (held and ran_pr_code), (name, step.get("name"), held)
        if held and runs_pr_code(step, job):
            is_preview = (step.get("with") or {}).get("command") == "preview"
            assert is_preview and step is job["steps"][-1], (name, step.get("name"), held)
        ran_pr_code = ran_pr_code or runs_pr_code(step, job)


def test_every_checkout_leaves_no_token_behind(workflow: dict[Any, Any]) -> None:
    for name, job in workflow["jobs"].items():
        for step in job["steps"]:
            if step.get("uses", "").startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False, (name, step.get("name"))


def test_jobs_running_pull_request_code_cannot_write(workflow: dict[Any, Any]) -> None:
    for name, job in workflow["jobs"].items():
        if any(runs_pr_code(step, job) for step in job["steps"]):
            assert job["permissions"] == {"contents": "read"}, name


def test_the_preview_job_runs_nothing_before_the_preview(workflow: dict[Any, Any]) -> None:
    job = workflow["jobs"]["preview"]
    *before, preview = job["steps"]
    assert [s["uses"].split("@")[0] for s in before] == ["actions/checkout", "actions/setup-python"]
    assert preview["uses"] == "pulumi/actions@v7" and preview["with"]["command"] == "preview"
    assert job["if"] == "github.event.pull_request.head.repo.full_name == github.repository"
    assert preview["with"]["comment-on-pr"] is False and preview["with"]["comment-on-summary"] is True
    assert preview["with"]["policyPacks"] == "policy/"
    assert (ROOT / preview["with"]["policyPacks"] / "PulumiPolicy.yaml").is_file()
    assert preview["env"]["CLOUDFLARE_API_TOKEN"] == "${{ secrets.CLOUDFLARE_API_TOKEN }}"


def test_pulumi_actions_inputs_exist_in_v7(workflow: dict[Any, Any]) -> None:
    """The inputs of pulumi/actions v7.0.0's action.yml (node24) that this workflow may use."""
    v7 = {"command", "stack-name", "work-dir", "comment-on-pr", "comment-on-summary", "github-token", "cloud-url",
          "policyPacks", "policyPackConfigs", "pulumi-version", "edit-pr-comment", "always-include-summary"}
    for job in workflow["jobs"].values():
        for step in job["steps"]:
            if step.get("uses", "").startswith("pulumi/actions@"):
                assert step["uses"] == "pulumi/actions@v7"
                assert set(step.get("with") or {}) <= v7, step.get("name")


def test_the_review_judges_with_the_base_branch_and_reads_only_the_prs_stack_yaml(workflow: dict[Any, Any]) -> None:
    job = workflow["jobs"]["review"]
    checkouts = {s["with"]["path"]: s["with"] for s in job["steps"] if s.get("uses", "").startswith("actions/checkout@")}
    assert checkouts["base"]["ref"] == "${{ github.event.pull_request.base.sha }}"
    assert checkouts["pr"]["ref"] == "${{ github.event.pull_request.head.sha }}"
    assert checkouts["pr"]["sparse-checkout"].split() == ["/stacks/"]  # the top-level stacks/ only
    assert checkouts["pr"]["sparse-checkout-cone-mode"] is False  # cone mode would add every top-level file
    assert not any(runs_pr_code(s, job) for s in job["steps"])
    for step in job["steps"]:
        script = step.get("run", "")
        assert step.get("working-directory", "base") == "base" or not script
        assert "./dev" not in script or step.get("working-directory") == "base"
        # The PR's checkout is named only as the stack file handed to the base branch's tool.
        assert set(re.findall(r"\bpr/[^\s\"]*", script)) <= {"pr/stacks/Pulumi.$STACK.yaml"}
    script = next(s["run"] for s in job["steps"] if s.get("id") == "review")
    assert "tool=base/.venv/bin/linked-apps" in script
    # The deployed side: the backend's export, or the file in the base branch; never the PR's.
    assert 'state="${DEPLOYED_STATE:-base/$STATE_FILE}"' in script and '--state "$state"' in script
    writers = [s for s in job["steps"] if "DEPLOYED_STATE=" in s.get("run", "")]
    assert len(writers) == 1 and 'DEPLOYED_STATE=$RUNNER_TEMP/' in writers[0]["run"]
    assert "pulumi stack export" in writers[0]["run"]


def test_one_comment_updated_by_its_marker(workflow: dict[Any, Any]) -> None:
    (post,) = [s for s in steps(workflow) if s.get("uses", "").startswith("actions/github-script@")]
    script = post["with"]["script"]
    assert f'"{MARKER}"' in script and "updateComment" in script and "createComment" in script
    assert script.index("updateComment") < script.index("createComment")  # update first, create only if none
    assert MARKER in "\n".join(s.get("run", "") for s in steps(workflow))


def test_default_state_is_committed_and_readable(workflow: dict[Any, Any]) -> None:
    default = re.search(r"\|\| '([^']+)'", workflow["jobs"]["review"]["env"]["STATE_FILE"]).group(1)
    assert read_state(ROOT / default).edges()


def test_every_secret_and_variable_is_documented(workflow: dict[Any, Any]) -> None:
    text = WORKFLOW.read_text()
    used = set(re.findall(r"(?:secrets|vars)\.([A-Z_]+)", text))
    assert {"PULUMI_BACKEND_URL", "CLOUDFLARE_API_TOKEN", "LINKED_APPS_STATE"} <= used
    readme = (ROOT / "README.md").read_text()
    for name in used:
        assert f"`{name}`" in readme, f"README does not document {name}"
        assert re.search(rf"#\s+(secrets|vars)\.{name}\b", text), f"workflow header does not document {name}"
    assert "What a pull request can reach" in readme and "read-only" in readme


def _run_review_step(workflow: dict[Any, Any], tmp_path: Path, stack_yaml: str) -> tuple[int, dict[str, str]]:
    """The review step as the runner runs it: the base branch checked out at base/ (this repository, with its
    installed .venv), the pull request's stack YAML alone at pr/stacks/."""
    if not (ROOT / ".venv" / "bin" / "linked-apps").exists():
        pytest.skip("needs the repository's .venv (./dev makes it)")
    (review,) = [s for s in steps(workflow) if s.get("id") == "review"]
    script = review["run"].replace("${{ github.event.pull_request.head.sha }}", "0123abc")
    (tmp_path / "base").symlink_to(ROOT)
    (tmp_path / "pr" / "stacks").mkdir(parents=True)
    (tmp_path / "pr" / "stacks" / "Pulumi.dev.yaml").write_text(stack_yaml)
    runner = tmp_path / "runner"
    runner.mkdir()
    out, summary = runner / "output", runner / "summary"
    env = {**os.environ, "STACK": "dev", "STATE_FILE": "examples/dev-state.json", "RUNNER_TEMP": str(runner),
           "GITHUB_OUTPUT": str(out), "GITHUB_STEP_SUMMARY": str(summary)}
    env.pop("DEPLOYED_STATE", None)
    done = subprocess.run(["bash", "-e", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True)
    return done.returncode, dict(line.split("=") for line in out.read_text().split())


def test_review_step_builds_the_comment(workflow: dict[Any, Any], tmp_path: Path) -> None:
    rc, outputs = _run_review_step(workflow, tmp_path, (ROOT / "stacks" / "Pulumi.dev.yaml").read_text())
    assert rc == 0 and outputs == {"plan": "0", "diff": "1"}  # trust changes: not a failure
    comment = (tmp_path / "runner" / "comment.md").read_text()
    assert comment.splitlines()[0] == MARKER
    assert comment.splitlines()[1].startswith("### Trust review: 2 links added, 1 removed")
    changes = markdown_tables(comment)[0]
    assert [(r["change"], r["from"], r["to"]) for r in changes][0] == ("added", "mcp-server", "payroll-api")
    assert "```mermaid" in comment and "<details><summary>linked-apps plan" in comment
    assert "deployed state: <code>base/examples/dev-state.json</code>" in comment
    assert "Desired `pr/stacks/Pulumi.dev.yaml`" in comment


def test_review_step_fails_the_check_when_diff_cannot_run(workflow: dict[Any, Any], tmp_path: Path) -> None:
    hostile = (ROOT / "stacks" / "Pulumi.dev.yaml").read_text().replace("    payroll-api:\n", "    payroll-\u0430pi:\n", 1)
    hostile = hostile.replace("  linked-apps:apps:\n", "  linked-apps:apps:\n    payroll-api:\n      type: self_hosted\n"
                              "      domain: evil.acme.com\n", 1)
    rc, outputs = _run_review_step(workflow, tmp_path, hostile)
    assert outputs["diff"] == "2" and rc == 2  # a look-alike name: unusable input, never "trust changed"


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
