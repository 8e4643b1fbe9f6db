"""App B's origin check (`Verifier.decide_origin`, the middlewares' `cached` fast path), pinned field by field:
each test here fails on a mutant of `linked_apps/verifier/_origin.py` that survived the corpus in
test_verifier_origin.py, which mostly asks whether a request is admitted and why in words.

Trust is `handmade_export()` (a `pulumi stack export` shape, see tests/_verifier_support.py) plus a deployed
service token: front -> api (inline policy "front may call"), portal (SaaS, Bearer flow) -> api, and plain,
which api does not trust. Tokens are minted with PyJWT for a fixed clock; the team's certs and the portal's
SaaS keys are served through an httpx MockTransport (the body is the real certs shape).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import httpx
import pytest

from linked_apps.state import graph_from_export
from linked_apps.verifier import OriginVerdict, Verdict, Verifier
from linked_apps.verifier import _jws, _origin
from linked_apps.verifier._verdict import identity_of
from tests._verifier_support import (
    AUD,
    CI_CLIENT_ID,
    PORTAL_CLIENT_ID,
    TEAM,
    Clock,
    app_claims,
    handmade_export,
    jwks,
    saas_claims,
    service_claims,
    signing_key,
    with_service_token,
)

KEY = signing_key("origin-mutants")
NOW = 1_900_000_000.0
LEEWAY = 30.0
BOB = {"sub": "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0", "email": "bob@acme.com"}


class Certs:
    """The key server: every GET answers the certs document; `requests` counts them."""

    def __init__(self) -> None:
        self.requests = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        return httpx.Response(200, json=jwks(KEY))


def origin(doc: dict[str, Any] | None = None, *, key_ttl: float = 600.0) -> tuple[Verifier, Clock, Certs]:
    clock, certs = Clock(NOW), Certs()
    graph = graph_from_export(doc or with_service_token(handmade_export()))
    verifier = Verifier(graph, team_domain=TEAM, client=httpx.Client(transport=httpx.MockTransport(certs)),
                        clock=clock, leeway=LEEWAY, key_ttl=key_ttl)
    return verifier, clock, certs


def assertion(aud: str | list[str] = AUD["api"], ttl: float = 600, **extra: Any) -> str:
    """The Access assertion for api's origin (Ann, unless `extra` says otherwise)."""
    return KEY.mint(app_claims(aud, now=NOW, ttl=ttl, **extra))


def claims_of(token: str) -> dict[str, Any]:
    return _jws.parse(token).claims


# -- whom an assertion admits ------------------------------------------------------------------------------
def test_a_user_assertion_is_admitted_with_every_field_filled() -> None:
    verifier, _, _ = origin()
    token = assertion()
    assert verifier.decide_origin("api", assertion=token) == OriginVerdict(
        True, "Access assertion for api: user ann@acme.com", "api", None, identity_of(claims_of(token)), None,
        None, NOW + 600, "user")


def test_a_user_without_email_is_named_by_sub() -> None:
    verifier, _, _ = origin()
    token = KEY.mint({k: v for k, v in app_claims(AUD["api"], now=NOW).items() if k != "email"})
    verdict = verifier.decide_origin("api", assertion=token)
    assert verdict.reason == "Access assertion for api: user 7335d417-61da-459d-899c-0a01c76a2f94"


@pytest.mark.parametrize(("client_id", "named"), [(CI_CLIENT_ID, f"service token 'ci-deploy' ({CI_CLIENT_ID})"),
                                                  ("0" * 32 + ".access", f"service token {'0' * 32}.access (not in "
                                                                         "the deployed state)")])
def test_a_service_token_assertion_is_admitted_with_every_field_filled(client_id: str, named: str) -> None:
    verifier, _, _ = origin()
    token = KEY.mint(service_claims(AUD["api"], client_id, now=NOW))
    identity = dict(identity_of(claims_of(token)))
    if client_id == CI_CLIENT_ID:
        identity["service_token"] = "ci-deploy"
    assert verifier.decide_origin("api", assertion=token) == OriginVerdict(
        True, f"Access assertion for api: {named}", "api", None, MappingProxyType(identity), None, None,
        NOW + 600, "service-token")


NEITHER = OriginVerdict(False, "Access assertion: it names neither a user (a non-empty `sub`) nor a service token "
                               "(`common_name` with an empty `sub`)", "api")


