"""App B's origin decision: the Access assertion for B (header or cookie), who it names, and a linked call's
provenance. The assertion corpus: honest requests are admitted with the right `via`, every forged or misplaced
one is denied with a reason that names what failed. Tokens are minted with PyJWT."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from linked_apps.state import graph_from_export, graph_from_outputs
from linked_apps.verifier import OriginVerdict, Verifier
from tests._verifier_support import (
    CERTS,
    CI_CLIENT_ID,
    Clock,
    JwksServer,
    app_claims,
    dev_app,
    dev_export,
    dev_outputs,
    jwks,
    raw_token,
    saas_claims,
    saas_jwks_path,
    service_claims,
    signing_key,
    with_service_token,
)

KEY = signing_key("cf-current")
ATTACKER = signing_key("attacker")
MCP = dev_app("mcp-server")["client_id"]
PAYROLL = "payroll-api"
BOB = {"sub": "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0", "email": "bob@acme.com"}


def aud(name: str) -> str:
    return dev_app(name)["aud"]


def assertion(**extra: Any) -> str:
    """The assertion Access sends payroll-api's origin for Ann."""
    return KEY.mint(app_claims(aud(PAYROLL), **extra))


def forwarded(source: str = "hr-portal", **extra: Any) -> str:
    """The original token of `source`, as it forwards it (Cf-Access-Token)."""
    return KEY.mint(app_claims(aud(source), **extra))


@pytest.fixture(scope="module")
def server() -> Any:
    with JwksServer() as srv:
        srv.serve_json(CERTS, jwks(KEY))
        srv.serve_json(saas_jwks_path(MCP), jwks(KEY))
        yield srv


@pytest.fixture(params=["export", "outputs"])
def verifier(request: pytest.FixtureRequest, server: JwksServer) -> Verifier:
    """Deployed trust from a stack export holding a service token, and from stack outputs (which hold none)."""
    if request.param == "export":
        return Verifier(graph_from_export(with_service_token(dev_export())), access_url=server.url)
    return Verifier(graph_from_outputs(dev_outputs()), access_url=server.url)


# -- admitted ----------------------------------------------------------------------------------------------
def test_a_person(verifier: Verifier) -> None:
    verdict = verifier.decide_origin(PAYROLL, assertion=assertion())
    assert isinstance(verdict, OriginVerdict) and verdict.allowed, verdict.reason
    assert verdict.as_dict() == {
        "allowed": True, "from": None, "to": PAYROLL, "reason": "Access assertion for payroll-api: user ann@acme.com",
        "identity": {"email": "ann@acme.com", "sub": "7335d417-61da-459d-899c-0a01c76a2f94", "country": "NL"},
        "policy": None, "via": "user"}


def test_the_cookie_stands_in_for_the_header(verifier: Verifier) -> None:
    token = assertion()
    verdict = verifier.decide_origin_headers(PAYROLL, {"cookie": f"theme=dark; CF_Authorization={token}; x=1"})
    assert verdict.allowed and verdict.via == "user"
    # the header wins over the cookie: Cloudflare sends it on every request it admits
    both = verifier.decide_origin_headers(PAYROLL, {"cf-access-jwt-assertion": token,
                                                    "cookie": "CF_Authorization=garbage"})
    assert both.allowed
    two = verifier.decide_origin_headers(PAYROLL, {"cookie": f"CF_Authorization={token}; CF_Authorization=x"})
    assert not two.allowed and "2 CF_Authorization cookies" in two.reason


def test_a_service_token_is_named_from_deployed_state(server: JwksServer) -> None:
    verifier = Verifier(graph_from_export(with_service_token(dev_export())), access_url=server.url)
    verdict = verifier.decide_origin(PAYROLL, assertion=KEY.mint(service_claims(aud(PAYROLL))))
    assert verdict.allowed and verdict.via == "service-token" and verdict.source is None
    assert dict(verdict.identity) == {"common_name": CI_CLIENT_ID, "country": "NL", "service_token": "ci-deploy"}
    assert f"service token 'ci-deploy' ({CI_CLIENT_ID})" in verdict.reason


