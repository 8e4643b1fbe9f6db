"""`linked-apps verify`: the contract of the issue, exactly (options, exit codes, --json fields)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from linked_apps.cli import main
from tests._startup_probe import loaded_by
from tests._verifier_support import (
    JwksServer,
    app_claims,
    dev_app,
    dev_export,
    dev_jwks_server,
    dev_outputs,
    saas_claims,
    signing_key,
)

KEY = signing_key("cli")
MCP = dev_app("mcp-server")["client_id"]


@pytest.fixture(scope="module")
def server() -> Any:
    with dev_jwks_server(KEY) as srv:
        yield srv


@pytest.fixture(scope="module")
def export_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("state") / "dev-export.json"
    path.write_text(json.dumps(dev_export()))
    return path


@pytest.fixture(scope="module")
def outputs_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("state") / "dev-outputs.json"
    path.write_text(json.dumps(dev_outputs()))
    return path


def hr_token(**extra: Any) -> str:
    return KEY.mint(app_claims(dev_app("hr-portal")["aud"], **extra))


def run(*args: str, stdin: str | None = None) -> Any:
    return CliRunner().invoke(main, ["verify", *args], input=stdin)


def test_allowed_prints_json_with_the_contract_fields(server: JwksServer, export_file: Path) -> None:
    result = run("--state", str(export_file), "--to", "payroll-api", "--cf-access-token", hr_token(),
                 "--access-url", server.url, "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert {"allowed", "from", "to", "reason", "identity"} <= set(doc)
    assert (doc["allowed"], doc["from"], doc["to"]) == (True, "hr-portal", "payroll-api")
    assert doc["identity"]["email"] == "ann@acme.com"
    assert "Linked app token: hr-portal" in doc["reason"]


def test_bearer_from_a_saas_app_with_outputs_state(server: JwksServer, outputs_file: Path) -> None:
    result = run("--state", str(outputs_file), "--to", "docs.acme.com/api", "--bearer",
                 KEY.mint(saas_claims(MCP)), "--access-url", server.url, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["from"] == "mcp-server"


def test_denied_exits_1_with_the_reason(server: JwksServer, export_file: Path) -> None:
    result = run("--state", str(export_file), "--to", "docs-api", "--cf-access-token", hr_token(),
                 "--access-url", server.url)
    assert result.exit_code == 1
    assert result.output.startswith("denied: ") and "not to docs-api" in result.output


@pytest.mark.parametrize("token", ["not-a-jwt", "a.b.c", "x" * 9000])
def test_malformed_tokens_are_denials(server: JwksServer, export_file: Path, token: str) -> None:
    result = run("--state", str(export_file), "--to", "payroll-api", "--cf-access-token", token,
                 "--access-url", server.url, "--json")
    assert result.exit_code == 1
    doc = json.loads(result.output)
    assert doc["allowed"] is False and doc["from"] is None and doc["to"] == "payroll-api" and doc["reason"]


def test_opaque_bearer_denied_offline(server: JwksServer, export_file: Path) -> None:
    result = run("--state", str(export_file), "--to", "docs-api", "--bearer", "opaque-token-123",
                 "--access-url", server.url, "--json")
    assert result.exit_code == 1 and json.loads(result.output)["reason"].startswith("opaque bearer token")


def test_token_from_standard_input(server: JwksServer, export_file: Path) -> None:
    result = run("--state", str(export_file), "--to", "payroll-api", "--cf-access-token", "-",
                 "--access-url", server.url, stdin=hr_token() + "\n")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("allowed: hr-portal -> payroll-api as email=ann@acme.com")


def test_team_domain_option_overrides_and_issuer_stays_the_team(server: JwksServer, tmp_path: Path) -> None:
    outputs = {k: v for k, v in dev_outputs().items() if k != "team_domain"}
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(outputs))
    common = ["--state", str(path), "--to", "payroll-api", "--cf-access-token", hr_token(),
              "--access-url", server.url]
    missing = run(*common)
    assert missing.exit_code == 2 and "--team-domain" in missing.output
    assert run(*common, "--team-domain", "acme.cloudflareaccess.com").exit_code == 0
    other = run(*common, "--team-domain", "other.cloudflareaccess.com", "--json")
    assert other.exit_code == 1 and "must match exactly" in json.loads(other.output)["reason"]


@pytest.mark.parametrize(("args", "message"), [
    (["--to", "nope", "--cf-access-token", "x"], "no app named 'nope'"),
    (["--to", "payroll-api"], "exactly one of --cf-access-token TOKEN or --bearer TOKEN"),
    (["--to", "payroll-api", "--cf-access-token", "x", "--bearer", "y"], "exactly one of --cf-access-token"),
    (["--cf-access-token", "x"], "APP: missing; name the app"),
    (["--to", "payroll-api", "--cf-access-token", "x", "--access-url", "ftp://mirror"], "must start with https://"),
    (["--to", "payroll-api", "--cf-access-token", "-"], "standard input is empty"),
])
def test_usage_and_config_errors_exit_2(export_file: Path, args: list[str], message: str) -> None:
    result = run("--state", str(export_file), *args, stdin="")
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(("content", "message"), [
    (None, "cannot be read"),
    ("{not json", "not JSON"),
    ('{"hello": 1}', "not linked-apps stack outputs"),
    ('{"deployment": []}', "no `deployment` object"),
])
def test_unreadable_state_exits_2(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "state.json"
    if content is not None:
        path.write_text(content)
    result = run("--state", str(path), "--to", "payroll-api", "--cf-access-token", "x")
    assert result.exit_code == 2 and message in result.output


def test_state_and_stack_are_exclusive(export_file: Path) -> None:
    assert "exactly one of --state FILE or --stack NAME" in run("--to", "x", "--cf-access-token", "x").output
    both = run("--state", str(export_file), "--stack", "dev", "--to", "x", "--cf-access-token", "x")
    assert both.exit_code == 2


def test_live_stack_without_the_pulumi_cli_exits_2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)
    result = run("--stack", "dev", "--to", "payroll-api", "--cf-access-token", "x")
    assert result.exit_code == 2
    assert "needs the Pulumi CLI on PATH" in result.output and "--state" in result.output


@pytest.mark.cli
@pytest.mark.skipif(shutil.which("pulumi") is None, reason="needs the Pulumi CLI on PATH (not installable here)")
def test_live_stack_through_the_automation_api(tmp_path: Path) -> None:  # pragma: no cover - no CLI here
    env = {**os.environ, "PULUMI_BACKEND_URL": f"file://{tmp_path}", "PULUMI_CONFIG_PASSPHRASE": "test"}
    project = tmp_path / "proj"
    project.mkdir()
    (project / "Pulumi.yaml").write_text("name: verify-live\nruntime: python\n")
    (project / "__main__.py").write_text("")
    subprocess.run(["pulumi", "stack", "init", "live"], cwd=project, env=env, check=True)
    result = subprocess.run([sys.executable, "-m", "linked_apps", "verify", "--stack", "live",
                             "--project-dir", str(project), "--team-domain", "acme.cloudflareaccess.com",
                             "--to", "nope", "--cf-access-token", "x"], env=env, capture_output=True, text=True)
    assert result.returncode == 2 and "no app named 'nope'" in result.stderr


def test_the_command_imports_neither_pulumi_nor_the_provider(server: JwksServer, export_file: Path) -> None:
    code, loaded = loaded_by("verify", "--state", str(export_file), "--to", "payroll-api", "--cf-access-token",
                             hr_token(), "--access-url", server.url, "--json")
    assert code == 0
    assert not loaded & {"pulumi", "pulumi_cloudflare"}


def test_exit_codes_through_the_installed_script(server: JwksServer, export_file: Path) -> None:
    script = Path(sys.executable).with_name("linked-apps")
    base = [str(script), "verify", "--state", str(export_file), "--access-url", server.url]
    allowed = subprocess.run([*base, "--to", "payroll-api", "--cf-access-token", "-", "--json"],
                             input=hr_token(), capture_output=True, text=True, timeout=60)
    assert allowed.returncode == 0 and json.loads(allowed.stdout)["allowed"] is True
    denied = subprocess.run([*base, "--to", "ledger", "--cf-access-token", hr_token()],
                            capture_output=True, text=True, timeout=60)
    assert denied.returncode == 1 and denied.stdout.startswith("denied:")
    unknown = subprocess.run([*base, "--to", "nope", "--cf-access-token", hr_token()],
                             capture_output=True, text=True, timeout=60)
    assert unknown.returncode == 2 and "no app named 'nope'" in unknown.stderr and not unknown.stdout
