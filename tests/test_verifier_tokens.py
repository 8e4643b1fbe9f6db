"""The verifier's corpus: honest tokens of both flows are admitted exactly where deployed trust allows, and
every attack in JWT.md's "Must" list is denied with a reason. Tokens are minted with PyJWT."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from linked_apps.state import graph_from_export, graph_from_outputs
from linked_apps.verifier import Verdict, Verifier
from linked_apps.verifier._jws import MAX_TOKEN_LENGTH
from tests._verifier_support import (
    AUD,
    CERTS,
    ISSUER,
    PORTAL_CLIENT_ID,
    TEAM,
    UID,
    JwksServer,
    app_claims,
    b64url,
    dev_app,
    dev_export,
    dev_outputs,
    handmade_export,
    jwks,
    raw_token,
    saas_claims,
    saas_jwks_path,
    signing_key,
)

KEY = signing_key("cf-current")
PREVIOUS = signing_key("cf-previous")
ATTACKER = signing_key("attacker")
MCP_CLIENT_ID = dev_app("mcp-server")["client_id"]


@pytest.fixture(scope="module")
def server() -> Any:
    with JwksServer() as srv:
        srv.serve_json(CERTS, jwks(KEY, PREVIOUS))
        srv.serve_json(saas_jwks_path(MCP_CLIENT_ID), jwks(KEY))
        srv.serve_json(saas_jwks_path(PORTAL_CLIENT_ID), jwks(KEY))
        yield srv


@pytest.fixture(params=["export", "outputs"])
def dev(request: pytest.FixtureRequest, server: JwksServer) -> Verifier:
    """The dev stack's deployed trust, read from a stack export and from stack outputs."""
    graph = graph_from_export(dev_export()) if request.param == "export" else graph_from_outputs(dev_outputs())
    return Verifier(graph, access_url=server.url)


@pytest.fixture
def handmade(server: JwksServer) -> Verifier:
    return Verifier(graph_from_export(handmade_export()), access_url=server.url)


def aud_of(name: str) -> str:
    return dev_app(name)["aud"]


def cf(name: str, **extra: Any) -> str:
    """An honest Cf-Access-Token issued for dev app `name`."""
    return KEY.mint(app_claims(aud_of(name), **extra))


# -- honest tokens ---------------------------------------------------------------------------------------
def test_self_hosted_source_reaches_the_app_that_trusts_it(dev: Verifier) -> None:
    verdict = dev.decide("payroll-api", cf_access_token=cf("hr-portal"))
    assert verdict.allowed, verdict.reason
    assert (verdict.source, verdict.target, verdict.flow) == ("hr-portal", "payroll-api", "cf-access-token")
    assert verdict.identity["email"] == "ann@acme.com"
    assert verdict.policy == "Linked app token: hr-portal"
    assert verdict.as_dict()["from"] == "hr-portal"


def test_chains_are_single_hops(dev: Verifier) -> None:
    assert dev.decide("ledger", cf_access_token=cf("payroll-api")).allowed
    denied = dev.decide("ledger", cf_access_token=cf("hr-portal"))  # hr-portal -> payroll-api -> ledger
    assert not denied.allowed and "hr-portal" in denied.reason


def test_existing_app_with_a_declared_aud_tag_is_a_recognised_source(dev: Verifier) -> None:
    # legacy-crm is not managed by the stack; its config declares the AUD tag so its users' tokens can be placed.
    assert dev_app("legacy-crm")["aud"] == "3f6c2a9e5b1d4f8a7c0e9d2b6a4f1c8e5d3b7a9f0e2c4d6b8a1f3e5c7d9b0a2f"
    verdict = dev.decide("docs-api", cf_access_token=cf("legacy-crm"))
    assert verdict.allowed and verdict.source == "legacy-crm", verdict.reason
    assert not dev.decide("payroll-api", cf_access_token=cf("legacy-crm")).allowed