def test_a_service_token_the_state_does_not_hold_is_admitted_unnamed(verifier: Verifier) -> None:
    other = "0123456789abcdef0123456789abcdef.access"
    verdict = verifier.decide_origin(PAYROLL, assertion=KEY.mint(service_claims(aud(PAYROLL), client_id=other)))
    assert verdict.allowed and verdict.via == "service-token"
    assert "service_token" not in verdict.identity and "not in the deployed state" in verdict.reason


def test_a_linked_call_names_its_source_app(verifier: Verifier) -> None:
    verdict = verifier.decide_origin(PAYROLL, assertion=assertion(), cf_access_token=forwarded("hr-portal"))
    assert verdict.allowed, verdict.reason
    assert (verdict.via, verdict.source, verdict.policy, verdict.flow) == \
        ("linked-app", "hr-portal", "Linked app token: hr-portal", "cf-access-token")
    assert verdict.identity["email"] == "ann@acme.com"


def test_a_linked_call_from_a_saas_app(verifier: Verifier) -> None:
    token = KEY.mint(saas_claims(MCP))
    verdict = verifier.decide_origin_headers(PAYROLL, {"cf-access-jwt-assertion": assertion(),
                                                       "authorization": f"Bearer {token}"})
    assert verdict.allowed and (verdict.via, verdict.source, verdict.flow) == ("linked-app", "mcp-server", "bearer")


def test_a_linked_service_token_call(verifier: Verifier) -> None:
    token = KEY.mint(service_claims(aud(PAYROLL)))
    source = KEY.mint(service_claims(aud("hr-portal")))
    verdict = verifier.decide_origin(PAYROLL, assertion=token, cf_access_token=source)
    assert verdict.allowed and verdict.via == "linked-app", verdict.reason


# -- the assertion corpus: denied --------------------------------------------------------------------------
def _tampered() -> str:
    head, _, sig = assertion().split(".")
    _, payload, _ = assertion(email="ceo@acme.com", sub="c0ffee00-0000-4000-8000-000000000000").split(".")
    return f"{head}.{payload}.{sig}"


ASSERTIONS: list[tuple[str, Callable[[], str | None], str]] = [
    ("missing", lambda: None, "no Access assertion"),
    ("wrong AUD", lambda: KEY.mint(app_claims(aud("docs-api"))),
     "does not hold payroll-api's AUD tag (it was issued for docs-api)"),
    ("unknown AUD", lambda: KEY.mint(app_claims("0" * 64)), "does not hold payroll-api's AUD tag;"),
    ("expired", lambda: assertion(exp=int(time.time() - 120)), "Access assertion: the token expired"),
    ("not yet valid", lambda: assertion(nbf=int(time.time() + 3600)), "not valid yet"),
    ("foreign key, own kid", lambda: ATTACKER.mint(app_claims(aud(PAYROLL))), "no key with kid 'attacker'"),
    ("foreign key, real kid", lambda: ATTACKER.mint(app_claims(aud(PAYROLL)), kid=KEY.kid), "bad signature"),
    ("org session", lambda: assertion(type="org"), "`type` is 'org'"),
    ("forged claims", _tampered, "bad signature"),
    ("alg none", lambda: raw_token({"alg": "none", "typ": "JWT"}, app_claims(aud(PAYROLL))) + "AAAA",
     "algorithm 'none' is not allowed"),
    ("other team", lambda: assertion(iss="https://evil.cloudflareaccess.com"), "must match exactly"),
    ("names no one", lambda: assertion(sub="", email="ann@acme.com"), "names neither a user"),
    ("sub not a string", lambda: assertion(sub=7), "names neither a user"),
    ("garbage", lambda: "not-a-jwt", "malformed token"),
]


@pytest.mark.parametrize(("name", "make", "reason"), ASSERTIONS, ids=[a[0] for a in ASSERTIONS])
def test_assertion_is_denied_with_a_reason(verifier: Verifier, name: str, make: Callable[[], str | None],
                                           reason: str) -> None:
    verdict = verifier.decide_origin(PAYROLL, assertion=make())
    assert isinstance(verdict, OriginVerdict) and not verdict.allowed
    assert reason in verdict.reason, verdict.reason
    assert not verdict.identity and verdict.via is None and verdict.as_dict()["from"] is None
    # a forwarded token that would reach payroll-api on its own does not make up for the assertion
    with_token = verifier.decide_origin(PAYROLL, assertion=make(), cf_access_token=forwarded("hr-portal"))
    assert not with_token.allowed and reason in with_token.reason


