"""Decisions of the verifier that mutation testing (`./dev mutate`) found no test defending, and every time and
size limit at its boundary: each test here fails on a mutant that survived the older tests.

State documents come from `handmade_export()` (a `pulumi stack export` shape: outputs with ciphertext secrets,
every selector spelled out as the engine writes it); tokens are minted with PyJWT; keys and userinfo answers are
served through an httpx MockTransport standing in for the network (the bodies are the real certs / userinfo
shapes, CLOUDFLARE.md).
"""

from __future__ import annotations

import json
import threading
from typing import Any

import httpx
import pytest

from linked_apps.errors import KeysUnavailable, TokenRejected
from linked_apps.model.graph import App
from linked_apps.state import graph_from_export
from linked_apps.verifier import KeySet, Verifier
from linked_apps.verifier import _cache, _claims, _jws, _keys, _userinfo
from linked_apps.verifier._http import FetchFailed, get
from linked_apps.verifier._keys import parse_jwks
from tests._verifier_support import (
    AUD,
    ISSUER,
    PORTAL_CLIENT_ID,
    TEAM,
    UID,
    Clock,
    SigningKey,
    app_claims,
    b64url,
    handmade_export,
    jwks,
    raw_token,
    saas_claims,
    signing_key,
)

KEY = signing_key("mutants")
OTHER = signing_key("mutants-other")
WEAK = SigningKey("weak", bits=1024)


def serving(*docs: Any, status: int = 200) -> tuple[httpx.Client, list[int]]:
    """A client whose every GET answers the next of `docs` (the last one repeats); the list counts requests."""
    seen: list[int] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(1)
        doc = docs[min(len(seen), len(docs)) - 1]
        if isinstance(doc, int):
            return httpx.Response(doc, content=b"{}")
        return httpx.Response(status, content=doc if isinstance(doc, bytes) else json.dumps(doc).encode())

    return httpx.Client(transport=httpx.MockTransport(answer)), seen


def verifier(doc: dict[str, Any] | None = None, *, clock: Clock | None = None, **options: Any) -> Verifier:
    client, _ = serving(jwks(KEY))
    return Verifier(graph_from_export(doc or handmade_export()), team_domain=TEAM, client=client,
                    clock=clock or Clock(), **options)


def app_resource(doc: dict[str, Any], name: str) -> dict[str, Any]:
    return next(r for r in doc["deployment"]["resources"] if r.get("urn", "").endswith(f"::{name}"))


# -- the key set: which JWKs sign ----------------------------------------------------------------------------
def jwk(key: Any = KEY, **changes: Any) -> dict[str, Any]:
    entry = {**key.jwk(), **changes}
    return {k: v for k, v in entry.items() if v is not None}


@pytest.mark.parametrize("changes", [{"use": "enc"}, {"alg": "RS384"}, {"alg": "RS384", "use": "enc"},
                                     {"kty": "EC"}, {"kid": ""}, {"kid": 7}, {"kid": None}, {"e": None},
                                     {"n": ""}, {"n": "!!"}])
def test_a_jwk_that_is_not_an_rs256_signing_key_is_not_a_key(changes: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="no usable RSA signing key"):
        parse_jwks({"keys": [jwk(**changes)]})


@pytest.mark.parametrize("first", [{"use": "enc"}, {"alg": "RS384"}, {"kty": "EC"}, {"kid": ""}, {"kid": 7},
                                   {"e": None}, "not an object", None, {"n": "AQAB"}])
def test_an_unusable_entry_is_skipped_and_the_keys_after_it_are_read(first: Any) -> None:
    entry = jwk(OTHER, **first) if isinstance(first, dict) else first
    keys = parse_jwks({"keys": [entry, jwk()]})
    assert list(keys) == [KEY.kid]


def test_a_kid_names_one_key_and_a_later_duplicate_does_not_replace_it() -> None:
    keys = parse_jwks({"keys": [jwk(), jwk(OTHER, kid=KEY.kid), jwk(OTHER)]})
    assert keys[KEY.kid].public_numbers() == KEY.public.public_numbers()
    assert keys[OTHER.kid].public_numbers() == OTHER.public.public_numbers()


def test_alg_and_use_may_be_left_out_and_mean_rs256_signing() -> None:
    assert list(parse_jwks({"keys": [jwk(alg=None, use=None)]})) == [KEY.kid]


def test_a_key_below_2048_bits_is_not_a_key() -> None:
    with pytest.raises(ValueError):
        parse_jwks({"keys": [WEAK.jwk()]})
    assert list(parse_jwks({"keys": [WEAK.jwk(), jwk()]})) == [KEY.kid]


@pytest.mark.parametrize("doc", [[], {"keys": {}}, {"keys": None}, {"other": []}, "keys", {"keys": []}])
def test_a_document_without_a_keys_array_is_not_a_jwks(doc: Any) -> None:
    with pytest.raises(ValueError):
        parse_jwks(doc)


def test_a_key_set_serves_only_signing_keys_it_fetched() -> None:
    client, _ = serving({"keys": [jwk(use="enc"), jwk(OTHER)]})
    keys = KeySet("https://acme.cloudflareaccess.com/cdn-cgi/access/certs", client=client, clock=Clock())
    assert keys.key(OTHER.kid).public_numbers() == OTHER.public.public_numbers()
    with pytest.raises(KeysUnavailable, match="no key with kid"):
        keys.key(KEY.kid)


@pytest.mark.parametrize("spoil", [lambda v: v + "=" * (-len(v) % 4 or 4), lambda v: v.replace("-", "+") + "+",
                                   lambda v: v[:-1] + "B", lambda v: v + " ", lambda v: v[:5] + "\u00e9" + v[6:]])
def test_a_jwk_number_that_is_not_canonical_unpadded_base64url_makes_the_entry_unusable(spoil: Any) -> None:
    # RFC 7518 section 6.3.1: n and e are base64url without padding; read as strictly as a token's segments.
    n = jwk()["n"]
    assert len(n) % 4 == 2  # a 2048-bit modulus: its last character carries four unused bits
    with pytest.raises(ValueError, match="no usable RSA signing key"):
        parse_jwks({"keys": [jwk(n=spoil(n))]})


@pytest.mark.parametrize(("e", "value"), [("AQAB", 65537), ("AQE", 257), ("Aw", 3)])
def test_a_jwk_exponent_of_any_length_is_read_big_endian(e: str, value: int) -> None:
    assert parse_jwks({"keys": [jwk(e=e)]})[KEY.kid].public_numbers().e == value


@pytest.mark.parametrize(("error", "shown"), [(RuntimeError("x" * 300), "x" * 200 + ")"),
                                              (RuntimeError(), "(RuntimeError)")])
def test_a_failed_fetch_is_named_in_at_most_200_characters_or_by_its_class(
        monkeypatch: pytest.MonkeyPatch, error: Exception, shown: str) -> None:
    def failing(*args: Any, **kwargs: Any) -> Any:
        raise error

    monkeypatch.setattr(_keys, "get", failing)
    with pytest.raises(KeysUnavailable) as caught:
        KeySet("https://t/certs", clock=Clock()).key(KEY.kid)
    assert str(caught.value).endswith(f"failed {shown}") if shown.startswith("(") else shown in str(caught.value)
    assert "x" * 201 not in str(caught.value)