@pytest.mark.parametrize("ref", ["payroll-api", dev_app("payroll-api")["uid"], "payroll.acme.com",
                                 "https://payroll.acme.com/", dev_app("payroll-api")["uid"].upper()])
def test_target_by_name_uid_or_domain(dev: Verifier, ref: str) -> None:
    verdict = dev.decide(ref, cf_access_token=cf("hr-portal"))
    assert verdict.allowed and verdict.target == "payroll-api"


def test_saas_source_with_an_oidc_jwt_bearer(dev: Verifier) -> None:
    token = KEY.mint(saas_claims(MCP_CLIENT_ID))
    for target in ("docs-api", "payroll-api"):
        verdict = dev.decide(target, bearer=token)
        assert verdict.allowed, verdict.reason
        assert (verdict.source, verdict.flow) == ("mcp-server", "bearer")
        assert verdict.identity == {"email": "ann@acme.com", "sub": "7335d417-61da-459d-899c-0a01c76a2f94",
                                    "name": "Ann"}
    assert not dev.decide("ledger", bearer=token).allowed


def test_service_token_identity_is_its_common_name(dev: Verifier) -> None:
    token = KEY.mint(app_claims(aud_of("hr-portal"), sub="", email=None, common_name="abc123.access"))
    verdict = dev.decide("payroll-api", cf_access_token=token)
    assert verdict.allowed and dict(verdict.identity) == {"common_name": "abc123.access", "country": "NL"}


def test_previous_key_and_string_audience_are_accepted(dev: Verifier) -> None:
    assert dev.decide("payroll-api", cf_access_token=PREVIOUS.mint(app_claims(aud_of("hr-portal")))).allowed
    token = KEY.mint({**app_claims(aud_of("hr-portal")), "aud": aud_of("hr-portal")})
    assert dev.decide("payroll-api", cf_access_token=token).allowed


def test_small_clock_skew_is_tolerated(dev: Verifier) -> None:
    now = time.time()
    assert dev.decide("payroll-api", cf_access_token=cf("hr-portal", nbf=int(now + 10), iat=int(now + 10))).allowed
    assert dev.decide("payroll-api", cf_access_token=cf("hr-portal", exp=int(now - 10))).allowed


@pytest.mark.parametrize(("source", "target", "flow"), [
    ("front", "api", "cf"),          # inline policy on the app
    ("batch", "api", "cf"),          # reusable policy: include batch, exclude intruder
    ("batch", "reports", "cf"),      # include + require both met
    ("portal", "api", "bearer"),     # SaaS source, inline policy
])
def test_trust_made_outside_linked_apps(handmade: Verifier, source: str, target: str, flow: str) -> None:
    if flow == "cf":
        verdict = handmade.decide(target, cf_access_token=KEY.mint(app_claims(AUD[source])))
    else:
        verdict = handmade.decide(target, bearer=KEY.mint(saas_claims(PORTAL_CLIENT_ID)))
    assert verdict.allowed, verdict.reason
    assert verdict.source == source


# -- decisions that deny a verified token ----------------------------------------------------------------
@pytest.mark.parametrize(("source", "target", "reason"), [
    ("intruder", "api", "an exclude rule names the source app"),
    ("front", "reports", "a require rule is not met"),
    ("intruder", "reports", "'intruder (attached nowhere)' names intruder but is attached to no app"),
    ("front", "portal", "portal is a saas app; only a self-hosted app can grant"),
    ("plain", "api", "no policy attached to api has a linked_app_token rule for plain"),
])
def test_deployed_policies_decide(handmade: Verifier, source: str, target: str, reason: str) -> None:
    verdict = handmade.decide(target, cf_access_token=KEY.mint(app_claims(AUD[source])))
    assert not verdict.allowed
    assert reason in verdict.reason
    assert verdict.source == source and verdict.identity["email"] == "ann@acme.com"


def test_a_rule_on_a_saas_target_never_grants(dev: Verifier) -> None:
    verdict = dev.decide("mcp-server", cf_access_token=cf("hr-portal"))
    assert not verdict.allowed and "only a self-hosted app can grant" in verdict.reason


