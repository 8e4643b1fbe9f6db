"""The Cloudflare account as deployed trust: `--state cloudflare:ACCOUNT_ID`, `drift` and `import`, against a
loopback fake of the API v4 (tests/_fake_cloudflare.py: the envelope, pagination, 429 and 403 as documented)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from linked_apps.cli import main
from linked_apps.state import _cloudflare
from tests._fake_cloudflare import ACCOUNT, TOKEN, FakeCloudflare, account_from_export, api_policy
from tests._verifier_support import app_claims, dev_app, dev_export, dev_jwks_server, saas_claims, signing_key

LIVE = f"cloudflare:{ACCOUNT}"
KEY = signing_key("live")


@pytest.fixture(scope="module")
def export() -> dict[str, Any]:
    return dev_export()


@pytest.fixture
def account(export: dict[str, Any]) -> dict[str, Any]:
    return account_from_export(export)


@pytest.fixture
def export_file(tmp_path: Path, export: dict[str, Any]) -> Path:
    path = tmp_path / "export.json"
    path.write_text(json.dumps(export))
    return path


@pytest.fixture(autouse=True)
def token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)


def run(*args: str) -> Any:
    return CliRunner().invoke(main, list(args))


def app_of(account: dict[str, Any], name: str) -> dict[str, Any]:
    return next(a for a in account["apps"] if a["name"] == name)


# -- verify: the account gives the verdicts the export gives ------------------------------------------------
@pytest.mark.parametrize("target, kind, source, allowed", [
    ("payroll-api", "--cf-access-token", "hr-portal", True),
    ("docs-api", "--cf-access-token", "hr-portal", False),
    ("docs-api", "--bearer", "mcp-server", True),
    ("ledger", "--bearer", "mcp-server", False),
])
def test_verify_on_the_account_agrees_with_the_export(account: dict[str, Any], export_file: Path, target: str,
                                                      kind: str, source: str, allowed: bool) -> None:
    app = dev_app(source)
    token = KEY.mint(app_claims(app["aud"]) if kind == "--cf-access-token" else saas_claims(app["client_id"]))
    with dev_jwks_server(KEY) as keys, FakeCloudflare(account) as api:
        on_export = run("verify", target, "--state", str(export_file), kind, token, "--access-url", keys.url,
                        "--format", "json")
        on_account = run("verify", target, "--state", LIVE, "--api-url", api.url, kind, token,
                         "--access-url", keys.url, "--format", "json")
    assert on_export.exit_code == on_account.exit_code == (0 if allowed else 1), on_account.output
    a, b = json.loads(on_export.output), json.loads(on_account.output)
    assert (a["allowed"], a["from"], a["to"], a["reason"]) == (b["allowed"], b["from"], b["to"], b["reason"])
    assert (b["allowed"], b["to"]) == (allowed, target) and (b["from"] == source or not allowed)


def test_questions_and_graph_read_the_account(account: dict[str, Any], export_file: Path) -> None:
    with FakeCloudflare(account) as api:
        live = json.loads(run("graph", "--state", LIVE, "--api-url", api.url, "--format", "json").output)
        callers = json.loads(run("who-calls", "ledger", "--state", LIVE, "--api-url", api.url,
                                 "--format", "json").output)
    recorded = json.loads(run("graph", "--state", str(export_file), "--format", "json").output)
    assert {(l["from"], l["to"]) for l in live["links"]} == {(l["from"], l["to"]) for l in recorded["links"]}
    assert live["team_domain"] == "acme.cloudflareaccess.com"
    assert {c["app"] for c in callers["callers"]} == {"payroll-api", "hr-portal", "mcp-server"}


# -- the API as it behaves: pages, throttling, refusals ----------------------------------------------------
def test_every_page_is_read_until_an_empty_one(account: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_cloudflare, "PER_PAGE", 2)
    with FakeCloudflare(account) as api:
        graph = _cloudflare.read_account(LIVE, api_url=api.url)
        pages = [int(q["page"][0]) if "page" in q else 1 for path, q in api.requests if path.endswith("/apps")]
    assert len(graph.apps) == len(account["apps"]) == 6
    assert pages == [1, 2, 3, 4]  # three full pages, then the empty one that ends the list


def test_a_429_is_waited_out_as_retry_after_says(account: dict[str, Any]) -> None:
    with FakeCloudflare(account) as api:
        api.throttle[f"/client/v4/accounts/{ACCOUNT}/access/apps"] = 1
        graph = _cloudflare.read_account(LIVE, api_url=api.url)
        asked = [path for path, _ in api.requests if path.endswith("/apps")]
    assert len(asked) == 3 and len(graph.links) == 5  # the throttled first page, asked again, then the end


def test_a_throttled_request_is_asked_again_twice_and_no_more(account: dict[str, Any]) -> None:
    path = f"/client/v4/accounts/{ACCOUNT}/access/apps"
    with FakeCloudflare(account) as api:
        api.throttle[path] = 3  # each answer says: wait 1 s
        with pytest.raises(_cloudflare.StateError, match="answered 429"):
            _cloudflare.read_account(LIVE, api_url=api.url)
        assert sum(p == path for p, _ in api.requests) == 3


def test_the_whole_read_has_one_deadline(account: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_cloudflare, "DEADLINE", 0.5)
    with FakeCloudflare(account) as api:
        api.throttle[f"/client/v4/accounts/{ACCOUNT}/access/apps"] = 5  # each answer says: wait 1 s
        result = run("graph", "--state", LIVE, "--api-url", api.url)
    assert result.exit_code == 2 and "the deadline for one read of the account" in result.output, result.output


def test_a_body_over_the_cap_is_refused(account: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_cloudflare, "BODY_CAP", 1000)
    with FakeCloudflare(account) as api:
        result = run("graph", "--state", LIVE, "--api-url", api.url)
    assert result.exit_code == 2 and "over 1000 bytes; refused" in result.output, result.output


def test_a_rejected_token_is_exit_2_with_the_api_error_and_never_printed(account: dict[str, Any],
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", "wrong-token-value-42")
    with FakeCloudflare(account) as api:
        result = run("who-calls", "ledger", "--state", LIVE, "--api-url", api.url)
    assert result.exit_code == 2
    assert "403: Authentication error (code 10000)" in result.output and "CLOUDFLARE_API_TOKEN" in result.output
    assert "wrong-token-value-42" not in result.output and result.output.count("\n") == 1


def test_a_missing_token_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLOUDFLARE_API_TOKEN")
    result = run("graph", "--state", LIVE)
    assert result.exit_code == 2 and "CLOUDFLARE_API_TOKEN: not set" in result.output


@pytest.mark.parametrize("source, url, message", [
    (LIVE, "http://192.0.2.1/client/v4", "plain http:// only to this machine"),
    ("cloudflare:acme", None, "not an account id"),
])
def test_bad_sources_exit_2(source: str, url: str | None, message: str) -> None:
    result = run("graph", "--state", source, *(["--api-url", url] if url else []))
    assert result.exit_code == 2 and message in result.output, result.output


def test_a_proxy_in_the_environment_is_not_used_for_a_loopback_api(account: dict[str, Any],
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")  # nothing listens there: a proxied request would fail
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with FakeCloudflare(account) as api:
        assert len(_cloudflare.read_account(LIVE, api_url=api.url).links) == 5


# -- drift ----------------------------------------------------------------------------------------------------
def test_drift_finds_a_link_added_by_hand_and_one_removed(account: dict[str, Any], export_file: Path) -> None:
    hand = copy.deepcopy(account)
    hr_uid = app_of(hand, "hr-portal")["id"]
    ledger = app_of(hand, "ledger")
    # Someone attached an app-scoped Service Auth policy trusting hr-portal to the ledger, in the dashboard ...
    ledger["policies"].append(api_policy("9d5f0000-0000-4000-8000-00000000beef", {
        "name": "quick fix", "decision": "non_identity",
        "includes": [{"linkedAppToken": {"appUid": hr_uid}}]}, precedence=len(ledger["policies"]) + 1))
    # ... and detached legacy-crm's linked-app policy from docs-api.
    docs = app_of(hand, "docs-api")
    docs["policies"] = [p for p in docs["policies"] if p["name"] != "Linked app token: legacy-crm"]
    with FakeCloudflare(hand) as api:
        result = run("drift", "--state", str(export_file), "--live", LIVE, "--api-url", api.url, "--format", "json",
                     "--exit-code")
        text = run("drift", "--state", str(export_file), "--live", LIVE, "--api-url", api.url)
    assert result.exit_code == 1, result.output
    doc = json.loads(result.output)
    assert doc["added"] == [{"from": "hr-portal", "to": "ledger"}]
    assert doc["removed"] == [{"from": "legacy-crm", "to": "docs-api"}]
    assert {(c["app"], c["policy_name"], c["live_precedence"]) for c in doc["attachments_changed"]} == {
        ("docs-api", "Linked app token: legacy-crm", None)}
    assert doc["changed"] is True and text.exit_code == 0
    assert "+ hr-portal -> ledger" in text.output and "- legacy-crm -> docs-api" in text.output


def test_no_drift_is_exit_0_even_with_exit_code(account: dict[str, Any], export_file: Path) -> None:
    with FakeCloudflare(account) as api:
        result = run("drift", "--state", str(export_file), "--live", LIVE, "--api-url", api.url, "--format", "json",
                     "--exit-code")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["added"] == doc["removed"] == doc["attachments_changed"] == [] and len(doc["unchanged"]) == 5


# -- import ---------------------------------------------------------------------------------------------------
def test_import_round_trips_and_adopts_every_app(account: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "Pulumi.adopted.yaml"
    with FakeCloudflare(account) as api:
        result = run("import", LIVE, "--out", str(out), "--api-url", api.url, "--format", "json")
        live = _cloudflare.read_account(LIVE, api_url=api.url)
    assert result.exit_code == 0, result.output
    planned = run("plan", "--config", str(out), "--format", "json")
    assert planned.exit_code == 0, planned.output
    doc = json.loads(planned.output)
    assert {(l["from"], l["to"]) for l in doc["links"]} == set(live.edges())
    adopted = {r["name"]: r["import_id"] for r in doc["resources"] if r.get("import_id")}
    assert adopted == {f"{a['name']}-app": a["id"] for a in account["apps"]}


def test_import_lists_what_the_schema_cannot_say(account: dict[str, Any], tmp_path: Path) -> None:
    odd = copy.deepcopy(account)
    hr_uid = app_of(odd, "hr-portal")["id"]
    ledger = app_of(odd, "ledger")
    ledger["policies"].append(api_policy("9d5f0000-0000-4000-8000-00000000cafe", {
        "name": "people in EU", "decision": "allow", "includes": [{"everyone": {}}],
        "requires": [{"geo": {"countryCode": "DE"}}]}, precedence=9))
    conditional = api_policy("9d5f0000-0000-4000-8000-00000000d00d", {
        "name": "hr with cert", "decision": "non_identity", "includes": [{"linkedAppToken": {"appUid": hr_uid}}],
        "requires": [{"certificate": {}}]})
    odd["policies"].append(conditional | {"reusable": True})
    ledger["policies"].append(conditional | {"precedence": 10})
    out = tmp_path / "Pulumi.adopted.yaml"
    with FakeCloudflare(odd) as api:
        result = CliRunner().invoke(main, ["import", LIVE, "--out", str(out), "--api-url", api.url])
        again = run("import", LIVE, "--out", str(out), "--api-url", api.url)
    assert result.exit_code == 0, result.output
    header = out.read_text()
    for needle in ("'people in EU'", "app-scoped policy (allow)", "'hr with cert'", "kept attached as it is"):
        assert needle in result.stderr and needle in header, needle
    config = yaml.safe_load(header)["config"]
    assert "9d5f0000-0000-4000-8000-00000000d00d" in config["linked-apps:apps"]["ledger"]["policyIds"]
    assert {"from": "hr-portal", "to": "ledger"} not in config["linked-apps:links"]
    assert again.exit_code == 2 and "exists" in again.output


def test_import_existing_declares_apps_by_uid_but_keeps_link_targets_managed(account: dict[str, Any],
                                                                              tmp_path: Path) -> None:
    out = tmp_path / "Pulumi.existing.yaml"
    with FakeCloudflare(account) as api:
        assert run("import", LIVE, "--out", str(out), "--existing", "--api-url", api.url).exit_code == 0
    apps = yaml.safe_load(out.read_text())["config"]["linked-apps:apps"]
    assert apps["hr-portal"] == {"type": "self_hosted", "uid": app_of(account, "hr-portal")["id"],
                                 "aud": app_of(account, "hr-portal")["aud"]}
    assert "importId" in apps["payroll-api"] and "importId" in apps["ledger"]
    assert run("plan", "--config", str(out)).exit_code == 0


def test_import_refuses_hostile_names_and_keeps_the_file_whole(account: dict[str, Any], tmp_path: Path) -> None:
    odd = copy.deepcopy(account)
    app_of(odd, "ledger")["name"] = "ledger\n# injected: true\nconfig: {}"
    out = tmp_path / "Pulumi.adopted.yaml"
    with FakeCloudflare(odd) as api:
        result = CliRunner().invoke(main, ["import", LIVE, "--out", str(out), "--api-url", api.url])
    assert result.exit_code == 0, result.output
    text = out.read_text()
    config = yaml.safe_load(text)["config"]
    assert set(config) == {"linked-apps:accountId", "linked-apps:teamDomain", "linked-apps:apps", "linked-apps:links"}
    assert "ledger" not in " ".join(config["linked-apps:apps"]) and "injected: true" not in yaml.safe_dump(config)
    assert "app name 'ledger\\n# injected: true\\nconfig: {}' holds U+000A" in text  # one comment line, escaped
    assert "holds U+000A" in result.stderr and "links into it" in result.stderr
    assert run("plan", "--config", str(out)).exit_code == 0


@pytest.mark.parametrize("where", ["everywhere", "only in the app's copy"])
def test_a_rule_the_account_holds_but_nobody_knows_denies(account: dict[str, Any], where: str) -> None:
    """The SDK passes through what it has no type for; the reader must not drop it, and the verifier denies. An
    app's copy of a reusable policy that differs from the policy itself denies too: which one Access enforces
    cannot be told."""
    odd = copy.deepcopy(account)
    copies = [p for p in app_of(odd, "payroll-api")["policies"] if p["name"] == "Linked app token: hr-portal"]
    if where == "everywhere":
        copies += [p for p in odd["policies"] if p["name"] == "Linked app token: hr-portal"]
    for policy in copies:
        policy["require"] = [{"future_selector": {"level": 3}}]
    token = KEY.mint(app_claims(dev_app("hr-portal")["aud"]))
    with dev_jwks_server(KEY) as keys, FakeCloudflare(odd) as api:
        result = run("verify", "payroll-api", "--state", LIVE, "--api-url", api.url, "--cf-access-token", token,
                     "--access-url", keys.url, "--format", "json")
    verdict = json.loads(result.output)
    assert result.exit_code == 1 and verdict["allowed"] is False
    expected = "future_selector" if where == "everywhere" else "with another require"
    assert expected in verdict["reason"] and "access/" in verdict["reason"], verdict["reason"]


def test_the_environment_proxy_tunnels_https_to_the_api_but_never_serves_this_machine(
        monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy",
                "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.corp.example:3128")
    assert _cloudflare._proxy_for(_cloudflare.DEFAULT_API_URL) == "http://proxy.corp.example:3128"
    assert _cloudflare._proxy_for("http://127.0.0.1:8443/client/v4") is None
    assert _cloudflare._proxy_for("https://localhost/client/v4") is None
    monkeypatch.setenv("NO_PROXY", "api.cloudflare.com")
    assert _cloudflare._proxy_for(_cloudflare.DEFAULT_API_URL) is None


def test_a_read_of_the_real_api_goes_through_the_environment_proxy_as_a_tunnel(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The proxy _proxy_for names is the one the read uses: the API's host is asked for with CONNECT (TLS is then
    checked for api.cloudflare.com inside the tunnel); this proxy refuses, so the read fails closed, naming why."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    seen: list[str] = []

    class Refusing(BaseHTTPRequestHandler):
        def do_CONNECT(self) -> None:  # noqa: N802
            seen.append(f"CONNECT {self.path}")
            self.send_response(403)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    proxy = ThreadingHTTPServer(("127.0.0.1", 0), Refusing)
    proxy.daemon_threads = True
    threading.Thread(target=proxy.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    for var in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy",
                "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{proxy.server_address[1]}")
    try:
        with pytest.raises(_cloudflare.StateError, match="cannot reach the Cloudflare API at api.cloudflare.com"):
            _cloudflare.fetch_account(f"cloudflare:{ACCOUNT}", environ={"CLOUDFLARE_API_TOKEN": TOKEN})
    finally:
        proxy.shutdown()
        proxy.server_close()
    assert seen and set(seen) == {"CONNECT api.cloudflare.com:443"}


def test_every_request_gets_5_s_to_connect_and_30_s_per_read_while_the_deadline_is_far(
        account: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    import httpx

    asked: list[dict[str, float]] = []
    real = httpx.HTTPTransport.handle_request

    def handle_request(self: httpx.HTTPTransport, request: httpx.Request) -> httpx.Response:
        asked.append(dict(request.extensions["timeout"]))
        return real(self, request)

    monkeypatch.setattr(httpx.HTTPTransport, "handle_request", handle_request)
    with FakeCloudflare(account) as api:
        _cloudflare.read_account(LIVE, api_url=api.url)
    assert asked and all(t == {"connect": 5.0, "read": 30.0, "write": 30.0, "pool": 30.0} for t in asked), asked


def test_a_body_chunk_arriving_exactly_at_the_deadline_is_read_and_one_after_it_is_not(
        monkeypatch: pytest.MonkeyPatch) -> None:
    now = [50.0]
    monkeypatch.setattr(_cloudflare.time, "monotonic", lambda: now[0])
    assert list(_cloudflare._capped(iter([b"a", b"b"]), 50.0)) == [b"a", b"b"]
    now[0] = 50.001
    with pytest.raises(_cloudflare.StateError, match="no whole answer within"):
        list(_cloudflare._capped(iter([b"a"]), 50.0))