class HeldServer:
    """A key server whose answers after the first wait until the test lets them go: a fetch in flight."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.asked = threading.Event()
        self.requests = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        if self.requests > 1:
            self.asked.set()
            self.release.wait(30)
        return httpx.Response(200, json=jwks(KEY))


def fetch_in_flight(keys: KeySet) -> threading.Thread:
    """Start a refresh in another thread and return once its request is held by the server."""
    server = keys._client._transport.handler  # type: ignore[union-attr]
    thread = threading.Thread(target=keys.refresh, daemon=True)
    thread.start()
    assert server.asked.wait(5)
    return thread


def call(fn: Any, *args: Any) -> tuple[threading.Thread, list[Any]]:
    """Run fn(*args) in a thread; the list receives its result or its exception."""
    out: list[Any] = []

    def run() -> None:
        try:
            out.append(fn(*args))
        except Exception as exc:  # noqa: BLE001 - handed to the test
            out.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


def test_keys_within_max_stale_serve_without_waiting_for_a_fetch_in_flight() -> None:
    clock, server = Clock(1000.0), HeldServer()
    keys = KeySet("https://t/certs", client=httpx.Client(transport=httpx.MockTransport(server)), clock=clock,
                  ttl=10, cooldown=0, max_stale=100, timeout=60)
    keys.key(KEY.kid)
    fetcher = fetch_in_flight(keys)
    try:
        clock.advance(100)  # exactly max_stale old: still servable, so the caller must not queue behind the fetch
        caller, out = call(keys.key, KEY.kid)
        caller.join(10)  # the fetch in flight is held for up to 30 s and the lock wait is 60 s
        assert not caller.is_alive() and out and not isinstance(out[0], Exception)
    finally:
        server.release.set()
        fetcher.join(10)


def test_a_caller_without_usable_keys_gives_up_on_a_fetch_overrunning_its_deadline_and_says_so(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # A fetch ends at its deadline (the _http tests); this one overruns it, as a stuck parse or a slow machine
    # could: the waiter still gives up after its own timeout.
    release, asked = threading.Event(), threading.Event()

    def overrunning(*args: Any, **kwargs: Any) -> tuple[int, bytes]:
        asked.set()
        release.wait(30)
        return 200, json.dumps(jwks(KEY)).encode()

    monkeypatch.setattr(_keys, "get", overrunning)
    keys = KeySet("https://t/certs", clock=Clock(1000.0), timeout=0.2)
    fetcher = threading.Thread(target=keys.refresh, daemon=True)
    fetcher.start()
    try:
        assert asked.wait(5)
        with pytest.raises(KeysUnavailable, match=r"in flight did not finish within 0.2 s; failing closed"):
            keys.key(KEY.kid)
    finally:
        release.set()
        fetcher.join(10)
    assert keys.key(KEY.kid)  # the overrunning fetch's keys serve once it is done


# -- the key set: time limits ---------------------------------------------------------------------------------
def test_keys_are_refetched_exactly_when_the_ttl_runs_out() -> None:
    clock = Clock(1000.0)
    client, seen = serving(jwks(KEY))
    keys = KeySet("https://t/certs", client=client, clock=clock, ttl=60, cooldown=0)
    keys.key(KEY.kid)
    clock.advance(59.5)
    keys.key(KEY.kid)
    assert len(seen) == 1
    clock.advance(0.5)
    keys.key(KEY.kid)
    assert len(seen) == 2


def test_the_last_good_keys_serve_up_to_max_stale_and_not_a_second_longer() -> None:
    clock = Clock(1000.0)
    client, seen = serving(jwks(KEY), 503)
    keys = KeySet("https://t/certs", client=client, clock=clock, ttl=10, cooldown=0, max_stale=100)
    keys.key(KEY.kid)
    clock.advance(100)
    assert keys.key(KEY.kid)  # refetch failed; exactly max_stale old: still served
    assert len(seen) == 2
    clock.advance(1)
    with pytest.raises(KeysUnavailable, match="101 s old, beyond the 100 s allowed"):
        keys.key(KEY.kid)


def test_after_a_failed_fetch_the_next_try_waits_exactly_one_cooldown() -> None:
    clock = Clock(1000.0)
    client, seen = serving(jwks(KEY), 503, jwks(KEY))
    keys = KeySet("https://t/certs", client=client, clock=clock, ttl=10, cooldown=30, max_stale=1000)
    keys.key(KEY.kid)
    clock.advance(10)
    keys.key(KEY.kid)  # TTL over: one fetch, which fails
    assert len(seen) == 2
    assert keys.good_until == 1010 + 30
    clock.advance(29)
    keys.key(KEY.kid)
    assert len(seen) == 2  # still within the cooldown: no second try
    clock.advance(1)
    keys.key(KEY.kid)
    assert len(seen) == 3
    assert keys.good_until == 1040 + 10  # the fetch succeeded: the TTL again


def test_an_unknown_kid_refetches_once_per_cooldown_counted_from_the_last_try() -> None:
    clock = Clock(1000.0)
    client, seen = serving(jwks(KEY))
    keys = KeySet("https://t/certs", client=client, clock=clock, cooldown=30)
    keys.key(KEY.kid)
    clock.advance(29.9)
    with pytest.raises(KeysUnavailable, match="refetched at most once per 30 s"):
        keys.key("unknown")
    assert len(seen) == 1
    clock.advance(0.1)
    with pytest.raises(KeysUnavailable):
        keys.key("unknown")
    assert len(seen) == 2


def test_a_never_fetched_key_set_says_why_it_has_no_keys() -> None:
    client, _ = serving(503)
    keys = KeySet("https://t/certs", client=client, clock=Clock(), cooldown=0)
    with pytest.raises(KeysUnavailable, match=r"no signing keys: fetching https://t/certs failed \(HTTP 503\)"):
        keys.key(KEY.kid)


def test_refresh_reports_whether_the_fetch_succeeded_and_keeps_the_last_good_keys() -> None:
    client, _ = serving(jwks(KEY), b"not json")
    keys = KeySet("https://t/certs", client=client, clock=Clock())
    assert keys.refresh() is True
    assert keys.refresh() is False
    assert keys.kids == frozenset({KEY.kid})


def test_a_listener_hears_which_keys_left_or_changed() -> None:
    client, _ = serving(jwks(KEY, OTHER), jwks(KEY), {"keys": [jwk(), jwk(WEAK, kid="x"), jwk(KEY, kid=OTHER.kid)]})
    keys = KeySet("https://t/certs", client=client, clock=Clock())
    heard: list[frozenset[str]] = []
    keys.on_change(lambda keyset, removed: heard.append(removed))
    keys.refresh()
    keys.refresh()
    keys.refresh()
    assert heard == [frozenset({OTHER.kid})]  # the third fetch only adds kids


@pytest.mark.parametrize(("option", "low", "high"), [("ttl", 1.0, 7 * 86400.0), ("cooldown", 0.0, 86400.0),
                                                     ("max_stale", 0.0, 30 * 86400.0), ("timeout", 0.01, 60.0)])
def test_each_timing_option_takes_its_bounds_and_nothing_beyond(option: str, low: float, high: float) -> None:
    for good in (low, high):
        KeySet("https://t/certs", **{option: good})
    for bad in (low - 0.001, high + 0.001, float("nan"), True, "1"):
        with pytest.raises(ValueError, match=option):
            KeySet("https://t/certs", **{option: bad})


def test_verifier_limits_on_leeway_and_cache_size() -> None:
    from linked_apps.errors import ConfigError
    from linked_apps.verifier._verifier import MAX_LEEWAY

    for good in ({"leeway": 0.0}, {"leeway": MAX_LEEWAY}, {"cache_size": 0}, {"cache_size": 10_000_000}):
        verifier(**good)
    for bad in ({"leeway": -0.5}, {"leeway": MAX_LEEWAY + 0.5}, {"cache_size": -1}, {"cache_size": 10_000_001},
                {"cache_size": 2.0}, {"key_ttl": 0.5}, {"fetch_timeout": 61}):
        with pytest.raises(ConfigError) as caught:
            verifier(**bad)
        assert next(iter(bad)) in str(caught.value)


# -- tokens: size limits --------------------------------------------------------------------------------------
def token_of_length(length: int) -> str:
    """A well-formed token (header with a kid of the test key, claims padded) exactly `length` characters long."""
    base = len(KEY.mint({**app_claims(AUD["front"]), "pad": ""}))
    start = max(0, (length - base) * 3 // 4 - 4)
    for pad in range(start, start + 8):
        for extra in range(3):
            claims = {**app_claims(AUD["front"]), "pad": "x" * pad}
            token = KEY.mint(claims, headers={"x": "y" * extra} if extra else None)
            if len(token) == length:
                return token
    raise AssertionError(f"no token of {length} characters")


def test_a_token_of_the_maximum_length_is_read_and_one_more_character_is_refused() -> None:
    longest = token_of_length(_jws.MAX_TOKEN_LENGTH)
    assert _jws.looks_like_jws(longest)
    assert _jws.parse(longest).kid == KEY.kid
    assert verifier().decide("api", cf_access_token=longest).allowed
    too_long = longest + "A"
    assert not _jws.looks_like_jws(too_long)
    with pytest.raises(TokenRejected, match="longer than 8192 characters"):
        _jws.parse(too_long)


def test_a_bearer_token_too_long_to_be_a_jwt_is_refused_as_too_long_not_as_opaque() -> None:
    verdict = verifier().decide("api", bearer="a.b." + "c" * _jws.MAX_TOKEN_LENGTH)
    assert "longer than" in verdict.reason
    opaque = verifier().decide("api", bearer="x" * _jws.MAX_TOKEN_LENGTH)
    assert "opaque bearer token" in opaque.reason


@pytest.mark.parametrize(("length", "usable"), [(1, True), (_jws.MAX_KID_LENGTH, True),
                                                (_jws.MAX_KID_LENGTH + 1, False)])
def test_kid_length_limit(length: int, usable: bool) -> None:
    token = raw_token({"alg": "RS256", "kid": "k" * length}, app_claims(AUD["front"]), b"s" * 256)
    if usable:
        assert _jws.parse(token).kid == "k" * length
    else:
        with pytest.raises(TokenRejected, match="no usable `kid`"):
            _jws.parse(token)


@pytest.mark.parametrize("kid", ["", 7, None, ["k"]])
def test_a_kid_that_is_not_a_non_empty_string_is_refused(kid: Any) -> None:
    header = {"alg": "RS256", "kid": kid} if kid is not None else {"alg": "RS256"}
    with pytest.raises(TokenRejected, match="no usable `kid`"):
        _jws.parse(raw_token(header, app_claims(AUD["front"]), b"s"))


@pytest.mark.parametrize(("typ", "ok"), [(None, True), ("JWT", True), ("jwt", True), ("at+jwt", False),
                                         (1, False), ("", False)])
def test_typ_may_be_absent_or_jwt_in_any_case(typ: Any, ok: bool) -> None:
    header = {"alg": "RS256", "kid": "k", **({} if typ is None else {"typ": typ})}
    token = raw_token(header, app_claims(AUD["front"]), b"s")
    if ok:
        assert _jws.parse(token).kid == "k"
    else:
        with pytest.raises(TokenRejected, match="typ"):
            _jws.parse(token)


@pytest.mark.parametrize("header", [{"alg": "RS256", "kid": "k", "jku": None}, {"alg": "RS256", "kid": "k", "x5c": []},
                                    {"alg": "RS256", "kid": "k", "crit": []}, {"alg": "none", "kid": "k"},
                                    {"kid": "k"}, {"alg": "RS384", "kid": "k"}])
def test_a_header_naming_other_keys_or_algorithms_is_refused_even_when_empty(header: dict[str, Any]) -> None:
    with pytest.raises(TokenRejected):
        _jws.parse(raw_token(header, app_claims(AUD["front"]), b"s"))


def test_a_header_seen_on_a_verified_token_is_not_checked_again_but_the_payload_is() -> None:
    token = KEY.mint(app_claims(AUD["front"]))
    h64 = token.split(".")[0]
    assert _jws.parse(token, {h64: "remembered"}).kid == "remembered"
    with pytest.raises(TokenRejected, match="payload is not JSON"):
        _jws.parse(f"{h64}.{b64url(b'nope')}.{token.split('.')[2]}", {h64: "remembered"})


@pytest.mark.parametrize("token", ["a.b", "a.b.c.d", ".b.c", "a..c", "a.b.", ".e30.c2ln", "e30..c2ln", "e30.e30.",
                                   "..", "e30.e30.c2ln.", 5, b"a.b.c"])
def test_anything_but_three_non_empty_segments_is_not_a_compact_jws(token: Any) -> None:
    # The reason says what is wrong with the whole token, never that an empty segment "is not JSON".
    with pytest.raises(TokenRejected, match="malformed token: not (a compact JWS|a string)"):
        _jws.parse(token)


@pytest.mark.parametrize("segment", ["header", "payload", "signature"])
@pytest.mark.parametrize(("bad", "why"), [("=", "padding or the standard alphabet"),
                                          ("+", "padding or the standard alphabet"),
                                          (" ", "is not valid base64url"), ("\u00e9", "is not valid base64url")])
def test_a_segment_outside_the_base64url_alphabet_is_named_in_the_reason(segment: str, bad: str, why: str) -> None:
    # The header holds "-" and "_" (canonical base64url), which must read as such while the broken part is sought.
    header = b64url(json.dumps({"alg": "RS256", "kid": "k\u00fb\u00ff?>"}).encode())
    assert "-" in header or "_" in header
    parts = dict(zip(("header", "payload", "signature"), (header, b64url(b'{"a":1}'), b64url(b"s" * 256))))
    parts[segment] = parts[segment][:1] + bad + parts[segment][2:]  # same length: only the alphabet is wrong
    with pytest.raises(TokenRejected) as caught:
        _jws.parse(".".join(parts.values()))
    assert f"malformed token: the {segment} " in str(caught.value) and why in str(caught.value)


@pytest.mark.parametrize(("tail", "ok"), [(" \t\r\n", True), ("X", False), (" X", False), ("{}", False),
                                          ("\u00a0", False), ("\f", False)])
def test_after_the_json_object_only_json_whitespace_may_follow(tail: str, ok: bool) -> None:
    token = f"{b64url(json.dumps({'alg': 'RS256', 'kid': 'k'}).encode())}.{b64url(('{}' + tail).encode())}.{b64url(b's')}"
    if ok:
        assert _jws.parse(token).claims == {}
    else:
        with pytest.raises(TokenRejected, match="the payload is not JSON"):
            _jws.parse(token)


def test_a_signature_of_the_wrong_length_or_by_another_key_is_refused() -> None:
    parsed = _jws.parse(KEY.mint(app_claims(AUD["front"])))
    _jws.verify_signature(parsed, KEY.public)
    with pytest.raises(TokenRejected, match="not signed by a key of the pinned key set"):
        _jws.verify_signature(parsed, OTHER.public)
    short = _jws.Parsed(parsed.kid, parsed.claims, parsed.signing_input, parsed.signature[:-1], parsed.header_segment)
    with pytest.raises(TokenRejected, match="wrong length"):
        _jws.verify_signature(short, KEY.public)


def test_payload_must_be_a_json_object_in_utf8() -> None:
    for payload, why in ((b"[1]", "not a JSON object"), (b"\xff{}", "not JSON"), (b"1", "not a JSON object")):
        token = f"{b64url(json.dumps({'alg': 'RS256', 'kid': 'k'}).encode())}.{b64url(payload)}.{b64url(b's')}"
        with pytest.raises(TokenRejected, match=why):
            _jws.parse(token)


# -- claims: the time window at its edges -----------------------------------------------------------------
NOW = 1_000_000.0


def claims(**changes: Any) -> dict[str, Any]:
    base = {"iss": ISSUER, "exp": NOW + 600, "type": "app"}
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


@pytest.mark.parametrize("leeway", [0.0, 30.0])
def test_exp_holds_until_leeway_after_it_and_no_longer(leeway: float) -> None:
    edge = NOW - leeway
    assert _claims.check(claims(exp=edge + 1), issuer=ISSUER, now=NOW, leeway=leeway) == edge + 1
    with pytest.raises(TokenRejected, match="expired"):
        _claims.check(claims(exp=edge), issuer=ISSUER, now=NOW, leeway=leeway)


@pytest.mark.parametrize("claim", ["nbf", "iat"])
@pytest.mark.parametrize("leeway", [0.0, 30.0])
def test_nbf_and_iat_may_lie_up_to_leeway_in_the_future(claim: str, leeway: float) -> None:
    _claims.check(claims(**{claim: NOW + leeway}), issuer=ISSUER, now=NOW, leeway=leeway)
    with pytest.raises(TokenRejected, match="future"):
        _claims.check(claims(**{claim: NOW + leeway + 1}), issuer=ISSUER, now=NOW, leeway=leeway)


def test_the_default_leeway_is_thirty_seconds() -> None:
    _claims.check(claims(exp=NOW - 29, nbf=NOW + 30), issuer=ISSUER, now=NOW)
    with pytest.raises(TokenRejected):
        _claims.check(claims(exp=NOW - 30), issuer=ISSUER, now=NOW)


@pytest.mark.parametrize("value", [float("nan"), True, "1700000000", [1], 253402300799, -253402300799, 1e300])
@pytest.mark.parametrize("claim", ["exp", "nbf", "iat"])
def test_a_time_claim_that_is_not_a_numeric_date_is_refused(claim: str, value: Any) -> None:
    with pytest.raises(TokenRejected, match=f"`{claim}` claim is not a NumericDate"):
        _claims.check(claims(**{claim: value}), issuer=ISSUER, now=NOW)


def test_the_latest_numeric_date_is_read() -> None:
    assert _claims.check(claims(exp=253402300798), issuer=ISSUER, now=NOW) == 253402300798
    _claims.check(claims(iat=-253402300798, nbf=-253402300798), issuer=ISSUER, now=NOW)


def test_a_token_without_exp_wrong_issuer_or_wrong_type_is_refused() -> None:
    with pytest.raises(TokenRejected, match="no `exp`"):
        _claims.check(claims(exp=None), issuer=ISSUER, now=NOW)
    for iss in (ISSUER + "/", ISSUER.upper(), None, 5):
        with pytest.raises(TokenRejected, match="issuer"):
            _claims.check(claims(iss=iss), issuer=ISSUER, now=NOW)
    _claims.check(claims(type="org"), issuer=ISSUER, now=NOW)  # no type asked: any
    with pytest.raises(TokenRejected, match="`type` is 'org', not 'app'"):
        _claims.check(claims(type="org"), issuer=ISSUER, now=NOW, token_type="app")
    with pytest.raises(TokenRejected, match="`type`"):
        _claims.check(claims(type=None), issuer=ISSUER, now=NOW, token_type="app")


@pytest.mark.parametrize(("aud", "read"), [("a", ("a",)), (["a", "b"], ("a", "b")), ([], None), (["a", 1], None),
                                           (None, None), (5, None), ({"a": 1}, None)])
def test_aud_is_a_string_or_a_non_empty_array_of_strings(aud: Any, read: Any) -> None:
    if read is None:
        with pytest.raises(TokenRejected, match="`aud`"):
            _claims.audiences({"aud": aud})
    else:
        assert _claims.audiences({"aud": aud}) == read


def test_a_cached_verdict_lives_until_exp_plus_leeway_then_the_token_is_checked_again() -> None:
    clock = Clock(NOW)
    v = verifier(clock=clock, leeway=30)
    token = KEY.mint(app_claims(AUD["front"], now=NOW, ttl=100))
    assert v.decide("api", cf_access_token=token).allowed
    clock.advance(129)
    assert v.cached("api", cf_access_token=token) is not None
    assert v.decide("api", cf_access_token=token).allowed
    clock.advance(1)
    assert v.cached("api", cf_access_token=token) is None
    assert "expired" in v.decide("api", cf_access_token=token).reason


def test_a_cached_verdict_ends_when_the_key_set_is_due() -> None:
    clock = Clock(NOW)
    v = verifier(clock=clock, key_ttl=50)
    token = KEY.mint(app_claims(AUD["front"], now=NOW, ttl=1000))
    v.decide("api", cf_access_token=token)
    clock.advance(49)
    assert v.cached("api", cf_access_token=token) is not None
    clock.advance(1)
    assert v.cached("api", cf_access_token=token) is None


# -- the decision: sender, source attribution -------------------------------------------------------------
def with_app(name: str, typ: str, **outputs: Any) -> dict[str, Any]:
    """handmade_export plus app `name` (uid and aud of `plain`, which it replaces) named by api's inline policy."""
    doc = handmade_export()
    res = app_resource(doc, "plain")
    res["outputs"].update(name=name, type=typ, **outputs)
    res["urn"] = res["urn"].replace("::plain", f"::{name}")
    api = app_resource(doc, "api")["outputs"]
    api["policies"][0]["includes"].append({"email": None, "linkedAppToken": {"appUid": UID["plain"]}})
    return doc