def test_policy_present_but_not_attached_to_this_target(dev: Verifier) -> None:
    verdict = dev.decide("docs-api", cf_access_token=cf("hr-portal"))
    assert not verdict.allowed and "is attached to payroll-api, not to docs-api" in verdict.reason


def test_each_flow_carries_its_own_kind_of_source(dev: Verifier) -> None:
    saas_as_cf = cf("mcp-server")
    verdict = dev.decide("docs-api", cf_access_token=saas_as_cf)
    assert not verdict.allowed and "arrive as Authorization: Bearer" in verdict.reason
    verdict = dev.decide("payroll-api", bearer=cf("hr-portal"))
    assert not verdict.allowed and "not the OIDC issuer of a SaaS app" in verdict.reason


def test_an_app_without_an_aud_in_state_cannot_be_a_source(dev: Verifier) -> None:
    # legacy-crm exists outside the stack: its uid is known, its AUD tag is not, so its tokens map to nothing.
    verdict = dev.decide("docs-api", cf_access_token=KEY.mint(app_claims("f" * 64)))
    assert not verdict.allowed and "unknown AUD tag" in verdict.reason


# -- attacks ---------------------------------------------------------------------------------------------
def _header(**extra: Any) -> dict[str, Any]:
    return {"alg": "RS256", "kid": KEY.kid, "typ": "JWT", **extra}


def _signed_by(key: Any, header: dict[str, Any], claims: dict[str, Any]) -> str:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    unsigned = raw_token(header, claims).rsplit(".", 1)[0]
    return f"{unsigned}.{b64url(key.private.sign(unsigned.encode(), padding.PKCS1v15(), hashes.SHA256()))}"


def _hs256_with_public_key() -> str:
    # The classic confusion: sign with HMAC, using the verifier's own RSA public key (PEM) as the secret.
    pem = KEY.public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    unsigned = raw_token({"alg": "HS256", "kid": KEY.kid, "typ": "JWT"}, app_claims(aud_of("hr-portal")))
    unsigned = unsigned.rsplit(".", 1)[0]
    return f"{unsigned}.{b64url(hmac.new(pem, unsigned.encode(), hashlib.sha256).digest())}"


def _non_canonical_signature() -> str:
    # 256 signature bytes -> 342 base64url chars; the last one carries 4 unused bits that must be zero.
    token = cf("hr-portal")
    last = token[-1]
    twin = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    return token[:-1] + twin[twin.index(last) + 1]


def _tampered() -> str:
    head, payload, sig = cf("hr-portal").split(".")
    claims = json.loads(__import__("base64").urlsafe_b64decode(payload + "=="))
    claims["email"] = "ceo@acme.com"
    return f"{head}.{b64url(json.dumps(claims).encode())}.{sig}"