@pytest.mark.parametrize("who", [{"sub": ""}, {"sub": "", "common_name": ""}, {"sub": "", "common_name": 7},
                                 {"sub": "", "common_name": ["x"]}, {"sub": None, "common_name": CI_CLIENT_ID},
                                 {"sub": 5}])
def test_an_assertion_naming_neither_a_user_nor_a_service_token_is_refused(who: dict[str, Any]) -> None:
    verifier, _, _ = origin()
    claims = {**app_claims(AUD["api"], now=NOW), **who}
    claims = {k: v for k, v in claims.items() if v is not None}
    assert verifier.decide_origin("api", assertion=KEY.mint(claims)) == NEITHER


@pytest.mark.parametrize(("aud", "shown"), [([AUD["front"], AUD["batch"]], " (it was issued for front, batch)"),
                                            (["f" * 64], ""), ([AUD["front"], "f" * 64], " (it was issued for front)")])
def test_an_assertion_for_other_apps_is_refused_naming_them(aud: list[str], shown: str) -> None:
    verifier, _, _ = origin()
    assert verifier.decide_origin("api", assertion=assertion(aud)) == OriginVerdict(
        False, f"Access assertion: its `aud` does not hold api's AUD tag{shown}; it is not an assertion for api",
        "api")


def test_a_target_without_an_aud_tag_in_the_state_admits_no_assertion() -> None:
    doc = with_service_token(handmade_export())
    plain = next(r for r in doc["deployment"]["resources"] if r.get("urn", "").endswith("::plain"))
    del plain["outputs"]["aud"]
    verifier, _, _ = origin(doc)
    assert verifier.decide_origin("plain", assertion=assertion(AUD["plain"])) == OriginVerdict(
        False, "plain has no AUD tag in the state, so no Access assertion can be checked against it", "plain")


# -- refusals before the assertion is read -------------------------------------------------------------------
def test_no_assertion_two_forwarded_tokens_and_a_malformed_assertion_are_refused_exactly() -> None:
    verifier, _, _ = origin()
    assert verifier.decide_origin("api", assertion=None) == OriginVerdict(False, _origin.NO_ASSERTION_REASON, "api")
    assert verifier.decide_origin("api", assertion=assertion(), cf_access_token="a", bearer="b") == OriginVerdict(
        False, "give at most one forwarded token: Cf-Access-Token or Authorization: Bearer", "api")
    assert verifier.decide_origin("api", assertion="nope") == OriginVerdict(
        False, "Access assertion: malformed token: not a compact JWS (three base64url parts joined by dots, no "
               "padding or whitespace)", "api")


def test_an_unknown_target_is_refused_with_no_target() -> None:
    verifier, _, _ = origin()
    verdict = verifier.decide_origin("nowhere", assertion=assertion())
    assert verdict.allowed is False and verdict.target is None and "nowhere" in verdict.reason


def test_an_assertion_that_is_no_string_is_refused_as_malformed() -> None:
    verifier, _, _ = origin()
    assert verifier.decide_origin("api", assertion=["x"]) == OriginVerdict(  # type: ignore[arg-type]
        False, "Access assertion: malformed token: not a string", "api")


def test_two_assertion_cookies_are_refused_exactly() -> None:
    verifier, _, _ = origin()
    token = assertion()
    assert verifier.decide_origin_headers("api", {"cookie": f"CF_Authorization={token}; CF_Authorization={token}"}) \
        == OriginVerdict(False, "the request carries 2 CF_Authorization cookies; send one")


def test_a_cookie_value_is_everything_after_the_first_equals_sign() -> None:
    verifier, _, _ = origin()
    verdict = verifier.decide_origin_headers("api", {"cookie": "CF_Authorization=a=b"})
    assert verdict == OriginVerdict(False, "Access assertion: malformed token: not a compact JWS (three base64url "
                                           "parts joined by dots, no padding or whitespace)", "api")


def test_a_bug_inside_the_check_is_a_deny_naming_the_error(monkeypatch: pytest.MonkeyPatch) -> None:
    verifier, _, _ = origin()

    def broken(*args: Any, **kwargs: Any) -> OriginVerdict:
        raise RuntimeError("bug")

    monkeypatch.setattr(verifier._origin, "_decide", broken)
    assert verifier.decide_origin("api", assertion=assertion()) == OriginVerdict(
        False, "internal error while verifying (RuntimeError); failing closed")