@pytest.mark.parametrize("typ", ["ssh", "bookmark", "warp", "infrastructure"])
def test_an_app_that_cannot_send_tokens_is_no_source_even_when_a_policy_names_it(typ: str) -> None:
    verdict = verifier(with_app("kiosk", typ)).decide("api", cf_access_token=KEY.mint(app_claims(AUD["plain"])))
    assert not verdict.allowed
    assert verdict.reason == f"kiosk is a {typ} app, which carries no user token another app can accept"
    assert verdict.source == "kiosk"


def test_a_source_whose_type_cannot_be_read_is_named_as_unreadable() -> None:
    doc = with_app("kiosk", "self_hosted")
    app_resource(doc, "kiosk")["outputs"]["type"] = {"4dabf18193072939515e22adb298388d": "1", "ciphertext": "x"}
    verdict = verifier(doc).decide("api", cf_access_token=KEY.mint(app_claims(AUD["plain"])))
    assert not verdict.allowed
    assert verdict.reason.startswith("cannot read the sending app kiosk in full:")
    assert "type is a secret" in verdict.reason


def test_a_saas_apps_aud_in_a_cf_access_token_is_the_wrong_flow() -> None:
    doc = handmade_export()
    app_resource(doc, "portal")["outputs"]["aud"] = AUD["portal"]
    verdict = verifier(doc).decide("api", cf_access_token=KEY.mint(app_claims(AUD["portal"])))
    assert not verdict.allowed
    assert verdict.reason == ("portal is a saas app; its tokens arrive as Authorization: Bearer, not Cf-Access-Token")


@pytest.mark.parametrize("order", [["batch", "front"], ["front", "batch"]])
def test_the_source_is_the_app_the_granting_policy_names_whichever_aud_comes_first(order: list[str]) -> None:
    verdict = verifier().decide("api", cf_access_token=KEY.mint(app_claims([AUD[n] for n in order])))
    assert verdict.allowed
    assert verdict.source == "front"
    assert verdict.policy == "front may call"
    assert verdict.reason.endswith("(front)")


def test_an_aud_naming_no_app_in_the_state_is_refused_and_unknown_tags_beside_a_known_one_are_ignored() -> None:
    v = verifier()
    unknown = v.decide("api", cf_access_token=KEY.mint(app_claims(["ff" * 32])))
    assert "names no app in the state" in unknown.reason
    mixed = v.decide("api", cf_access_token=KEY.mint(app_claims(["ff" * 32, AUD["front"]])))
    assert mixed.allowed and mixed.source == "front"


def test_the_same_aud_twice_is_one_source() -> None:
    verdict = verifier().decide("api", cf_access_token=KEY.mint(app_claims([AUD["front"], AUD["front"]])))
    assert verdict.allowed
    assert verdict.reason.endswith("(front)")


def test_a_policy_that_names_the_source_but_does_not_admit_it_is_named() -> None:
    verdict = verifier().decide("reports", cf_access_token=KEY.mint(app_claims(AUD["front"])))
    assert not verdict.allowed
    assert verdict.policy == "front or batch, batch required"
    assert "names front but does not admit it: a require rule is not met" in verdict.reason


def test_a_policy_that_would_admit_but_sits_elsewhere_is_named_with_where_it_sits() -> None:
    v = verifier()
    elsewhere = v.decide("plain", cf_access_token=KEY.mint(app_claims(AUD["front"])))
    assert not elsewhere.allowed
    assert "attached to portal, not to plain" in elsewhere.reason or "attached to reports, not to plain" in elsewhere.reason
    orphan = v.decide("plain", cf_access_token=KEY.mint(app_claims(AUD["intruder"])))
    assert orphan.policy == "intruder (attached nowhere)"
    assert "is attached to no app" in orphan.reason


def test_a_target_that_is_not_self_hosted_grants_nothing() -> None:
    verdict = verifier().decide("portal", cf_access_token=KEY.mint(app_claims(AUD["front"])))
    assert not verdict.allowed
    assert verdict.reason.startswith("portal is a saas app; only a self-hosted app can grant")


def test_a_source_without_uid_cannot_be_named() -> None:
    doc = handmade_export()
    res = app_resource(doc, "front")
    res["outputs"]["id"] = ciphertext_value = {"4dabf18193072939515e22adb298388d": "1", "ciphertext": "x"}
    res["id"] = ciphertext_value
    verdict = verifier(doc).decide("api", cf_access_token=KEY.mint(app_claims(AUD["front"])))
    assert not verdict.allowed


def test_a_saas_issuer_with_a_slash_or_no_client_id_is_no_saas_source() -> None:
    v = verifier()
    for iss in (f"{ISSUER}/cdn-cgi/access/sso/oidc/", f"{ISSUER}/cdn-cgi/access/sso/oidc/{PORTAL_CLIENT_ID}/x"):
        token = KEY.mint(saas_claims(PORTAL_CLIENT_ID, iss=iss))
        assert "is not the OIDC issuer of a SaaS app in the state" in v.decide("api", bearer=token).reason


def test_a_saas_bearer_token_whose_aud_is_another_client_is_refused() -> None:
    token = KEY.mint(saas_claims(PORTAL_CLIENT_ID, aud="someone-else"))
    assert verifier().decide("api", bearer=token).reason == "the token's `aud` is not portal's client_id"
    ok = KEY.mint(saas_claims(PORTAL_CLIENT_ID, aud=["x", PORTAL_CLIENT_ID]))
    assert verifier().decide("api", bearer=ok).allowed


def test_a_cf_access_token_of_the_org_type_is_refused() -> None:
    verdict = verifier().decide("api", cf_access_token=KEY.mint(app_claims(AUD["front"], type="org")))
    assert "`type` is 'org'" in verdict.reason


