"""Opt-in online check of opaque SaaS bearer tokens at the issuer's userinfo endpoint (loopback server)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner

from linked_apps.cli import main
from linked_apps.state import graph_from_outputs
from linked_apps.verifier import Verifier
from tests._verifier_support import Clock, JwksServer, dev_app, dev_outputs, userinfo_path

MCP = dev_app("mcp-server")["client_id"]
GOOD = "opaque-access-token-of-ann"


def userinfo(header: str | None) -> tuple[int, bytes]:
    if header == f"Bearer {GOOD}":
        return 200, json.dumps({"sub": "7335d417", "email": "ann@acme.com", "name": "Ann"}).encode()
    return 401, b'{"error": "invalid_token"}'


@pytest.fixture
def server() -> Any:
    with JwksServer() as srv:
        srv.auth_routes[userinfo_path(MCP)] = userinfo
        yield srv


def online(server: JwksServer, **options: Any) -> Verifier:
    return Verifier(graph_from_outputs(dev_outputs()), access_url=server.url, online_userinfo=True, **options)


def test_offline_by_default(server: JwksServer) -> None:
    verdict = Verifier(graph_from_outputs(dev_outputs()), access_url=server.url).decide("docs-api", bearer=GOOD)
    assert not verdict.allowed and verdict.reason.startswith("opaque bearer token") and "opt-in" in verdict.reason
    assert server.hits == {}


def test_a_token_the_issuer_accepts_is_allowed_and_labelled(server: JwksServer) -> None:
    clock = Clock()
    verifier = online(server, clock=clock)
    verdict = verifier.decide("docs-api", bearer=GOOD)
    assert verdict.allowed and verdict.source == "mcp-server"
    assert verdict.identity["email"] == "ann@acme.com"
    assert "checked online at the issuer's /userinfo; the SaaS access-token format is unverified" in verdict.reason
    assert verifier.decide("docs-api", bearer=GOOD) is verdict  # reused for a while: one request
    assert server.hits == {userinfo_path(MCP): 1}
    clock.advance(61)
    assert verifier.decide("docs-api", bearer=GOOD).allowed
    assert server.hits == {userinfo_path(MCP): 2}


def test_a_token_the_issuer_refuses_is_denied(server: JwksServer) -> None:
    verdict = online(server).decide("docs-api", bearer="forged-opaque-token")
    assert not verdict.allowed and "accepted it" in verdict.reason and "unverified" in verdict.reason


def test_only_saas_apps_the_target_trusts_are_asked(server: JwksServer) -> None:
    verdict = online(server).decide("ledger", bearer=GOOD)  # ledger trusts payroll-api only
    assert not verdict.allowed and "no SaaS app is named by a policy of the target" in verdict.reason
    assert server.hits == {}


def test_an_unreachable_issuer_vouches_for_nothing(server: JwksServer) -> None:
    server.auth_routes[userinfo_path(MCP)] = lambda header: (500, b"oops")
    verdict = online(server).decide("docs-api", bearer=GOOD)
    assert not verdict.allowed and "mcp-server: HTTP 500" in verdict.reason


def test_cli_flag(server: JwksServer, tmp_path: Any) -> None:
    state = tmp_path / "outputs.json"
    state.write_text(json.dumps(dev_outputs()))
    args = ["verify", "--state", str(state), "--to", "payroll-api", "--bearer", GOOD, "--access-url", server.url,
            "--json"]
    offline = CliRunner().invoke(main, args)
    assert offline.exit_code == 1
    result = CliRunner().invoke(main, [*args, "--online-userinfo"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["from"] == "mcp-server" and "unverified" in doc["reason"]