# -- linked calls ---------------------------------------------------------------------------------------------
def test_a_linked_call_carries_the_sources_policy_flow_and_the_earlier_expiry() -> None:
    verifier, _, _ = origin()
    person = assertion(ttl=600)
    for ttl, expires in ((300, NOW + 300), (900, NOW + 600)):
        forwarded = KEY.mint(app_claims(AUD["front"], now=NOW, ttl=ttl))
        direct = verifier.decide("api", cf_access_token=forwarded)
        assert verifier.decide_origin("api", assertion=person, cf_access_token=forwarded) == OriginVerdict(
            True, f"linked call from front for ann@acme.com: {direct.reason}", "api", "front",
            identity_of(claims_of(person)), "front may call", "cf-access-token", expires, "linked-app")


def test_a_linked_call_by_bearer_names_its_flow() -> None:
    verifier, _, _ = origin()
    person, forwarded = assertion(), KEY.mint(saas_claims(PORTAL_CLIENT_ID, now=NOW))
    verdict = verifier.decide_origin("api", assertion=person, bearer=forwarded)
    assert (verdict.allowed, verdict.source, verdict.policy, verdict.flow, verdict.via) == \
        (True, "portal", "portal may call", "bearer", "linked-app"), verdict.reason


def test_a_forwarded_token_that_does_not_verify_is_a_deny_with_what_the_request_claimed() -> None:
    verifier, _, _ = origin()
    person = assertion()
    direct = verifier.decide("api", cf_access_token="nope")
    assert verifier.decide_origin("api", assertion=person, cf_access_token="nope") == OriginVerdict(
        False, f"the request claims to come from a linked app, but its Cf-Access-Token does not verify: "
               f"{direct.reason}", "api", None, identity_of(claims_of(person)), None, "cf-access-token", None,
        "linked-app")


def test_a_forwarded_token_from_an_app_the_target_does_not_trust_is_named_as_such() -> None:
    verifier, _, _ = origin()
    person, forwarded = assertion(), KEY.mint(app_claims(AUD["plain"], now=NOW))
    direct = verifier.decide("api", cf_access_token=forwarded)
    assert direct.expires is not None and not direct.allowed
    assert verifier.decide_origin("api", assertion=person, cf_access_token=forwarded) == OriginVerdict(
        False, f"the request claims to come from a linked app, but api does not trust the app its Cf-Access-Token "
               f"was issued for: {direct.reason}", "api", direct.source, identity_of(claims_of(person)),
        direct.policy, "cf-access-token", None, "linked-app")


def test_a_forwarded_token_refused_by_a_policy_names_that_policy() -> None:
    verifier, _, _ = origin()
    person, forwarded = assertion(), KEY.mint(app_claims(AUD["intruder"], now=NOW))
    direct = verifier.decide("api", cf_access_token=forwarded)
    assert not direct.allowed and direct.policy == "batch but not intruder", direct
    verdict = verifier.decide_origin("api", assertion=person, cf_access_token=forwarded)
    assert (verdict.allowed, verdict.source, verdict.policy, verdict.via) == \
        (False, "intruder", "batch but not intruder", "linked-app")


def test_a_forwarded_verdict_without_a_flow_is_called_the_forwarded_token(monkeypatch: pytest.MonkeyPatch) -> None:
    verifier, _, _ = origin()
    monkeypatch.setattr(verifier, "decide", lambda to, **token: Verdict(False, "internal error"))
    verdict = verifier.decide_origin("api", assertion=assertion(), cf_access_token="x")
    assert verdict.reason == ("the request claims to come from a linked app, but its forwarded token does not "
                              "verify: internal error")


@pytest.mark.parametrize(("theirs", "named"), [(BOB, "bob@acme.com"), ({"sub": BOB["sub"], "email": None}, BOB["sub"]),
                                               ({"sub": "", "email": None}, "no one"),
                                               ({"sub": "", "email": None, "common_name": CI_CLIENT_ID}, CI_CLIENT_ID)])