# -- caches: size limits ----------------------------------------------------------------------------------
def test_a_token_remembers_verdicts_for_at_most_32_targets() -> None:
    entry = _cache.Entry(1e18, None, "k", {}, ())
    cache = _cache.TokenCache(4)
    for i in range(_cache.MAX_TARGETS_PER_TOKEN + 1):
        cache.remember(entry, f"t{i}", object())  # type: ignore[arg-type]
    assert len(entry.verdicts) == _cache.MAX_TARGETS_PER_TOKEN
    assert f"t{_cache.MAX_TARGETS_PER_TOKEN - 1}" in entry.verdicts


def test_the_token_cache_holds_at_most_its_size_dropping_the_oldest() -> None:
    cache = _cache.TokenCache(2)
    for token in ("a", "b", "c"):
        cache.put(token, _cache.Entry(1e18, None, "k", {}, ()))
    assert list(cache.entries) == ["b", "c"]
    off = _cache.TokenCache(0)
    off.put("a", _cache.Entry(1e18, None, "k", {}, ()))
    assert len(off) == 0


def test_dropping_keys_forgets_only_tokens_of_that_key_set_and_kid() -> None:
    mine, other = object(), object()
    cache = _cache.TokenCache(10)
    cache.put("t1", _cache.Entry(1e18, mine, "k1", {}, ()))  # type: ignore[arg-type]
    cache.put("t2", _cache.Entry(1e18, mine, "k2", {}, ()))  # type: ignore[arg-type]
    cache.put("t3", _cache.Entry(1e18, other, "k1", {}, ()))  # type: ignore[arg-type]
    cache.drop_keys(mine, frozenset({"k1"}))  # type: ignore[arg-type]
    assert sorted(cache.entries) == ["t2", "t3"]


class RacingKids(frozenset):  # type: ignore[type-arg]
    """A set of kids whose membership test lets "another thread" drop the entry being looked at first."""

    cache: _cache.TokenCache

    def __contains__(self, kid: object) -> bool:
        dropped = frozenset.__contains__(self, kid)
        if dropped:
            for token in [t for t, entry in self.cache.entries.items() if entry.kid == kid]:
                del self.cache.entries[token]
        return dropped


def test_dropping_keys_tolerates_another_thread_dropping_the_same_token_first() -> None:
    keyset = object()
    cache = _cache.TokenCache(10)
    cache.put("t1", _cache.Entry(1e18, keyset, "k1", {}, ()))  # type: ignore[arg-type]
    cache.put("t2", _cache.Entry(1e18, keyset, "k2", {}, ()))  # type: ignore[arg-type]
    kids = RacingKids({"k1"})
    kids.cache = cache
    cache.drop_keys(keyset, kids)  # type: ignore[arg-type]
    assert list(cache.entries) == ["t2"]


class RacingEntries(dict):  # type: ignore[type-arg]
    """The cache's dict, where "another thread" evicts the oldest entry just before this one tries to."""

    def __delitem__(self, token: str) -> None:
        dict.__delitem__(self, token)
        raise KeyError(token)


def test_a_new_entry_is_cached_even_when_another_thread_evicted_for_it() -> None:
    cache = _cache.TokenCache(2)
    cache.entries = RacingEntries(a=_cache.Entry(1e18, None, "k", {}, ()), b=_cache.Entry(1e18, None, "k", {}, ()))
    cache.put("c", _cache.Entry(1e18, None, "k", {}, ()))
    assert list(cache.entries) == ["b", "c"]


def test_the_verifier_cache_size_bounds_cached_tokens() -> None:
    v = verifier(cache_size=1)
    first, second = (KEY.mint(app_claims(AUD["front"], jti=str(i))) for i in range(2))
    v.decide("api", cf_access_token=first)
    v.decide("api", cf_access_token=second)
    assert v.cached("api", cf_access_token=first) is None
    assert v.cached("api", cf_access_token=second) is not None


def test_cached_answers_only_for_exactly_one_token() -> None:
    v = verifier()
    token = KEY.mint(app_claims(AUD["front"]))
    v.decide("api", cf_access_token=token)
    assert v.cached("api", cf_access_token=token, bearer=token) is None
    assert v.cached("api") is None
    assert v.cached("api", bearer=token) is None  # the two flows do not share a cache
    assert v.cached("plain", cf_access_token=token) is None
    v.clear_cache()
    assert v.cached("api", cf_access_token=token) is None


# -- bounded GETs: body caps -------------------------------------------------------------------------------
def client_answering(body: bytes, status: int = 200) -> httpx.Client:
    return httpx.Client(transport=httpx.MockTransport(lambda request: httpx.Response(status, content=body)))


def test_a_body_of_exactly_the_cap_is_read_and_one_byte_more_is_refused() -> None:
    assert get("https://t/x", timeout=2, max_body=10, client=client_answering(b"0123456789")) == (200, b"0123456789")
    with pytest.raises(FetchFailed, match="larger than 10 bytes"):
        get("https://t/x", timeout=2, max_body=10, client=client_answering(b"0123456789A"))


def test_the_key_fetch_cap_is_256_kib() -> None:
    doc = json.dumps(jwks(KEY)).encode()
    fits = doc[:-1] + b" " * (_keys.MAX_BODY - len(doc)) + b"}"
    assert len(fits) == _keys.MAX_BODY
    keys = KeySet("https://t/certs", client=client_answering(fits), clock=Clock())
    assert keys.key(KEY.kid)
    over = KeySet("https://t/certs", client=client_answering(fits + b" "), clock=Clock())
    with pytest.raises(KeysUnavailable, match=f"larger than {_keys.MAX_BODY} bytes"):
        over.key(KEY.kid)


def test_a_key_fetch_answered_with_anything_but_200_json_keeps_no_keys() -> None:
    for client, why in ((client_answering(json.dumps(jwks(KEY)).encode(), 201), "HTTP 201"),
                        (client_answering(b"{nope"), "not JSON")):
        keys = KeySet("https://t/certs", client=client, clock=Clock())
        with pytest.raises(KeysUnavailable, match=why):
            keys.key(KEY.kid)


# -- userinfo: candidate count and body cap ---------------------------------------------------------------
def saas_apps(count: int) -> list[App]:
    return [App(name=f"s{i:02d}", type="saas", uid=f"00000000-0000-4000-8000-{i:012d}", client_id=f"c{i}")
            for i in range(count)]


def test_at_most_sixteen_userinfo_endpoints_are_asked() -> None:
    asked: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.path)
        return httpx.Response(401)

    client = httpx.Client(transport=httpx.MockTransport(answer))
    with pytest.raises(TokenRejected, match="the userinfo endpoint of no SaaS app the target trusts"):
        _userinfo.ask("opaque", saas_apps(_userinfo.MAX_CANDIDATES), "https://t", client, 2)
    assert len(asked) == _userinfo.MAX_CANDIDATES
    with pytest.raises(TokenRejected, match="trusts 17 SaaS apps; at most 16"):
        _userinfo.ask("opaque", saas_apps(_userinfo.MAX_CANDIDATES + 1), "https://t", client, 2)
    assert len(asked) == _userinfo.MAX_CANDIDATES


def test_a_userinfo_answer_over_64_kib_vouches_for_nothing() -> None:
    body = json.dumps({"sub": "ann", "pad": ""}).encode()
    fits = body[:-2] + b"x" * (_userinfo.MAX_BODY - len(body)) + b'"}'
    assert len(fits) == _userinfo.MAX_BODY
    app = saas_apps(1)
    assert _userinfo.ask("t", app, "https://t", client_answering(fits), 2)[1]["sub"] == "ann"
    with pytest.raises(TokenRejected, match=f"larger than {_userinfo.MAX_BODY} bytes"):
        _userinfo.ask("t", app, "https://t", client_answering(fits[:-2] + b'x"}'), 2)


@pytest.mark.parametrize(("status", "body", "why"), [(500, b"{}", "HTTP 500"), (200, b"nope", "not JSON"),
                                                     (200, b'{"sub": ""}', "with a `sub`"),
                                                     (200, b'["sub"]', "with a `sub`")])
def test_a_userinfo_answer_that_is_not_an_acceptance_is_an_error_named(status: int, body: bytes, why: str) -> None:
    with pytest.raises(TokenRejected, match=why):
        _userinfo.ask("t", saas_apps(1), "https://t", client_answering(body, status), 2)


def test_one_acceptance_beside_an_error_is_not_enough() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"sub": "ann"}) if "/c0/" in request.url.path else httpx.Response(502)

    client = httpx.Client(transport=httpx.MockTransport(answer))
    with pytest.raises(TokenRejected, match="s00 accepted it, but not every SaaS app the target trusts answered"):
        _userinfo.ask("t", saas_apps(2), "https://t", client, 2)
    with pytest.raises(TokenRejected, match="no SaaS app is named by a policy"):
        _userinfo.ask("t", [], "https://t", client, 2)


def test_an_online_verdict_lasts_the_userinfo_ttl_and_is_labelled() -> None:
    clock = Clock(NOW)

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"sub": "ann"}) if request.url.path.endswith("/userinfo") else \
            httpx.Response(200, json=jwks(KEY))

    doc = handmade_export()
    v = Verifier(graph_from_export(doc), team_domain=TEAM, client=httpx.Client(transport=httpx.MockTransport(answer)),
                 clock=clock, online_userinfo=True)
    verdict = v.decide("api", bearer="opaque-token")
    assert verdict.allowed and verdict.source == "portal"
    assert _userinfo.LABEL in verdict.reason
    clock.advance(_userinfo.USERINFO_TTL - 0.5)
    assert v.cached("api", bearer="opaque-token") is not None
    clock.advance(0.5)
    assert v.cached("api", bearer="opaque-token") is None


def test_userinfo_candidates_are_the_saas_apps_the_targets_policies_name() -> None:
    graph = graph_from_export(handmade_export())
    assert [a.name for a in _userinfo.candidates(graph, graph.apps["api"])] == ["portal"]
    assert _userinfo.candidates(graph, graph.apps["reports"]) == []


def test_an_app_without_an_aud_or_type_in_the_state_never_grants() -> None:
    doc = handmade_export()
    res = app_resource(doc, "api")
    del res["outputs"]["type"]
    del res["inputs"]["type"]
    verdict = verifier(doc).decide("api", cf_access_token=KEY.mint(app_claims(AUD["front"])))
    assert not verdict.allowed
    assert "cannot read api in full" in verdict.reason



def test_refresh_gives_up_after_its_timeout_when_another_fetch_holds_on() -> None:
    client, _ = serving(jwks(KEY, OTHER), jwks(KEY))
    keys = KeySet("https://t/certs", client=client, clock=Clock(), timeout=0.2)
    keys.refresh()
    inside, release = threading.Event(), threading.Event()
    keys.on_change(lambda keyset, removed: (inside.set(), release.wait(5)))
    holder = threading.Thread(target=keys.refresh)  # its fetch drops OTHER; the listener holds the fetch open
    holder.start()
    try:
        assert inside.wait(5)
        assert keys.refresh() is False
    finally:
        release.set()
        holder.join(5)
    assert keys.kids == frozenset({KEY.kid})


@pytest.mark.parametrize("segment", ["YW!!!!Jj", "YW  Jj==", "YW\nJ", "Y.Jj"])
def test_a_segment_with_characters_outside_base64url_is_refused_not_skipped(segment: str) -> None:
    with pytest.raises(TokenRejected, match="the payload is not"):
        _jws.b64url_decode(segment, "payload")