ATTACKS: list[tuple[str, Callable[[], str], str]] = [
    ("alg none", lambda: raw_token({"alg": "none", "typ": "JWT"}, app_claims(aud_of("hr-portal"))) + "AAAA",
     "algorithm 'none' is not allowed"),
    ("alg none, no signature", lambda: raw_token({"alg": "none"}, app_claims(aud_of("hr-portal"))),
     "not a compact JWS"),
    ("alg None spelled oddly", lambda: _signed_by(KEY, _header(alg="None"), app_claims(aud_of("hr-portal"))),
     "is not allowed"),
    ("HS256 with the RSA public key", _hs256_with_public_key, "algorithm 'HS256' is not allowed"),
    ("RS512", lambda: KEY.mint(app_claims(aud_of("hr-portal")), headers={"alg": "RS512"}), "not allowed"),
    ("PS256", lambda: jwt_encode("PS256"), "algorithm 'PS256' is not allowed"),
    ("alg missing", lambda: raw_token({"kid": KEY.kid}, app_claims(aud_of("hr-portal")), b"x" * 256),
     "algorithm 'None' is not allowed"),
    ("foreign key, real kid", lambda: ATTACKER.mint(app_claims(aud_of("hr-portal")), kid=KEY.kid), "bad signature"),
    ("foreign key, own kid", lambda: ATTACKER.mint(app_claims(aud_of("hr-portal"))), "no key with kid 'attacker'"),
    ("kid path traversal", lambda: KEY.mint(app_claims(aud_of("hr-portal")), kid="../../../../etc/passwd"),
     "no key with kid '../../../../etc/passwd'"),
    ("kid URL", lambda: KEY.mint(app_claims(aud_of("hr-portal")), kid="http://127.0.0.1:1/keys"), "no key with kid"),
    ("kid not a string", lambda: _signed_by(KEY, _header(kid=7), app_claims(aud_of("hr-portal"))), "no usable `kid`"),
    ("kid missing", lambda: _signed_by(KEY, {"alg": "RS256"}, app_claims(aud_of("hr-portal"))), "no usable `kid`"),
    ("jku to attacker keys", lambda: ATTACKER.mint(app_claims(aud_of("hr-portal")),
                                                   headers={"jku": "https://evil.example/jwks"}), "carries `jku`"),
    ("jku with the real key", lambda: KEY.mint(app_claims(aud_of("hr-portal")),
                                               headers={"jku": "https://evil.example/jwks"}), "carries `jku`"),
    ("embedded jwk", lambda: ATTACKER.mint(app_claims(aud_of("hr-portal")), headers={"jwk": ATTACKER.jwk()}),
     "carries `jwk`"),
    ("x5u", lambda: KEY.mint(app_claims(aud_of("hr-portal")), headers={"x5u": "https://evil.example/c.pem"}),
     "carries `x5u`"),
    ("x5c", lambda: KEY.mint(app_claims(aud_of("hr-portal")), headers={"x5c": ["MIIB..."]}), "carries `x5c`"),
    ("crit", lambda: _signed_by(KEY, _header(crit=["exp"]), app_claims(aud_of("hr-portal"))), "`crit`"),
    ("crit empty", lambda: _signed_by(KEY, _header(crit=[]), app_claims(aud_of("hr-portal"))), "`crit`"),
    ("typ not JWT", lambda: KEY.mint(app_claims(aud_of("hr-portal")), headers={"typ": "at+jwt"}), "not JWT"),
    ("expired", lambda: cf("hr-portal", exp=int(time.time() - 120)), "the token expired"),
    ("exp missing", lambda: KEY.mint({k: v for k, v in app_claims(aud_of("hr-portal")).items() if k != "exp"}),
     "no `exp` claim"),
    ("exp a string", lambda: cf("hr-portal", exp=str(int(time.time() + 600))), "`exp` claim is not a NumericDate"),
    ("exp a boolean", lambda: cf("hr-portal", exp=True), "`exp` claim is not a NumericDate"),
    ("exp absurd", lambda: cf("hr-portal", exp=10**30), "`exp` claim is not a NumericDate"),
    ("nbf in the future", lambda: cf("hr-portal", nbf=int(time.time() + 3600)), "not valid yet"),
    ("iat in the future", lambda: cf("hr-portal", iat=int(time.time() + 3600)), "issued in the future"),
    ("other team", lambda: cf("hr-portal", iss="https://evil.cloudflareaccess.com"), "must match exactly"),
    ("extended issuer", lambda: cf("hr-portal", iss=f"{ISSUER}.evil.com"), "must match exactly"),
    ("issuer with path", lambda: cf("hr-portal", iss=f"{ISSUER}/x"), "must match exactly"),
    ("issuer trailing slash", lambda: cf("hr-portal", iss=f"{ISSUER}/"), "must match exactly"),
    ("issuer http", lambda: cf("hr-portal", iss=f"http://{TEAM}"), "must match exactly"),
    ("issuer upper case", lambda: cf("hr-portal", iss=ISSUER.upper()), "must match exactly"),
    ("issuer missing", lambda: _signed_by(KEY, _header(), {**app_claims(aud_of("hr-portal")), "iss": None}),
     "must match exactly"),
    ("org token", lambda: cf("hr-portal", type="org"), "`type` is 'org'"),
    ("type missing", lambda: cf("hr-portal", type=None), "`type` is 'None'"),
    ("unknown AUD", lambda: KEY.mint(app_claims("0" * 64)), "unknown AUD tag"),
    ("AUD prefix", lambda: KEY.mint(app_claims(aud_of("hr-portal")[:-1])), "unknown AUD tag"),
    ("aud empty", lambda: KEY.mint({**app_claims(aud_of("hr-portal")), "aud": []}), "`aud` claim"),
    ("aud a number", lambda: KEY.mint({**app_claims(aud_of("hr-portal")), "aud": 7}), "`aud` claim"),
    ("claims tampered", _tampered, "bad signature"),
    ("signature cut", lambda: cf("hr-portal")[:-2], "wrong length"),
    ("non-canonical signature", _non_canonical_signature, "not canonical base64url"),
    ("padded", lambda: ".".join(s + "=" * (-len(s) % 4) for s in cf("hr-portal").split(".")), "malformed token"),
    ("standard base64 alphabet", lambda: cf("hr-portal").replace("-", "+").replace("_", "/") + "+/",
     "malformed token"),
    ("whitespace inside", lambda: cf("hr-portal").replace(".", ". ", 1), "malformed token"),
    ("trailing newline", lambda: cf("hr-portal") + "\n", "malformed token"),
    ("oversized", lambda: cf("hr-portal", pad="x" * MAX_TOKEN_LENGTH), f"longer than {MAX_TOKEN_LENGTH}"),
    ("empty", lambda: "", "not a compact JWS"),
    ("garbage", lambda: "\x00\xff garbage \u2603", "not a compact JWS"),
    ("four parts", lambda: cf("hr-portal") + ".AAAA", "not a compact JWS"),
    ("JWE-shaped", lambda: "eyJhbGciOiJSU0EtT0FFUCJ9.AAAA.AAAA.AAAA.AAAA", "not a compact JWS"),
    ("header not JSON", lambda: f"{b64url(b'not json')}.{b64url(b'{}')}.AAAA", "header is not JSON"),
    ("payload an array", lambda: raw_token(_header(), [1, 2], b"x" * 256), "payload is not a JSON object"),
    ("payload deep nesting", lambda: f"{b64url(json.dumps(_header()).encode())}.{b64url(b'[' * 3000)}.AAAA",
     "payload is not JSON"),
    ("bad length segment", lambda: "A.AAAA.AAAA", "not valid base64url"),
]