FORWARDED: list[tuple[str, Callable[[], dict[str, str]], str]] = [
    ("untrusted app", lambda: {"cf_access_token": forwarded("docs-api")},
     "payroll-api does not trust the app its Cf-Access-Token was issued for"),
    ("another user", lambda: {"cf_access_token": forwarded("hr-portal", **BOB)},
     "names bob@acme.com, not the user of the Access assertion (ann@acme.com)"),
    ("another user by email only", lambda: {"bearer": KEY.mint(saas_claims(MCP, sub=None, email="bob@acme.com"))},
     "names bob@acme.com"),
    ("forged", lambda: {"cf_access_token": ATTACKER.mint(app_claims(aud("hr-portal")), kid=KEY.kid)},
     "its Cf-Access-Token does not verify: bad signature"),
    ("expired", lambda: {"cf_access_token": forwarded("hr-portal", exp=int(time.time() - 120))},
     "does not verify: the token expired"),
    ("opaque bearer", lambda: {"bearer": "opaque-oauth-token"}, "its Authorization: Bearer does not verify: opaque"),
    ("a SaaS app's token as Cf-Access-Token", lambda: {"cf_access_token": forwarded("mcp-server")},
     "arrive as Authorization: Bearer"),
    ("B's own assertion forwarded", lambda: {"cf_access_token": assertion()}, "does not trust the app"),
    ("both headers", lambda: {"cf_access_token": forwarded(), "bearer": "x"}, "at most one forwarded token"),
]


@pytest.mark.parametrize(("name", "make", "reason"), FORWARDED, ids=[f[0] for f in FORWARDED])
def test_an_unproven_provenance_is_denied(verifier: Verifier, name: str, make: Callable[[], dict[str, str]],
                                          reason: str) -> None:
    verdict = verifier.decide_origin(PAYROLL, assertion=assertion(), **make())
    assert not verdict.allowed
    assert reason in verdict.reason, verdict.reason
    if name != "both headers":
        assert verdict.via == "linked-app" and verdict.reason.startswith("the request claims to come from")


def test_a_target_without_an_aud_tag_denies_every_assertion(server: JwksServer) -> None:
    # Outputs that do not say payroll-api's AUD tag: nothing tells which assertions are its own.
    outputs = dev_outputs()
    del outputs["apps"][PAYROLL]["aud"]
    verifier = Verifier(graph_from_outputs(outputs), access_url=server.url)
    verdict = verifier.decide_origin(PAYROLL, assertion=assertion())
    assert not verdict.allowed and "payroll-api has no AUD tag in the state" in verdict.reason


def test_argument_mistakes_are_denies(verifier: Verifier) -> None:
    assert "no app named 'nope'" in verifier.decide_origin("nope", assertion=assertion()).reason
    for weird in (["a", "list"], b"bytes", 7):
        verdict = verifier.decide_origin(PAYROLL, assertion=weird)  # type: ignore[arg-type]
        assert not verdict.allowed and verdict.reason


# -- caching ---------------------------------------------------------------------------------------------
def test_repeated_assertions_are_cached_until_they_expire(server: JwksServer) -> None:
    clock = Clock()
    verifier = Verifier(graph_from_outputs(dev_outputs()), access_url=server.url, clock=clock, leeway=0)
    token = KEY.mint(app_claims(aud(PAYROLL), now=clock.now, ttl=60))
    first = verifier.decide_origin(PAYROLL, assertion=token)
    assert first.allowed and verifier.decide_origin(PAYROLL, assertion=token) is first
    assert not verifier.decide_origin("docs-api", assertion=token).allowed  # per target, not per token
    clock.advance(61)
    late = verifier.decide_origin(PAYROLL, assertion=token)
    assert not late.allowed and "expired" in late.reason