@pytest.mark.parametrize("part", [0, 1, 2])
def test_a_malformed_segment_is_named(part: int) -> None:
    segments = KEY.mint(app_claims(AUD["front"])).split(".")
    segments[part] = "A"  # one character: never base64
    with pytest.raises(TokenRejected, match=f"the {('header', 'payload', 'signature')[part]} is not valid base64url"):
        _jws.parse(".".join(segments))


def slow_second_answer(first: Any, second: Any) -> tuple[httpx.Client, Any, Any, list[int]]:
    """A client answering `first` at once, then `second` only once `release` is set (or after 5 s); the list
    counts requests."""
    entered, release = threading.Event(), threading.Event()
    count: list[int] = []

    def answer(request: httpx.Request) -> httpx.Response:
        count.append(1)
        if len(count) == 1:
            return httpx.Response(200, json=first)
        entered.set()
        release.wait(5)
        return httpx.Response(second) if isinstance(second, int) else httpx.Response(200, json=second)

    return httpx.Client(transport=httpx.MockTransport(answer)), entered, release, count


def test_a_caller_with_keys_too_old_to_use_waits_for_the_fetch_in_flight() -> None:
    client, entered, release, _ = slow_second_answer(jwks(KEY), jwks(KEY))
    clock = Clock(1000.0)
    keys = KeySet("https://t/certs", client=client, clock=clock, ttl=10, cooldown=0, max_stale=100, timeout=3)
    keys.key(KEY.kid)
    clock.advance(200)
    holder = threading.Thread(target=keys.refresh)
    holder.start()
    try:
        assert entered.wait(5)
        threading.Timer(0.2, release.set).start()
        assert keys.key(KEY.kid).public_numbers() == KEY.public.public_numbers()  # fresh keys, not a refusal
    finally:
        release.set()
        holder.join(5)


@pytest.mark.parametrize("due", [False, True])
@pytest.mark.parametrize("answer", ["brings it", "does not", "fails"])
def test_an_unknown_kid_waits_for_the_fetch_in_flight_that_may_bring_it(due: bool, answer: str) -> None:
    brings_it = answer == "brings it"
    second = jwks(KEY, OTHER) if brings_it else jwks(KEY) if answer == "does not" else 503
    client, entered, release, requests = slow_second_answer(jwks(KEY), second)
    clock = Clock(1000.0)
    keys = KeySet("https://t/certs", client=client, clock=clock, ttl=60, cooldown=0, timeout=3)
    keys.key(KEY.kid)
    if due:
        clock.advance(61)  # past the TTL, far from max_stale: a caller does not wait for a TTL refresh
    holder = threading.Thread(target=keys.refresh)  # a rotation under way
    holder.start()
    try:
        assert entered.wait(5)
        threading.Timer(0.2, release.set).start()
        if brings_it:
            assert keys.key(OTHER.kid).public_numbers() == OTHER.public.public_numbers()
        else:
            with pytest.raises(KeysUnavailable, match="no key with kid 'mutants-other'"):
                keys.key(OTHER.kid)
    finally:
        release.set()
        holder.join(5)
    assert len(requests) == 2  # the caller used the fetch it waited for, and fetched nothing itself


# -- headers -----------------------------------------------------------------------------------------------
from linked_apps.verifier._headers import NO_TOKEN_REASON, token_from_header_items, token_from_headers  # noqa: E402


@pytest.mark.parametrize(("items", "read"), [
    ([("Cf-Access-Token", " t1 ")], {"cf_access_token": "t1"}),
    ([(b"CF-ACCESS-TOKEN", b"t1")], {"cf_access_token": "t1"}),
    ([(" cf-access-token ", ["t1"])], {"cf_access_token": "t1"}),
    ([("cf-access-token", bytearray(b"t1"))], {"cf_access_token": "t1"}),
    ([("Authorization", "Bearer  t2 ")], {"bearer": "t2"}),
    ([("authorization", "bEaReR t2")], {"bearer": "t2"}),
    ([("authorization", "Bearer t2"), ("cf-access-token", "t1")], {"cf_access_token": "t1"}),
    ([("authorization", ("Bearer t2", None))], {"bearer": "t2"}),
    ([("x-other", "Bearer t2"), (5, "x"), ("cf-access-token", None), ("authorization", "Bearer t2")], {"bearer": "t2"}),
])
def test_the_token_is_read_from_its_header_in_any_case_and_spelling(items: list, read: dict[str, str]) -> None:
    assert token_from_header_items(items) == (read, "")


@pytest.mark.parametrize(("items", "reason"), [
    ([], NO_TOKEN_REASON),
    ([("authorization", "Basic dXNlcg==")], NO_TOKEN_REASON),
    ([("authorization", "Bearer ")], NO_TOKEN_REASON),
    ([("authorization", "Bearer")], NO_TOKEN_REASON),
    ([("authorization", "")], NO_TOKEN_REASON),
    ([("cf-access-token", 5)], "the cf-access-token header is int, not text"),
    ([("Authorization", [b"Bearer a", 1.5])], "the authorization header is float, not text"),
    ([("cf-access-token", "a"), ("CF-Access-Token", "a")], "the request carries 2 cf-access-token headers; send one"),
    ([("authorization", ["Bearer a", "Bearer b", "Bearer c"])], "the request carries 3 authorization headers; send one"),
])
def test_no_token_a_token_of_another_type_or_a_repeated_one_is_a_deny_reason(items: list, reason: str) -> None:
    assert token_from_header_items(items) == (None, reason)


def test_a_repeated_header_other_than_the_token_headers_is_ignored() -> None:
    assert token_from_header_items([("x", "1"), ("x", "2"), ("cf-access-token", "t")]) == ({"cf_access_token": "t"}, "")


def test_token_from_headers_reads_lower_case_names_only() -> None:
    assert token_from_headers({"cf-access-token": ""}) == {"cf_access_token": ""}
    assert token_from_headers({"authorization": " Bearer x"}) == {"bearer": "x"}
    assert token_from_headers({"Authorization": "Bearer x"}) is None
    assert token_from_headers({}) is None


# -- bounded GETs: encodings, workers ---------------------------------------------------------------------
import gzip  # noqa: E402
import zlib  # noqa: E402

from linked_apps.verifier import _http  # noqa: E402


class Chunks(httpx.SyncByteStream):
    """A body that arrives in pieces, as from a socket (the MockTransport then streams it, undecoded)."""

    def __init__(self, *chunks: bytes) -> None:
        self.chunks = chunks

    def __iter__(self) -> Any:
        yield from self.chunks