@pytest.mark.parametrize(("segment", "reason"), [
    ("eyJhIjoxfQ", None),                 # {"a":1}, canonical
    ("eyJhIjoxfQ==", "padding"),
    ("eyJhIjoxfR", "not canonical"),      # same bytes, non-zero unused bits
    ("ey+hIjoxfQ", "standard alphabet"),
    ("ey/hIjoxfQ", "standard alphabet"),
    ("eyJh Ijox", "not valid base64url"),
    ("eyJhIjox\n", "not valid base64url"),
    ("eyJhIjoxf", "length"),
    ("eyJhIjox\u00e9Q", "not valid base64url"),
    ("", "length"),
])
def test_only_canonical_unpadded_base64url(segment: str, reason: str | None) -> None:
    from linked_apps.errors import TokenRejected
    from linked_apps.verifier._jws import b64url_decode

    if reason is None:
        assert b64url_decode(segment, "payload") == b'{"a":1}'
    else:
        with pytest.raises(TokenRejected, match=reason):
            b64url_decode(segment, "payload")


@pytest.mark.parametrize(("raw", "ok"), [
    (b'{"a":1}', True),
    (b'{"a":1} \n', True),             # trailing JSON whitespace
    (b' {"a":1}', False),               # leading whitespace: no issuer writes it
    (b'{"a":1}{"b":2}', False),         # a second document
    (b'{"a":1} x', False),
    (b'{"a":1}\x0b', False),            # not JSON whitespace
])
def test_payload_json_is_one_object_and_nothing_else(raw: bytes, ok: bool) -> None:
    from linked_apps.errors import TokenRejected
    from linked_apps.verifier._jws import _json_object

    if ok:
        assert _json_object(raw, "payload") == {"a": 1}
    else:
        with pytest.raises(TokenRejected, match="payload is not JSON"):
            _json_object(raw, "payload")