def test_a_cached_assertion_does_not_vouch_for_a_forwarded_token(verifier: Verifier) -> None:
    token = assertion()
    assert verifier.decide_origin(PAYROLL, assertion=token).allowed
    verdict = verifier.decide_origin(PAYROLL, assertion=token, cf_access_token=forwarded("hr-portal", **BOB))
    assert not verdict.allowed and "bob@acme.com" in verdict.reason


# -- the middlewares' own refusals -----------------------------------------------------------------------
def test_the_middlewares_refuse_to_start_for_a_target_without_an_aud_tag(server: JwksServer) -> None:
    from linked_apps.errors import ConfigError
    from linked_apps.verifier import AccessMiddleware, WSGIAccessMiddleware

    outputs = dev_outputs()
    del outputs["apps"][PAYROLL]["aud"]
    verifier = Verifier(graph_from_outputs(outputs), access_url=server.url)
    for middleware in (AccessMiddleware, WSGIAccessMiddleware):
        with pytest.raises(ConfigError, match="payroll-api has no AUD tag in the state.*behind_access=False"):
            middleware(lambda *a: None, verifier=verifier, target=PAYROLL)
        assert middleware(lambda *a: None, verifier=verifier, target=PAYROLL, behind_access=False).target == PAYROLL


def test_asgi_refuses_two_assertion_headers(verifier: Verifier) -> None:
    from starlette.testclient import TestClient

    from linked_apps.verifier import AccessMiddleware

    async def app(scope: Any, receive: Any, send: Any) -> None:
        assert scope["type"] != "http", "a refused request reached the app"

    client = TestClient(AccessMiddleware(app, verifier=verifier, target=PAYROLL))  # no lifespan: not entered
    response = client.get("/", headers=[("Cf-Access-Jwt-Assertion", assertion()),
                                        ("Cf-Access-Jwt-Assertion", assertion(email="x@y.z"))])
    assert response.status_code == 403 and "2 cf-access-jwt-assertion headers" in response.json()["reason"]


def test_wsgi_exempt_paths_and_the_environ(verifier: Verifier) -> None:
    from linked_apps.verifier import WSGIAccessMiddleware

    seen: list[dict[str, Any]] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.append(environ)
        start_response("200 OK", [])
        return [b"ok"]

    guarded = WSGIAccessMiddleware(app, verifier=verifier, target="payroll.acme.com", exempt_paths=["/healthz"])
    statuses: list[str] = []
    assert guarded({"PATH_INFO": "/healthz"}, lambda status, headers: statuses.append(status)) == [b"ok"]
    body = guarded({"PATH_INFO": "/x"}, lambda status, headers: statuses.append(status))
    assert statuses[-1] == "403 Forbidden" and b"no Access assertion" in b"".join(body)
    guarded({"PATH_INFO": "/x", "HTTP_CF_ACCESS_JWT_ASSERTION": assertion(),
             "HTTP_CF_ACCESS_TOKEN": forwarded("hr-portal")}, lambda status, headers: statuses.append(status))
    assert statuses[-1] == "200 OK"
    environ = seen[-1]
    assert (environ["linked_apps.via"], environ["linked_apps.source_app"]) == ("linked-app", "hr-portal")
    assert environ["linked_apps.verdict"].allowed and environ["linked_apps.identity"]["email"] == "ann@acme.com"


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(st.none(), st.text(max_size=300),
                 st.builds(lambda a, b, c: f"{a}.{b}.{c}", *(st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                                                  "0123456789-_", min_size=1, max_size=40),) * 3)),
       st.dictionaries(st.sampled_from(["cookie", "cf-access-jwt-assertion", "cf-access-token", "authorization"]),
                       st.text(max_size=120)))
def test_arbitrary_requests_are_denied_never_raised(verifier: Verifier, token: str | None,
                                                    headers: dict[str, str]) -> None:
    for verdict in (verifier.decide_origin(PAYROLL, assertion=token),
                    verifier.decide_origin(PAYROLL, assertion=assertion(), cf_access_token=token or "x"),
                    verifier.decide_origin_headers(PAYROLL, headers)):
        assert isinstance(verdict, OriginVerdict) and not verdict.allowed and verdict.reason