def test_a_forwarded_token_naming_someone_else_is_refused_naming_both(theirs: dict[str, Any], named: str) -> None:
    verifier, _, _ = origin()
    person = assertion()
    claims = {**app_claims(AUD["front"], now=NOW), **theirs}
    forwarded = KEY.mint({k: v for k, v in claims.items() if v is not None})
    direct = verifier.decide("api", cf_access_token=forwarded)
    assert direct.allowed, direct.reason
    assert verifier.decide_origin("api", assertion=person, cf_access_token=forwarded) == OriginVerdict(
        False, f"the request claims to come from front, but its Cf-Access-Token names {named}, not the user of the "
               f"Access assertion (ann@acme.com)", "api", "front", identity_of(claims_of(person)), "front may call",
        "cf-access-token", None, "linked-app")


@pytest.mark.parametrize(("ours", "theirs", "same"), [
    ({"sub": "a", "email": "x@y"}, {"sub": "a", "email": "other@y"}, True),
    ({"sub": "a", "email": "x@y"}, {"sub": "b", "email": "x@y"}, False),
    ({"sub": "a", "email": "x@y"}, {"email": "x@y"}, False),  # a sub on one side only: not comparable, not same
    ({"email": "x@y"}, {"sub": "a", "email": "x@y"}, False),
    ({"common_name": "c"}, {"common_name": "c"}, True),
    ({"common_name": "c"}, {"common_name": "C"}, False),
    ({"common_name": "c", "email": "x@y"}, {"email": "x@y"}, False),
    ({"email": "x@y"}, {"common_name": "c", "email": "x@y"}, False),
    ({"email": "Ann@Acme.com"}, {"email": "ann@acme.COM"}, True),
    ({"email": "ann@acme.com"}, {"email": "bob@acme.com"}, False),
    ({"email": "ann@acme.com"}, {}, False),
    ({"email": "ann@acme.com"}, {"email": ""}, False),
    ({"sub": ""}, {"sub": ""}, False),
    ({}, {}, False),
])
def test_two_tokens_name_one_principal_by_their_strongest_claim(ours: dict[str, str], theirs: dict[str, str],
                                                                 same: bool) -> None:
    assert _origin.same_principal(ours, theirs) is same
    assert _origin.same_principal(theirs, ours) is same