def streaming(body: bytes, encoding: str | None, *, pieces: int = 3) -> httpx.Client:
    size = max(1, len(body) // pieces + 1)
    chunks = [body[i:i + size] for i in range(0, len(body), size)] or [b""]
    headers = {"content-encoding": encoding} if encoding is not None else {}
    return httpx.Client(transport=httpx.MockTransport(
        lambda request: httpx.Response(200, headers=headers, stream=Chunks(*chunks))))


@pytest.mark.parametrize(("encoding", "pack"), [("gzip", gzip.compress), ("x-gzip", gzip.compress),
                                                ("deflate", zlib.compress), (" GZIP ", gzip.compress),
                                                ("identity", bytes), ("", bytes), (None, bytes)])
def test_a_compressed_body_is_inflated_up_to_exactly_the_cap(encoding: str | None, pack: Any) -> None:
    cap = 5000
    body = b"{" + b" " * (cap - 2) + b"}"
    assert get("https://t/x", timeout=2, max_body=cap, client=streaming(pack(body), encoding)) == (200, body)
    with pytest.raises(FetchFailed, match=f"larger than {cap} bytes"):
        get("https://t/x", timeout=2, max_body=cap, client=streaming(pack(body + b" "), encoding))


def test_one_small_chunk_that_inflates_past_the_cap_is_refused() -> None:
    bomb = gzip.compress(b"\0" * 10_000_000)
    with pytest.raises(FetchFailed, match="larger than 1000 bytes"):
        get("https://t/x", timeout=2, max_body=1000, client=streaming(bomb, "gzip", pieces=1))


class CountingInflate:
    """zlib's decompressor, counting what it hands out: the inflated bytes held at once are the memory cost."""

    real = staticmethod(zlib.decompressobj)

    def __init__(self, wbits: int) -> None:
        self.inner = self.real(wbits)
        self.out = 0
        self.asked: list[int] = []

    def decompress(self, data: bytes, max_length: int = 0) -> bytes:
        self.asked.append(max_length)
        out = self.inner.decompress(data, max_length)
        self.out += len(out)
        return out

    def flush(self, *args: int) -> bytes:
        out = self.inner.flush(*args)
        self.out += len(out)
        return out

    @property
    def unconsumed_tail(self) -> bytes:
        return self.inner.unconsumed_tail


@pytest.mark.parametrize("pieces", [1, 3, 40])
def test_a_bomb_is_never_inflated_past_one_byte_over_the_cap(monkeypatch: pytest.MonkeyPatch, pieces: int) -> None:
    made: list[CountingInflate] = []
    monkeypatch.setattr(_http.zlib, "decompressobj", lambda wbits: made.append(CountingInflate(wbits)) or made[-1])
    bomb = gzip.compress(b"\0" * 10_000_000)
    with pytest.raises(FetchFailed, match="larger than 1000 bytes"):
        get("https://t/x", timeout=5, max_body=1000, client=streaming(bomb, "gzip", pieces=pieces))
    assert made[0].out == 1001  # the byte that proves the body is over the cap, and not one more
    assert 0 not in made[0].asked  # zlib reads a max_length of 0 as "no limit"


def test_an_answer_just_under_the_cap_is_inflated_in_steps_never_past_it(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[CountingInflate] = []
    monkeypatch.setattr(_http.zlib, "decompressobj", lambda wbits: made.append(CountingInflate(wbits)) or made[-1])
    body = b"[" + b"0," * 498 + b"0] "
    assert len(body) == 1000
    assert get("https://t/x", timeout=5, max_body=1000, client=streaming(gzip.compress(body), "gzip", pieces=7)) \
        == (200, body)
    assert made[0].out == 1000 and all(0 < asked <= 1001 for asked in made[0].asked)


def test_a_chunk_arriving_exactly_at_the_deadline_is_read_and_one_after_it_is_not(
        monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr(_http.time, "monotonic", lambda: now[0])
    client = streaming(b"{}", None)
    assert _http._get("https://t/x", client, 100.0, 2, 10, {}) == (200, b"{}")
    now[0] = 100.001
    with pytest.raises(FetchFailed, match="no complete answer within 2 s"):
        _http._get("https://t/x", client, 100.0, 2, 10, {})


def test_the_fetch_runs_in_a_named_daemon_thread() -> None:
    # daemon: a worker left behind by its caller's deadline never holds the interpreter's exit; the name shows
    # in thread dumps whose threads those are.
    seen: list[threading.Thread] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(threading.current_thread())
        return httpx.Response(200, content=b"{}")

    get("https://t/x", timeout=2, max_body=10, client=httpx.Client(transport=httpx.MockTransport(answer)))
    assert seen[0] is not threading.main_thread()
    assert seen[0].name == "linked-apps-fetch" and seen[0].daemon is True


def test_a_long_error_is_cut_at_200_characters() -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise RuntimeError("y" * 500)

    with pytest.raises(FetchFailed) as caught:
        get("https://t/x", timeout=2, max_body=100, client=httpx.Client(transport=httpx.MockTransport(fail)))
    assert str(caught.value) == "y" * 200


@pytest.mark.parametrize(("encoding", "why"), [("br", "br-encoded"), ("compress", "compress-encoded"),
                                               ("gzip, gzip", "gzip, gzip-encoded")])
def test_an_encoding_this_client_does_not_read_is_refused(encoding: str, why: str) -> None:
    with pytest.raises(FetchFailed, match=why):
        get("https://t/x", timeout=2, max_body=100, client=streaming(b"{}", encoding))


def test_a_corrupt_compressed_body_is_named() -> None:
    with pytest.raises(FetchFailed, match="^the compressed answer is corrupt$"):
        get("https://t/x", timeout=2, max_body=100, client=streaming(b"not gzip at all", "gzip"))


@pytest.mark.parametrize(("error", "why"), [(httpx.ConnectError("refused"), "cannot connect"),
                                            (httpx.ReadTimeout("slow"), "timed out"),
                                            (RuntimeError(""), "RuntimeError"), (RuntimeError("boom"), "boom")])
def test_a_failed_fetch_says_why_in_a_few_words(error: Exception, why: str) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise error

    with pytest.raises(FetchFailed, match=f"^{why}$"):
        get("https://t/x", timeout=2, max_body=100, client=httpx.Client(transport=httpx.MockTransport(fail)))


def test_the_status_and_the_headers_asked_for_are_passed_through() -> None:
    seen: dict[str, str] = {}

    def answer(request: httpx.Request) -> httpx.Response:
        seen.update(request.headers)
        return httpx.Response(404, content=b"gone")

    assert get("https://t/x", timeout=2, max_body=100, headers={"accept": "application/json"},
               client=httpx.Client(transport=httpx.MockTransport(answer))) == (404, b"gone")
    assert seen["accept"] == "application/json" and seen["accept-encoding"] == "identity"


def test_at_most_eight_fetches_run_at_once_and_a_ninth_fails_at_once() -> None:
    entered = threading.Semaphore(0)
    release = threading.Event()

    def answer(request: httpx.Request) -> httpx.Response:
        entered.release()
        release.wait(10)
        return httpx.Response(200, content=b"{}")

    client = httpx.Client(transport=httpx.MockTransport(answer))
    answers: list[tuple[int, bytes]] = []
    callers = [threading.Thread(target=lambda: answers.append(get("https://t/x", timeout=10, max_body=10,
                                                                  client=client)))
               for _ in range(_http.MAX_WORKERS)]
    try:
        for caller in callers:
            caller.start()
        for _ in callers:
            assert entered.acquire(timeout=10)
        with pytest.raises(FetchFailed, match="8 fetches are still running"):
            get("https://t/x", timeout=10, max_body=10, client=client)
    finally:
        release.set()
        for caller in callers:
            caller.join(10)
    assert answers == [(200, b"{}")] * _http.MAX_WORKERS
    assert get("https://t/x", timeout=2, max_body=10, client=client) == (200, b"{}")


def test_only_a_loopback_fetch_ignores_the_proxy_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_http, "_CLIENTS", {})  # the process's pooled clients, made afresh for this test
    assert _http.client_for("http://127.0.0.1:1/certs").trust_env is False
    assert _http.client_for("http://localhost/certs") is _http.client_for("http://127.0.0.1:1/certs")
    assert _http.client_for("https://acme.cloudflareaccess.com/certs").trust_env is True


@pytest.mark.parametrize(("length", "shown"), [(64, "k" * 64), (65, "k" * 64 + "...")])
def test_an_unknown_kid_is_shown_up_to_64_characters(length: int, shown: str) -> None:
    client, _ = serving(jwks(KEY))
    keys = KeySet("https://t/certs", client=client, clock=Clock())
    with pytest.raises(KeysUnavailable) as caught:
        keys.key("k" * length)
    assert f"no key with kid {shown!r} at https://t/certs (the key set has 1 key(s)" in str(caught.value)


# -- the verifier's own choices ----------------------------------------------------------------------------
from linked_apps.errors import ConfigError  # noqa: E402


@pytest.mark.parametrize("team", [TEAM, f"https://{TEAM}", f"https://{TEAM}/", f" {TEAM.upper()} "])
def test_a_pasted_issuer_is_forgiven_as_a_team_domain(team: str) -> None:
    v = Verifier(graph_from_export(handmade_export()), team_domain=team)
    assert v.issuer == ISSUER
    assert v.access_url == ISSUER
    assert v.certs.url == f"{ISSUER}/cdn-cgi/access/certs"


@pytest.mark.parametrize("team", ["http://acme.cloudflareaccess.com", "acme", "acme.com/x"])
def test_a_team_domain_that_is_not_a_host_is_a_config_error(team: str) -> None:
    with pytest.raises(ConfigError, match="is not a host name"):
        Verifier(graph_from_export(handmade_export()), team_domain=team)


def test_the_team_domain_comes_from_the_state_when_not_given() -> None:
    assert Verifier(graph_from_export(handmade_export())).issuer == ISSUER


@pytest.mark.parametrize(("url", "ok"), [("https://mirror.example.com/", True), ("http://127.0.0.1:9/", True),
                                         ("http://localhost:9", True), ("http://mirror.example.com", False),
                                         ("ftp://127.0.0.1", False)])
def test_keys_come_over_https_or_plain_http_from_this_machine_only(url: str, ok: bool) -> None:
    if ok:
        v = Verifier(graph_from_export(handmade_export()), access_url=url)
        assert v.access_url == url.rstrip("/")
        assert v.certs.url == url.rstrip("/") + "/cdn-cgi/access/certs"
        assert v.issuer == ISSUER  # the issuer stays the team domain
    else:
        with pytest.raises(ConfigError, match="must start with https://"):
            Verifier(graph_from_export(handmade_export()), access_url=url)


def test_headers_that_cannot_be_read_are_a_deny() -> None:
    class Broken(dict):
        def items(self) -> Any:
            raise RuntimeError("no")

    verdict = verifier().decide_headers("api", Broken())
    assert not verdict.allowed
    assert verdict.reason == "the headers cannot be read (RuntimeError); failing closed"


def test_decide_headers_gives_the_flow_its_token_came_in() -> None:
    v = verifier()
    token = KEY.mint(app_claims(AUD["front"]))
    assert v.decide_headers("api", {"Cf-Access-Token": token}).allowed
    bearer = KEY.mint(saas_claims(PORTAL_CLIENT_ID))
    assert v.decide_headers("api", {"authorization": f"Bearer {bearer}"}).allowed
    none = v.decide_headers("api", {})
    assert (none.allowed, none.reason, none.flow) == (False, NO_TOKEN_REASON, None)


@pytest.mark.parametrize("tokens", [{}, {"cf_access_token": "a", "bearer": "b"}])
def test_exactly_one_token_is_decided(tokens: dict[str, str]) -> None:
    verdict = verifier().decide("api", **tokens)
    assert verdict.reason == "give exactly one token: Cf-Access-Token or Authorization: Bearer"


def test_an_internal_error_is_a_deny_naming_its_type() -> None:
    v = verifier()
    v.graph = None  # type: ignore[assignment]
    verdict = v.decide("api", cf_access_token="a.b.c")
    assert verdict.reason == "internal error while verifying (AttributeError); failing closed"


def test_a_token_that_is_not_a_string_is_malformed() -> None:
    verdict = verifier().decide("api", cf_access_token=b"a.b.c")  # type: ignore[arg-type]
    assert verdict.reason == "malformed token: not a string"
    assert verifier().cached("api", cf_access_token=b"a.b.c") is None  # type: ignore[arg-type]


def test_each_flow_checks_its_own_issuer_and_type() -> None:
    v = verifier()
    saas_as_cf = KEY.mint(saas_claims(PORTAL_CLIENT_ID, aud=AUD["front"]))
    assert "issuer" in v.decide("api", cf_access_token=saas_as_cf).reason
    app_as_bearer = KEY.mint(app_claims(AUD["front"]))
    assert "is not the OIDC issuer of a SaaS app" in v.decide("api", bearer=app_as_bearer).reason
    typeless = KEY.mint(saas_claims(PORTAL_CLIENT_ID, type="org"))
    assert v.decide("api", bearer=typeless).allowed  # SaaS ID tokens carry no `type` to check


def test_an_unknown_target_is_a_deny_naming_it() -> None:
    verdict = verifier().decide("nope", cf_access_token=KEY.mint(app_claims(AUD["front"])))
    assert not verdict.allowed and "nope" in verdict.reason and verdict.target is None


# -- the verifier's memos: each does its job, and each is bounded ----------------------------------------------
from linked_apps.verifier import _verifier as _verifier_module  # noqa: E402


def counting(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str) -> list[Any]:
    """Count calls of owner.name (a module function or a method), still calling it."""
    calls: list[Any] = []
    real = getattr(owner, name)

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, spy)
    return calls


def test_a_token_seen_before_is_not_verified_again_for_another_target(monkeypatch: pytest.MonkeyPatch) -> None:
    v = verifier()
    checked = counting(monkeypatch, _verifier_module._jws, "verify_signature")
    claims = app_claims(AUD["front"])
    token = KEY.mint(claims)
    assert v.decide("api", cf_access_token=token).expires == claims["exp"]
    refused = v.decide("reports", cf_access_token=token)
    assert not refused.allowed and refused.expires == claims["exp"] and refused.identity["email"] == "ann@acme.com"
    assert len(checked) == 1


def test_a_header_once_verified_is_not_decoded_again(monkeypatch: pytest.MonkeyPatch) -> None:
    v = verifier()
    headers = counting(monkeypatch, _jws, "_check_header")
    for jti in ("1", "2", "3"):
        assert v.decide("api", cf_access_token=KEY.mint(app_claims(AUD["front"], jti=jti))).allowed
    assert len(headers) == 1


def test_the_grant_for_one_source_target_and_flow_is_worked_out_once(monkeypatch: pytest.MonkeyPatch) -> None:
    v = verifier()
    grants = counting(monkeypatch, v, "_grant")
    found = counting(monkeypatch, _verifier_module, "sources_by_aud")
    for jti in ("1", "2", "3"):
        assert v.decide("api", cf_access_token=KEY.mint(app_claims(AUD["front"], jti=jti))).allowed
    assert len(grants) == 1 and len(found) == 1
    assert v.decide("reports", cf_access_token=KEY.mint(app_claims(AUD["front"], jti="4"))).allowed is False
    assert len(grants) == 2 and len(found) == 1


def test_a_target_is_looked_up_in_the_graph_once(monkeypatch: pytest.MonkeyPatch) -> None:
    v = verifier()
    finds = counting(monkeypatch, v.graph, "find")
    assert v.target("api") is v.target("api") is v.graph.apps["api"]
    assert len(finds) == 1


def test_the_verifiers_memos_are_bounded() -> None:
    v = verifier()
    for i in range(_verifier_module._MAX_VERIFIED_HEADERS + 3):
        assert v.decide("api", cf_access_token=KEY.mint(app_claims(AUD["front"]), headers={"n": i})).allowed
    assert len(v._verified_headers) == _verifier_module._MAX_VERIFIED_HEADERS
    tags = [f"{i:064x}" for i in range(_verifier_module._MAX_VERIFIED_HEADERS + 3)]
    for tag in tags:
        assert v.decide("api", cf_access_token=KEY.mint(app_claims([AUD["front"], tag]))).allowed
    assert len(v._sources) == _verifier_module._MAX_VERIFIED_HEADERS
    for i in range(1030):  # 1030 spellings of one app's domain, each a reference of its own
        assert v.target(" " * i + "api.acme.com").name == "api"
    assert len(v._targets) == 1024


# -- the decision: what the target's trust must be read in full for ----------------------------------------
def policy_outputs(doc: dict[str, Any], pid: str) -> dict[str, Any]:
    return app_resource(doc, pid)["outputs"]


@pytest.mark.parametrize(("decision", "blocks"), [("allow", False), ("deny", False), ("bypass", False),
                                                  ("non_identity", True)])
def test_an_unreadable_policy_blocks_only_when_it_could_bear_on_service_auth(decision: str, blocks: bool) -> None:
    doc = handmade_export()
    policy = policy_outputs(doc, "p-excl")
    policy["decision"] = decision
    policy["requires"] = [{"fooBar": {}}]  # unknown selector: unreadable
    verdict = verifier(doc).decide("api", cf_access_token=KEY.mint(app_claims(AUD["front"])))
    assert verdict.allowed is not blocks
    if blocks:
        at = next(i for i, r in enumerate(doc["deployment"]["resources"]) if r.get("outputs") is policy)
        assert verdict.reason == ("cannot read policy 'batch but not intruder' attached to api: deployment."
                                  f"resources[{at}].outputs.requires[0]: unknown selector `fooBar` in require; the "
                                  "verifier grants only on trust it read in full")


def test_a_policy_with_an_unknown_decision_blocks_even_if_it_reads_otherwise() -> None:
    doc = handmade_export()
    policy_outputs(doc, "p-excl")["decision"] = "audit"
    verdict = verifier(doc).decide("api", cf_access_token=KEY.mint(app_claims(AUD["front"])))
    assert not verdict.allowed
    assert verdict.reason.startswith("cannot read policy 'batch but not intruder' attached to api:")


def test_a_target_with_several_problems_names_the_first_and_counts_the_rest() -> None:
    doc = handmade_export()
    api = app_resource(doc, "api")["outputs"]
    api["policies"][1] = "p-excl"
    api["policies"][2] = 7
    verdict = verifier(doc).decide("api", cf_access_token=KEY.mint(app_claims(AUD["front"])))
    assert not verdict.allowed
    assert " (and 1 more); the verifier grants only on trust it read in full" in verdict.reason
    assert verdict.reason.startswith("cannot read api in full: ")
    api["policies"][2] = {"id": "p-excl", "precedence": 3}
    one = verifier(doc).decide("api", cf_access_token=KEY.mint(app_claims(AUD["front"])))
    assert "more)" not in one.reason


def test_a_self_hosted_app_with_a_client_id_is_no_saas_source() -> None:
    doc = handmade_export()
    app_resource(doc, "plain")["outputs"]["saasApp"] = {"clientId": "plain-client"}
    token = KEY.mint(saas_claims("plain-client"))
    assert "is not the OIDC issuer of a SaaS app in the state" in verifier(doc).decide("api", bearer=token).reason


def test_a_client_id_two_apps_share_names_no_sender() -> None:
    doc = handmade_export()
    res = app_resource(doc, "plain")["outputs"]
    res.update(type="saas", saasApp={"clientId": PORTAL_CLIENT_ID})
    verdict = verifier(doc).decide("api", bearer=KEY.mint(saas_claims(PORTAL_CLIENT_ID)))
    assert not verdict.allowed
    assert f"the client_id {PORTAL_CLIENT_ID!r} belongs to 2 apps in the state (plain, portal)" in verdict.reason


def test_an_aud_two_apps_share_names_both_apps() -> None:
    doc = handmade_export()
    app_resource(doc, "plain")["outputs"]["aud"] = AUD["front"]
    verdict = verifier(doc).decide("api", cf_access_token=KEY.mint(app_claims(AUD["front"])))
    assert not verdict.allowed
    assert f"the AUD tag {AUD['front'][:16]}... belongs to 2 apps in the state (front, plain)" in verdict.reason


def test_no_policy_naming_the_source_anywhere_is_said_so() -> None:
    verdict = verifier().decide("api", cf_access_token=KEY.mint(app_claims(AUD["plain"])))
    assert verdict.reason == "no policy attached to api has a linked_app_token rule for plain"
    assert verdict.allowed is False and verdict.source == "plain" and verdict.policy is None


def test_a_policy_naming_the_source_only_in_require_or_exclude_does_not_count_as_naming_it_elsewhere() -> None:
    doc = handmade_export()
    policy_outputs(doc, "p-orphan")["includes"] = [{"everyone": {}}]
    policy_outputs(doc, "p-orphan")["excludes"] = [{"linkedAppToken": {"appUid": UID["plain"]}}]
    verdict = verifier(doc).decide("api", cf_access_token=KEY.mint(app_claims(AUD["plain"])))
    assert verdict.reason == "no policy attached to api has a linked_app_token rule for plain"


def test_an_unattached_policy_is_named_before_one_attached_elsewhere() -> None:
    doc = handmade_export()
    policy_outputs(doc, "p-orphan")["includes"].append({"linkedAppToken": {"appUid": UID["front"]}})
    verdict = verifier(doc).decide("plain", cf_access_token=KEY.mint(app_claims(AUD["front"])))
    assert verdict.policy == "intruder (attached nowhere)"
    assert verdict.reason == ("policy 'intruder (attached nowhere)' names front but is attached to no app; a policy "
                              "grants only through the app's policies list")


def test_the_first_policy_that_names_the_source_but_refuses_it_is_the_one_named() -> None:
    doc = handmade_export()
    api = app_resource(doc, "api")["outputs"]
    api["policies"] = [{"id": "p-req", "precedence": 1}, {"id": "p-excl", "precedence": 2}]
    verdict = verifier(doc).decide("api", cf_access_token=KEY.mint(app_claims(AUD["front"])))
    assert verdict.policy == "front or batch, batch required"
    intruder = verifier(doc).decide("api", cf_access_token=KEY.mint(app_claims(AUD["intruder"])))
    assert intruder.policy == "batch but not intruder"
    assert "names intruder but does not admit it: an exclude rule names the source app" in intruder.reason


def test_the_key_fetch_asks_for_json() -> None:
    seen: list[str | None] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("accept"))
        return httpx.Response(200, json=jwks(KEY))

    KeySet("https://t/certs", client=httpx.Client(transport=httpx.MockTransport(answer)), clock=Clock()).key(KEY.kid)
    assert seen == ["application/json"]