def jwt_encode(alg: str) -> str:
    import jwt

    return jwt.encode(app_claims(aud_of("hr-portal")), KEY.private, algorithm=alg, headers={"kid": KEY.kid})


@pytest.mark.parametrize(("name", "make", "reason"), ATTACKS, ids=[a[0] for a in ATTACKS])
def test_attack_is_denied_with_a_reason(dev: Verifier, name: str, make: Callable[[], str], reason: str) -> None:
    token = make()
    verdict = dev.decide("payroll-api", cf_access_token=token)
    assert isinstance(verdict, Verdict)
    assert not verdict.allowed
    assert reason in verdict.reason, verdict.reason
    assert not verdict.identity, "identity must come only from a verified token"


def test_random_kids_do_not_reach_the_network(server: JwksServer, dev: Verifier) -> None:
    before = server.hits.get(CERTS, 0)
    for i in range(50):
        assert not dev.decide("payroll-api", cf_access_token=KEY.mint(app_claims(aud_of("hr-portal")), kid=f"r{i}"))
    assert server.hits.get(CERTS, 0) - before <= 1  # the first fetch; the cooldown holds back every refetch


# -- bearer specifics ------------------------------------------------------------------------------------
@pytest.mark.parametrize("token", ["2f1c4a7e9b0d", "oauth:9f8e7d6c5b4a", "a.b", "x" * 300])
def test_opaque_bearer_is_denied_offline_saying_so(dev: Verifier, token: str) -> None:
    verdict = dev.decide("docs-api", bearer=token)
    assert not verdict.allowed and verdict.reason.startswith("opaque bearer token")
    assert "offline" in verdict.reason


@pytest.mark.parametrize(("claims", "reason"), [
    (lambda: saas_claims(MCP_CLIENT_ID, iss=f"{ISSUER}/cdn-cgi/access/sso/oidc/{'0' * 32}"), "not the OIDC issuer"),
    (lambda: saas_claims(MCP_CLIENT_ID, iss=f"{ISSUER}/cdn-cgi/access/sso/oidc/{MCP_CLIENT_ID}/"),
     "not the OIDC issuer"),
    (lambda: saas_claims(MCP_CLIENT_ID, iss=f"https://evil.com/cdn-cgi/access/sso/oidc/{MCP_CLIENT_ID}"),
     "not the OIDC issuer"),
    (lambda: saas_claims(MCP_CLIENT_ID, aud="someone-else"), "not mcp-server's client_id"),
    (lambda: saas_claims(MCP_CLIENT_ID, exp=int(time.time() - 600)), "expired"),
])
def test_bearer_jwt_attacks(dev: Verifier, claims: Callable[[], dict[str, Any]], reason: str) -> None:
    verdict = dev.decide("docs-api", bearer=KEY.mint(claims()))
    assert not verdict.allowed and reason in verdict.reason, verdict.reason


def test_bearer_signed_by_a_foreign_key(dev: Verifier) -> None:
    verdict = dev.decide("docs-api", bearer=ATTACKER.mint(saas_claims(MCP_CLIENT_ID), kid=KEY.kid))
    assert not verdict.allowed and "bad signature" in verdict.reason