# -- the cache ----------------------------------------------------------------------------------------------------
def counting_signatures(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    checked: list[str] = []
    real = _jws.verify_signature

    def verify_signature(parsed: Any, key: Any) -> None:
        checked.append(parsed.kid)
        real(parsed, key)

    monkeypatch.setattr(_origin._jws, "verify_signature", verify_signature)
    return checked


def test_a_repeated_assertion_is_verified_once_and_answered_from_the_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    verifier, _, _ = origin()
    checked = counting_signatures(monkeypatch)
    token = assertion()
    first = verifier.decide_origin("api", assertion=token)
    assert verifier.decide_origin("api", assertion=token) is first
    assert verifier.decide_origin("front", assertion=token).allowed is False  # another target: its own verdict
    assert len(checked) == 1


def test_a_repeated_assertion_is_answered_without_even_looking_up_the_target(monkeypatch: pytest.MonkeyPatch) -> None:
    verifier, _, _ = origin()
    token = assertion()
    first = verifier.decide_origin("api", assertion=token)
    lookups: list[str] = []
    real = verifier.target
    monkeypatch.setattr(verifier, "target", lambda ref: lookups.append(ref) or real(ref))
    assert verifier.decide_origin("api", assertion=token) is first
    assert lookups == []
    assert verifier.decide_origin("api", assertion=token, cf_access_token="x").allowed is False
    assert lookups[:1] == ["api"]  # a request forwarding a token takes the full path


def test_a_cached_person_never_answers_for_a_request_that_also_forwards_a_token() -> None:
    verifier, _, _ = origin()
    token = assertion()
    assert verifier.decide_origin("api", assertion=token).via == "user"
    for forwarded in ({"bearer": "not a token"}, {"cf_access_token": "not a token"}):
        verdict = verifier.decide_origin("api", assertion=token, **forwarded)
        assert (verdict.allowed, verdict.via) == (False, "linked-app"), verdict


def test_an_assertion_header_once_verified_is_not_decoded_again(monkeypatch: pytest.MonkeyPatch) -> None:
    verifier, _, _ = origin()
    headers = []
    real = _jws._check_header
    monkeypatch.setattr(_jws, "_check_header", lambda header: headers.append(header) or real(header))
    for jti in ("1", "2", "3"):
        assert verifier.decide_origin("api", assertion=assertion(jti=jti)).allowed
    assert len(headers) == 1


def test_a_cached_assertion_serves_until_exp_plus_leeway_and_is_refused_at_that_instant(
        monkeypatch: pytest.MonkeyPatch) -> None:
    verifier, clock, _ = origin(key_ttl=7 * 86400)
    checked = counting_signatures(monkeypatch)
    token = assertion(ttl=600)
    assert verifier.decide_origin("api", assertion=token).allowed
    clock.now = NOW + 600 + LEEWAY - 0.5
    assert verifier.decide_origin("api", assertion=token).allowed and len(checked) == 1
    clock.now = NOW + 600 + LEEWAY
    assert verifier.decide_origin("api", assertion=token) == OriginVerdict(
        False, "Access assertion: the token expired 30 s ago", "api")  # checked again, and the claims say why
    assert len(checked) == 2


def test_a_cached_assertion_ends_when_the_key_set_is_due_and_its_key_is_fetched_again() -> None:
    verifier, clock, certs = origin(key_ttl=60)
    token = assertion(ttl=600)
    assert verifier.decide_origin("api", assertion=token).allowed and certs.requests == 1
    clock.now = NOW + 59.5
    assert verifier.decide_origin("api", assertion=token).allowed and certs.requests == 1
    clock.now = NOW + 60
    assert verifier.decide_origin("api", assertion=token).allowed and certs.requests == 2


def test_a_key_leaving_the_key_set_forgets_the_assertions_it_signed() -> None:
    verifier, _, _ = origin()
    token = assertion()
    assert verifier.decide_origin("api", assertion=token).allowed
    assert verifier._origin.cached("api", token) is not None
    verifier.certs._client = httpx.Client(transport=httpx.MockTransport(
        lambda request: httpx.Response(200, json=jwks(signing_key("origin-mutants-next")))))
    assert verifier.certs.refresh()
    assert verifier._origin.cached("api", token) is None
    assert verifier.decide_origin("api", assertion=token).allowed is False


def test_the_fast_path_answers_only_what_is_cached_and_alive() -> None:
    verifier, clock, _ = origin(key_ttl=7 * 86400)
    check = verifier._origin
    token, forwarded = assertion(), KEY.mint(app_claims(AUD["front"], now=NOW))
    assert check.cached("api", token) is None  # nothing verified yet
    assert check.cached("api", None) is None
    assert check.cached("api", ["not", "hashable"]) is None  # type: ignore[arg-type]
    person = verifier.decide_origin("api", assertion=token)
    assert check.cached("api", token) is person
    assert check.cached("front", token) is None  # no verdict for that target yet
    assert check.cached("api", token, cf_access_token=forwarded) is None  # the forwarded token is not cached yet
    linked = verifier.decide_origin("api", assertion=token, cf_access_token=forwarded)
    assert linked.allowed and check.cached("api", token, cf_access_token=forwarded) == linked
    assert check.cached("api", token, bearer=forwarded) is None  # cached for the other flow only
    clock.now = NOW + 600 + LEEWAY - 0.5
    assert check.cached("api", token) is person
    clock.now = NOW + 600 + LEEWAY
    assert check.cached("api", token) is None


def test_the_fast_path_answers_a_refused_person_without_looking_at_the_forwarded_token() -> None:
    verifier, _, _ = origin()
    check = verifier._origin
    token = assertion(AUD["front"])  # an assertion for front, presented to api
    refused = verifier.decide_origin("api", assertion=token)
    assert not refused.allowed
    assert check.cached("api", token, cf_access_token="never verified") is refused
    assert verifier.decide_origin("api", assertion=token, cf_access_token="never verified") is refused


def test_the_fast_path_links_a_cached_bearer_token_too() -> None:
    verifier, _, _ = origin()
    token, forwarded = assertion(), KEY.mint(saas_claims(PORTAL_CLIENT_ID, now=NOW))
    linked = verifier.decide_origin("api", assertion=token, bearer=forwarded)
    assert linked.allowed, linked.reason
    assert verifier._origin.cached("api", token, bearer=forwarded) == linked
    assert verifier._origin.cached("api", token, cf_access_token=forwarded) is None