@pytest.mark.parametrize(("option", "message"), [({"cache_size": 2.0}, "cache_size must be an integer, not float"),
                                                 ({"cache_size": True}, "cache_size must be an integer, not bool"),
                                                 ({"leeway": "1"}, "leeway must be a number, not str"),
                                                 ({"key_ttl": None}, "key_ttl must be a number, not NoneType"),
                                                 ({"leeway": 301}, "leeway must be between 0 and 300, not 301")])
def test_an_option_of_the_wrong_kind_is_named_with_what_it_must_be(option: dict[str, Any], message: str) -> None:
    from linked_apps.errors import ConfigError

    with pytest.raises(ConfigError) as caught:
        verifier(**option)
    assert message in str(caught.value)


# -- grant(), directly ------------------------------------------------------------------------------------
from linked_apps.model.graph import TrustGraph  # noqa: E402
from linked_apps.verifier._decide import grant, sources_by_aud  # noqa: E402


def handmade_graph() -> TrustGraph:
    return graph_from_export(handmade_export())


def test_sources_without_uid_are_refused_naming_them_all() -> None:
    graph = handmade_graph()
    result = grant(graph, graph.apps["api"], [App("a", "self_hosted"), App("b", "self_hosted")])
    assert (result.allowed, result.reason, result.source, result.policy) == (
        False, "a, b has no uid in the state, so no linked_app_token rule can name it", "a", None)
    nobody = grant(graph, graph.apps["api"], [])
    assert (nobody.allowed, nobody.reason, nobody.source) == (
        False, "? has no uid in the state, so no linked_app_token rule can name it", None)


def test_every_refusal_is_false_and_names_the_first_source() -> None:
    graph = handmade_graph()
    front, intruder = graph.apps["front"], graph.apps["intruder"]
    saas = grant(graph, graph.apps["portal"], [front, intruder])
    assert (saas.allowed, saas.source) == (False, "front")
    assert saas.reason == ("portal is a saas app; only a self-hosted app can grant access through a "
                           "linked_app_token rule")
    named = grant(graph, graph.apps["reports"], [front])
    assert named.allowed is False and named.source == "front"
    none = grant(graph, graph.apps["plain"], [graph.apps["plain"], front])
    assert none.allowed is False and none.source == "plain"
    assert none.reason == ("policy 'front or batch, batch required' names plain, front but is attached to reports, "
                           "not to plain; a policy grants only through the app's policies list")


def test_an_unreadable_target_refuses_with_false_naming_the_first_source() -> None:
    doc = handmade_export()
    app_resource(doc, "api")["outputs"]["policies"][0] = "inline?"
    graph = graph_from_export(doc)
    result = grant(graph, graph.apps["api"], [graph.apps["front"], graph.apps["batch"]])
    assert (result.allowed, result.source) == (False, "front")
    assert result.reason.endswith("; the verifier grants only on trust it read in full")


def test_an_aud_shared_by_many_apps_names_ten_of_them() -> None:
    apps = [App(f"app{i:02d}", "self_hosted", uid=f"00000000-0000-4000-8000-{i:012d}", aud="ab" * 32)
            for i in range(11)]
    with pytest.raises(TokenRejected) as caught:
        sources_by_aud(TrustGraph(apps, []), ["ab" * 32])
    names = ", ".join(f"app{i:02d}" for i in range(10))
    assert str(caught.value) == (f"the AUD tag {'ab' * 8}... belongs to 11 apps in the state ({names}), so which app "
                                 "the token was issued for is ambiguous; fix the state")


def test_a_policy_attached_to_several_other_apps_names_them_all() -> None:
    doc = handmade_export()
    app_resource(doc, "batch")["outputs"]["policies"] = [{"id": "p-req", "precedence": 1}]
    verdict = verifier(doc).decide("plain", cf_access_token=KEY.mint(app_claims(AUD["front"])))
    assert verdict.reason == ("policy 'front or batch, batch required' names front but is attached to batch, "
                              "reports, not to plain; a policy grants only through the app's policies list")


@pytest.mark.parametrize("iss", [5, None, "x" * len(f"{ISSUER}/cdn-cgi/access/sso/oidc/") + PORTAL_CLIENT_ID])
def test_a_bearer_issuer_that_is_not_a_saas_issuer_is_named_so(iss: Any) -> None:
    token = raw_token({"alg": "RS256", "kid": KEY.kid}, saas_claims(PORTAL_CLIENT_ID, iss=iss), b"s" * 256)
    verdict = verifier().decide("api", bearer=token)
    assert verdict.allowed is False
    assert "is not the OIDC issuer of a SaaS app in the state" in verdict.reason


def test_a_client_id_with_a_slash_never_names_a_saas_source() -> None:
    doc = handmade_export()
    app_resource(doc, "portal")["outputs"]["saasApp"]["clientId"] = "c1/x"
    token = KEY.mint(saas_claims("c1/x"))
    assert "is not the OIDC issuer of a SaaS app in the state" in verifier(doc).decide("api", bearer=token).reason