# -- the call itself never fails open --------------------------------------------------------------------
def test_unknown_target_and_argument_mistakes_are_denies(dev: Verifier) -> None:
    assert "no app named 'nope'" in dev.decide("nope", cf_access_token=cf("hr-portal")).reason
    assert "exactly one token" in dev.decide("payroll-api").reason
    both = dev.decide("payroll-api", cf_access_token=cf("hr-portal"), bearer="x")
    assert not both.allowed and "exactly one token" in both.reason
    weird = dev.decide("payroll-api", cf_access_token=["not", "a", "string"])  # type: ignore[arg-type]
    assert not weird.allowed


def test_no_team_domain_is_a_config_error() -> None:
    from linked_apps.errors import ConfigError

    outputs = {k: v for k, v in dev_outputs().items() if k != "team_domain"}
    with pytest.raises(ConfigError, match="--team-domain"):
        Verifier(graph_from_outputs(outputs))
    with pytest.raises(ConfigError, match="not a host name"):
        Verifier(graph_from_outputs(outputs), team_domain="https://acme.com/path")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(
    st.text(max_size=400),
    st.builds(lambda a, b, c: f"{a}.{b}.{c}", *(st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
                                                         min_size=1, max_size=60),) * 3),
    st.builds(lambda h, p: raw_token(h, p, b"s" * 256),
              st.dictionaries(st.sampled_from(["alg", "kid", "typ", "crit", "jku"]),
                              st.one_of(st.none(), st.text(max_size=8), st.integers(), st.just("RS256"))),
              st.dictionaries(st.sampled_from(["iss", "aud", "exp", "nbf", "type"]),
                              st.one_of(st.none(), st.text(max_size=8), st.floats(), st.integers()))),
))
def test_arbitrary_input_is_denied_never_raised(dev: Verifier, token: str) -> None:
    for verdict in (dev.decide("payroll-api", cf_access_token=token), dev.decide("docs-api", bearer=token)):
        assert isinstance(verdict, Verdict) and not verdict.allowed and verdict.reason


def test_only_headers_of_verified_tokens_are_remembered(dev: Verifier) -> None:
    forged = ATTACKER.mint(app_claims(aud_of("hr-portal")), kid=KEY.kid)
    assert not dev.decide("payroll-api", cf_access_token=forged).allowed
    assert not dev._verified_headers
    honest = cf("hr-portal")
    assert dev.decide("payroll-api", cf_access_token=honest).allowed
    assert dev._verified_headers == {honest.split(".")[0]: KEY.kid}
    # the remembered header spares only the decoding: a forged token behind it still fails
    head, _, _ = honest.split(".")
    _, payload, signature = ATTACKER.mint(app_claims(aud_of("hr-portal")), kid=KEY.kid).split(".")
    verdict = dev.decide("payroll-api", cf_access_token=f"{head}.{payload}.{signature}")
    assert not verdict.allowed and "bad signature" in verdict.reason


def test_keys_are_fetched_over_plain_http_only_from_this_machine() -> None:
    """Whoever answers a plain-http key fetch could serve their own keys: only loopback mirrors may use http."""
    from linked_apps.errors import ConfigError

    graph = graph_from_outputs(dev_outputs())
    for url in ("http://keys.example.com", "http://10.0.0.7:8080", "http://127.0.0.1.nip.io", "ftp://127.0.0.1"):
        with pytest.raises(ConfigError, match="must start with https://"):
            Verifier(graph, access_url=url)
    for url in ("https://keys.example.com", "http://127.0.0.1:8080", "http://localhost:9000", "http://[::1]:80"):
        assert Verifier(graph, access_url=url).access_url == url


def test_decide_headers_reads_the_token_as_the_middleware_does(dev: Verifier) -> None:
    """For apps that are not ASGI: hand over the request's headers (lower-case names)."""
    via_header = dev.decide_headers("payroll-api", {"cf-access-token": cf("hr-portal")})
    assert via_header.allowed and via_header.source == "hr-portal"
    opaque = dev.decide_headers("payroll-api", {"authorization": "Bearer opaque-oauth-token"})
    assert not opaque.allowed and opaque.reason.startswith("opaque bearer token")
    none = dev.decide_headers("payroll-api", {"accept": "*/*"})
    assert not none.allowed and none.reason
