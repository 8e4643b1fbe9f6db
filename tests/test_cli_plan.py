"""`linked-apps plan`: the exact contract users' scripts depend on (options, JSON fields, exit codes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from .conftest import EXISTING_UID, config, link, saas, self_hosted

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "linked_apps", *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)


def write(tmp_path: Path, values: dict) -> Path:
    path = tmp_path / "Pulumi.test.yaml"
    path.write_text(yaml.safe_dump({"config": values}))
    return path


def test_dev_stack_json_shows_both_flows_and_no_violations():
    out = run("plan", "--stack", "dev", "--format", "json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert set(doc) == {"apps", "links", "deferred", "violations", "resources"}
    assert doc["deferred"] == []  # no cycle in the dev stack
    apps = {a["name"]: a for a in doc["apps"]}
    assert all(set(a) == {"name", "type", "managed"} for a in doc["apps"])
    assert apps["mcp-server"]["type"] == "saas" and apps["legacy-crm"]["managed"] is False
    links = {(l["from"], l["to"]) for l in doc["links"]}
    assert ("hr-portal", "payroll-api") in links      # self-hosted -> self-hosted
    assert ("mcp-server", "payroll-api") in links     # SaaS -> self-hosted
    assert doc["violations"] == []
    assert all(set(r) == {"type", "name"} for r in doc["resources"])
    assert {"type": "cloudflare:index/zeroTrustAccessPolicy:ZeroTrustAccessPolicy",
            "name": "mcp-server-trust-policy"} in doc["resources"]


def test_link_into_saas_app_exits_1_naming_the_app(tmp_path):
    path = write(tmp_path, config({"hr-portal": self_hosted("hr.acme.com"), "mcp-server": saas()},
                                  [link("hr-portal", "mcp-server")]))
    out = run("plan", "--config", str(path), "--format", "json")
    assert out.returncode == 1
    [v] = json.loads(out.stdout)["violations"]
    assert v["rule"] == "target-not-self-hosted" and "mcp-server" in v["message"] and "hr-portal" in v["message"]
    text = run("plan", "--config", str(path))
    assert text.returncode == 1 and "[target-not-self-hosted]" in text.stdout and "Traceback" not in text.stderr


def test_three_broken_links_give_three_violations(tmp_path):
    path = write(tmp_path, config({"a": self_hosted("a.acme.com"), "mcp": saas(),
                                   "old": {"type": "self_hosted", "uid": EXISTING_UID}},
                                  [link("a", "mcp"), link("a", "old"), link("a", "ghost")]))
    out = run("plan", "--config", str(path), "--format", "json")
    assert out.returncode == 1
    doc = json.loads(out.stdout)
    assert [v["rule"] for v in doc["violations"]] == ["target-not-self-hosted", "target-not-managed", "unknown-app"]
    for v, app in zip(doc["violations"], ["mcp", "old", "ghost"]):
        assert f"`{app}`" in v["message"]
    assert doc["resources"] == []


def test_markdown_format(tmp_path):
    out = run("plan", "--stack", "dev", "--format", "markdown")
    assert out.returncode == 0
    assert out.stdout.startswith("### linked-apps plan: ")
    assert "| `mcp-server` | `payroll-api` | `Authorization: Bearer` |" in out.stdout


@pytest.mark.parametrize("setup, expected", [
    (lambda p: None, "no such file"),
    (lambda p: p.write_text("config: [unclosed"), "not valid YAML at line 1"),
    (lambda p: p.write_text("- a\n- b\n"), "expected a mapping"),
    (lambda p: p.write_text(yaml.safe_dump({"config": {"linked-apps:teamDomain": "acme.cloudflareaccess.com"}})),
     "linked-apps:accountId: required key is missing"),
])
def test_unreadable_input_exits_2_with_the_culprit(tmp_path, setup, expected):
    path = tmp_path / "Pulumi.x.yaml"
    setup(path)
    out = run("plan", "--config", str(path))
    assert out.returncode == 2
    assert expected in out.stderr and "Traceback" not in out.stderr


def test_unknown_stack_lists_the_stacks_there():
    out = run("plan", "--stack", "nosuch")
    assert out.returncode == 2 and "Pulumi.nosuch.yaml: no such file; stacks here: dev, prod" in out.stderr


def test_stack_and_config_are_exclusive():
    assert run("plan").returncode == 2
    assert run("plan", "--stack", "dev", "--config", "x.yaml").returncode == 2


def test_help_explains_every_option():
    out = run("plan", "--help")
    assert out.returncode == 0
    for option in ("--stack", "--config", "--format", "--project-dir"):
        assert option in out.stdout
    assert "Exit codes: 0 every rule holds, 1 a rule is broken, 2 the input cannot be used" in out.stdout


def test_prod_stack_plans_lookup_and_stack_reference():
    out = run("plan", "--stack", "prod", "--format", "json")
    assert out.returncode == 0, out.stderr
    names = {r["name"] for r in json.loads(out.stdout)["resources"]}
    assert {"orders-api-app", "storefront-admin-trust-policy", "platform-mcp-trust-policy"} <= names