def test_a_long_shared_client_id_is_shown_cut_at_40() -> None:
    doc = handmade_export()
    long_id = "c" * 45
    app_resource(doc, "portal")["outputs"]["saasApp"]["clientId"] = long_id
    app_resource(doc, "plain")["outputs"].update(type="saas", saasApp={"clientId": long_id})
    verdict = verifier(doc).decide("api", bearer=KEY.mint(saas_claims(long_id)))
    assert f"the client_id {'c' * 40!r} belongs to 2 apps" in verdict.reason


@pytest.mark.parametrize(("iss", "shown"), [("https://evil.example.com", "'https://evil.example.com'"),
                                            (5, "'int'"), (None, "'NoneType'"), ("e" * 130, repr("e" * 120))])
def test_a_wrong_issuer_is_shown_cut_at_120_or_by_its_type(iss: Any, shown: str) -> None:
    with pytest.raises(TokenRejected) as caught:
        _claims.check(claims(iss=iss), issuer=ISSUER, now=NOW)
    assert str(caught.value) == f"issuer {shown} is not {ISSUER!r} (the issuer must match exactly)"


# -- verdicts carry what was verified ----------------------------------------------------------------------
def test_a_sender_refusal_carries_the_verified_identity_flow_and_expiry() -> None:
    claims_sent = app_claims(AUD["plain"], now=NOW)
    verdict = verifier(with_app("kiosk", "ssh"), clock=Clock(NOW)).decide("api", cf_access_token=KEY.mint(claims_sent))
    assert (verdict.allowed, verdict.target, verdict.source, verdict.policy, verdict.flow, verdict.expires) == (
        False, "api", "kiosk", None, "cf-access-token", claims_sent["exp"])
    assert dict(verdict.identity)["email"] == "ann@acme.com"
    assert verdict.as_dict()["identity"]["email"] == "ann@acme.com"


def test_an_allowed_verdict_carries_the_expiry_of_its_token_each_time() -> None:
    v = verifier(clock=Clock(NOW))
    sent = app_claims(AUD["front"], now=NOW)
    token = KEY.mint(sent)
    first = v.decide("api", cf_access_token=token)
    assert first.allowed and first.expires == sent["exp"] and first.flow == "cf-access-token"
    other = KEY.mint(app_claims(AUD["front"], now=NOW, ttl=900))
    assert v.decide("api", cf_access_token=other).expires == NOW + 900  # the grant is shared, the expiry is not


def test_a_saas_apps_keys_are_fetched_once_for_all_its_tokens() -> None:
    paths: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.path)
        return httpx.Response(200, json=jwks(KEY))

    v = Verifier(graph_from_export(handmade_export()), team_domain=TEAM,
                 client=httpx.Client(transport=httpx.MockTransport(answer)), clock=Clock())
    for i in range(3):
        assert v.decide("api", bearer=KEY.mint(saas_claims(PORTAL_CLIENT_ID, jti=str(i)))).allowed
    assert paths == [f"/cdn-cgi/access/sso/oidc/{PORTAL_CLIENT_ID}/jwks"]


def test_a_bearer_from_no_saas_app_is_refused_naming_its_issuer() -> None:
    token = KEY.mint(saas_claims(PORTAL_CLIENT_ID, iss="https://evil.example.com"))
    assert verifier().decide("api", bearer=token).reason == (
        f"issuer 'https://evil.example.com' is not the OIDC issuer of a SaaS app in the state (expected "
        f"{ISSUER}/cdn-cgi/access/sso/oidc/<client_id>)")


@pytest.mark.parametrize("token", [["a.b.c"], {"a": 1}, 5])
def test_cached_never_raises_on_a_token_that_is_not_a_string(token: Any) -> None:
    v = verifier()
    assert v.cached("api", cf_access_token=token) is None
    assert v.cached("api", bearer=token) is None


# -- userinfo: who is asked, and what an answer means ------------------------------------------------------
def test_only_saas_apps_with_a_client_id_are_asked() -> None:
    doc = handmade_export()
    app_resource(doc, "front")["outputs"]["saasApp"] = {"clientId": "front-client"}  # self-hosted: not asked
    app_resource(doc, "batch")["outputs"]["type"] = "saas"  # SaaS without a client id: cannot be asked
    graph = graph_from_export(doc)
    assert [a.name for a in _userinfo.candidates(graph, graph.apps["api"])] == ["portal"]


@pytest.mark.parametrize("status", [401, 403])
def test_a_refusal_by_every_endpoint_is_no_error_but_a_deny(status: int) -> None:
    with pytest.raises(TokenRejected) as caught:
        _userinfo.ask("t", saas_apps(2), "https://t", client_answering(b"{}", status), 2)
    assert str(caught.value) == ("opaque bearer token: the userinfo endpoint of no SaaS app the target trusts "
                                 f"(s00, s01) accepted it ({_userinfo.LABEL})")


def test_an_endpoint_that_cannot_be_reached_is_an_error_named() -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    with pytest.raises(TokenRejected) as caught:
        _userinfo.ask("t", saas_apps(1), "https://t", httpx.Client(transport=httpx.MockTransport(fail)), 2)
    assert "; errors: s00: cannot connect (" in str(caught.value)


def test_two_acceptances_are_ambiguous_naming_both() -> None:
    with pytest.raises(TokenRejected) as caught:
        _userinfo.ask("t", saas_apps(2), "https://t", client_answering(b'{"sub": "ann"}'), 2)
    assert str(caught.value).startswith("opaque bearer token accepted by 2 SaaS apps' userinfo endpoints (s00, s01)")


def test_the_userinfo_request_carries_the_token_to_the_apps_own_endpoint() -> None:
    seen: list[tuple[str, str | None, str | None]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append((str(request.url), request.headers.get("authorization"), request.headers.get("accept")))
        return httpx.Response(200, json={"sub": "ann", "email": "ann@acme.com"})

    app, claims_back = _userinfo.ask("tok", saas_apps(1), "https://t", httpx.Client(transport=httpx.MockTransport(answer)), 2)
    assert app.name == "s00" and claims_back == {"sub": "ann", "email": "ann@acme.com"}
    assert seen == [("https://t/cdn-cgi/access/sso/oidc/c0/userinfo", "Bearer tok", "application/json")]


# -- the verifier: every deny is False, and options reach the key sets ---------------------------------------
def test_the_verifiers_leeway_is_the_one_applied() -> None:
    clock = Clock(NOW)
    token = KEY.mint(app_claims(AUD["front"], now=NOW - 610, ttl=600))  # expired 10 s ago
    assert verifier(clock=clock, leeway=30).decide("api", cf_access_token=token).allowed
    strict = verifier(clock=clock, leeway=0).decide("api", cf_access_token=token)
    assert strict.allowed is False and "expired 10 s ago" in strict.reason


def test_key_options_reach_the_key_sets() -> None:
    v = verifier(key_ttl=120, key_cooldown=5, key_max_stale=3600, fetch_timeout=1.5)
    assert (v.certs.ttl, v.certs.cooldown, v.certs.max_stale, v.certs.timeout) == (120, 5, 3600, 1.5)
    for option in ("key_cooldown", "key_max_stale"):
        with pytest.raises(ConfigError, match=option):
            verifier(**{option: -1})


def test_a_trailing_capital_x_is_part_of_the_host() -> None:
    v = Verifier(graph_from_export(handmade_export()), team_domain="acme.cloudflareaccess.boX",
                 access_url="https://mirror.example.coX/")
    assert v.issuer == "https://acme.cloudflareaccess.box"
    assert v.access_url == "https://mirror.example.coX"


@pytest.mark.parametrize("call", [
    lambda v: v.decide("api"),
    lambda v: v.decide_headers("api", type("Broken", (dict,), {"items": lambda self: 1 / 0})()),
    lambda v: v.decide("nope", cf_access_token="a.b.c"),
    lambda v: v.decide("api", cf_access_token="a.b.c"),
])
def test_every_deny_is_false_not_merely_falsy(call: Any) -> None:
    assert call(verifier()).allowed is False


def test_an_internal_error_deny_is_false() -> None:
    v = verifier()
    v.graph = None  # type: ignore[assignment]
    assert v.decide("api", cf_access_token="a.b.c").allowed is False


def test_a_rejected_token_names_the_target_and_the_flow() -> None:
    verdict = verifier().decide("api", cf_access_token="a.b.c")
    assert (verdict.allowed, verdict.target, verdict.flow) == (False, "api", "cf-access-token")
    unknown = verifier().decide("nope", bearer="a.b.c")
    assert (unknown.allowed, unknown.target, unknown.flow) == (False, None, "bearer")


@pytest.mark.parametrize(("iss", "shown"), [(5, "'int'"), ("https://e.example/" + "e" * 120,
                                                           repr(("https://e.example/" + "e" * 120)[:120]))])
def test_a_bearer_issuer_is_shown_cut_at_120_or_by_its_type(iss: Any, shown: str) -> None:
    token = raw_token({"alg": "RS256", "kid": KEY.kid}, saas_claims(PORTAL_CLIENT_ID, iss=iss), b"s" * 256)
    assert verifier().decide("api", bearer=token).reason == (
        f"issuer {shown} is not the OIDC issuer of a SaaS app in the state (expected "
        f"{ISSUER}/cdn-cgi/access/sso/oidc/<client_id>)")


def test_a_missing_value_before_the_token_in_a_header_list_is_skipped() -> None:
    assert token_from_header_items([("authorization", (None, "Bearer t2"))]) == ({"bearer": "t2"}, "")


def test_every_endpoint_error_is_listed() -> None:
    with pytest.raises(TokenRejected) as caught:
        _userinfo.ask("t", saas_apps(2), "https://t", client_answering(b"{}", 500), 2)
    assert str(caught.value) == ("opaque bearer token: the userinfo endpoint of no SaaS app the target trusts (s00, "
                                 f"s01) accepted it; errors: s00: HTTP 500; s01: HTTP 500 ({_userinfo.LABEL})")


def test_a_key_fetch_from_this_machine_never_goes_through_a_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests._verifier_support import CERTS, JwksServer

    monkeypatch.setattr(_http, "_CLIENTS", {})
    for var in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")  # nothing listens there: a proxied request would fail
    for var in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(var, raising=False)
    with JwksServer() as server:
        server.serve_json(CERTS, jwks(KEY))
        assert KeySet(server.url + CERTS, clock=Clock()).key(KEY.kid)


def test_every_phase_of_a_fetch_has_the_fetch_timeout() -> None:
    seen: list[dict[str, float]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(dict(request.extensions["timeout"]))
        return httpx.Response(200, content=b"{}")

    get("https://t/x", timeout=1.5, max_body=10, client=httpx.Client(transport=httpx.MockTransport(answer)))
    assert seen == [{"connect": 1.5, "read": 1.5, "write": 1.5, "pool": 1.5}]


@pytest.mark.parametrize("follow", [False, True])
def test_a_redirect_is_never_followed_even_by_a_client_that_would(follow: bool) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/certs":
            return httpx.Response(302, headers={"location": "https://t/elsewhere"})
        return httpx.Response(200, json=jwks(KEY))

    client = httpx.Client(transport=httpx.MockTransport(answer), follow_redirects=follow)
    assert get("https://t/certs", timeout=2, max_body=10_000, client=client)[0] == 302
    with pytest.raises(KeysUnavailable, match="HTTP 302"):
        KeySet("https://t/certs", client=client, clock=Clock()).key(KEY.kid)
