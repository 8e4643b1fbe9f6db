"""`linked-apps verify --assertion`: App B's origin question on the command line, the contract exactly
(`{"allowed", "from", "to", "reason", "identity", "policy", "via"}`, exit 0 / 1 / 2, any one token from stdin)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from linked_apps.cli import main
from tests._verifier_support import (
    CI_CLIENT_ID,
    JwksServer,
    app_claims,
    dev_app,
    dev_export,
    dev_jwks_server,
    dev_outputs,
    service_claims,
    signing_key,
    with_service_token,
)

KEY = signing_key("origin-cli")
CONTRACT = {"allowed", "from", "to", "reason", "identity", "policy", "via"}


@pytest.fixture(scope="module")
def server() -> Any:
    with dev_jwks_server(KEY) as srv:
        yield srv


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("state") / "dev-export.json"
    path.write_text(json.dumps(with_service_token(dev_export())))
    return path


def token(app: str, **extra: Any) -> str:
    return KEY.mint(app_claims(dev_app(app)["aud"], **extra))


def run(server: JwksServer, state: Path, *args: str, stdin: str | None = None) -> tuple[int, Any]:
    result = CliRunner().invoke(main, ["verify", "--state", str(state), "--access-url", server.url, *args],
                                input=stdin)
    try:
        return result.exit_code, json.loads(result.stdout)
    except ValueError:
        return result.exit_code, result.output


def test_a_person(server: JwksServer, state: Path) -> None:
    code, doc = run(server, state, "--to", "payroll-api", "--assertion", token("payroll-api"), "--format", "json")
    assert code == 0 and set(doc) == CONTRACT
    assert (doc["allowed"], doc["from"], doc["to"], doc["via"], doc["policy"]) == \
        (True, None, "payroll-api", "user", None)
    assert doc["identity"]["email"] == "ann@acme.com"


def test_a_service_token(server: JwksServer, state: Path) -> None:
    assertion = KEY.mint(service_claims(dev_app("payroll-api")["aud"]))
    code, doc = run(server, state, "--to", "payroll.acme.com", "--assertion", assertion, "--format", "json")
    assert code == 0 and doc["via"] == "service-token" and doc["from"] is None
    assert doc["identity"] == {"common_name": CI_CLIENT_ID, "country": "NL", "service_token": "ci-deploy"}


def test_a_linked_call_with_the_forwarded_token_from_stdin(server: JwksServer, state: Path) -> None:
    code, doc = run(server, state, "--to", "payroll-api", "--assertion", token("payroll-api"),
                    "--cf-access-token", "-", "--format", "json", stdin=token("hr-portal") + "\n")
    assert code == 0 and set(doc) == CONTRACT
    assert (doc["via"], doc["from"], doc["policy"]) == ("linked-app", "hr-portal", "Linked app token: hr-portal")


def test_the_assertion_from_stdin_and_text_output(server: JwksServer, state: Path) -> None:
    code, out = run(server, state, "--to", "payroll-api", "--assertion", "-", "--cf-access-token",
                    token("hr-portal"), stdin=token("payroll-api"))
    assert code == 0 and out.startswith("allowed: linked-app from hr-portal -> payroll-api as email=ann@acme.com")


@pytest.mark.parametrize(("args", "reason", "via"), [
    (lambda: ["--assertion", token("docs-api")], "does not hold payroll-api's AUD tag", None),
    (lambda: ["--assertion", token("payroll-api", type="org")], "`type` is 'org'", None),
    (lambda: ["--assertion", "forged.token.here"], "Access assertion: malformed token", None),
    (lambda: ["--assertion", token("payroll-api"), "--cf-access-token", token("docs-api")],
     "does not trust the app", "linked-app"),
    (lambda: ["--assertion", token("payroll-api"),
              "--cf-access-token", token("hr-portal", sub="0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0", email="bob@x.com")],
     "names bob@x.com", "linked-app"),
])
def test_denied_exits_1_with_the_contract(server: JwksServer, state: Path, args: Any, reason: str,
                                          via: str | None) -> None:
    code, doc = run(server, state, "--to", "payroll-api", *args(), "--json")
    assert code == 1 and set(doc) == CONTRACT
    assert doc["allowed"] is False and reason in doc["reason"] and doc["via"] == via


@pytest.mark.parametrize(("args", "message"), [
    (["--to", "nope", "--assertion", "x"], "no app named 'nope'"),
    (["--to", "payroll-api", "--assertion", "x", "--cf-access-token", "y", "--bearer", "z"], "at most one of"),
    (["--to", "payroll-api", "--assertion", "-", "--cf-access-token", "-"], "standard input can carry one token"),
    (["--to", "payroll-api", "--assertion", "-"], "standard input is empty"),
])
def test_unusable_input_exits_2_in_one_line(server: JwksServer, state: Path, args: list[str], message: str) -> None:
    code, out = run(server, state, *args, stdin="")
    assert code == 2 and message in out and len(out.strip().splitlines()) == 1, out


def test_a_target_without_an_aud_tag_exits_2(server: JwksServer, tmp_path: Path) -> None:
    outputs = dev_outputs()
    del outputs["apps"]["payroll-api"]["aud"]
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(outputs))
    code, out = run(server, path, "--to", "payroll-api", "--assertion", token("payroll-api"))
    assert code == 2 and "payroll-api has no AUD tag in the state" in out


def test_without_assertion_verify_is_unchanged(server: JwksServer, state: Path) -> None:
    code, doc = run(server, state, "--to", "payroll-api", "--cf-access-token", token("hr-portal"), "--format", "json")
    assert code == 0 and set(doc) == CONTRACT - {"via"} and doc["from"] == "hr-portal"
