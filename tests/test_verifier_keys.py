"""Key sets and the token cache against a real HTTP server on 127.0.0.1: endpoint down, slow, garbage, key
rotated, a storm of random kids (fetches counted). Time moves through an injected clock, never by sleeping."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import pytest

from linked_apps.errors import KeysUnavailable
from linked_apps.state import graph_from_outputs
from linked_apps.verifier import KeySet, Verifier
from tests._verifier_support import (
    CERTS,
    Clock,
    JwksServer,
    app_claims,
    dev_app,
    dev_outputs,
    jwks,
    signing_key,
)

K1 = signing_key("k1")
K2 = signing_key("k2")
HR_AUD = dev_app("hr-portal")["aud"]


@pytest.fixture
def server() -> Any:
    with JwksServer() as srv:
        srv.serve_json(CERTS, jwks(K1))
        yield srv


@pytest.fixture
def clock() -> Clock:
    return Clock()


def keyset(server: JwksServer, clock: Clock, **options: Any) -> KeySet:
    return KeySet(server.url + CERTS, clock=clock, **options)


def verifier(server: JwksServer, clock: Clock, **options: Any) -> Verifier:
    return Verifier(graph_from_outputs(dev_outputs()), access_url=server.url, clock=clock, **options)


def token(key: Any, clock: Clock, **extra: Any) -> str:
    return key.mint(app_claims(HR_AUD, now=clock.now, **extra))


def hits(server: JwksServer) -> int:
    return server.hits.get(CERTS, 0)


# -- fetching --------------------------------------------------------------------------------------------
def test_keys_come_from_the_keys_array_and_are_fetched_once_per_ttl(server: JwksServer, clock: Clock) -> None:
    keys = keyset(server, clock, ttl=300)
    assert keys.key("k1").public_numbers() == K1.public.public_numbers()
    for _ in range(20):
        keys.key("k1")
    assert hits(server) == 1
    clock.advance(299)
    keys.key("k1")
    assert hits(server) == 1
    clock.advance(2)
    keys.key("k1")
    assert hits(server) == 2


def test_endpoint_down_fails_closed_and_is_not_hammered(clock: Clock) -> None:
    with socket.socket() as sock:  # a port with nothing listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    keys = KeySet(f"http://127.0.0.1:{port}{CERTS}", clock=clock, timeout=2)
    with pytest.raises(KeysUnavailable, match="cannot connect"):
        keys.key("k1")
    assert keys.fetches == 1
    for _ in range(10):
        with pytest.raises(KeysUnavailable):
            keys.key("k1")
    assert keys.fetches == 1  # a failed fetch is retried no sooner than one cooldown later
    clock.advance(31)
    with pytest.raises(KeysUnavailable):
        keys.key("k1")
    assert keys.fetches == 2


def test_server_errors_are_counted_and_paced(server: JwksServer, clock: Clock) -> None:
    server.routes[CERTS] = lambda: (503, b"unavailable")
    v = verifier(server, clock)
    for _ in range(25):
        verdict = v.decide("payroll-api", cf_access_token=token(K1, clock))
        assert not verdict.allowed and "HTTP 503" in verdict.reason
    assert hits(server) == 1


def test_slow_endpoint_times_out(server: JwksServer, clock: Clock) -> None:
    server.delay[CERTS] = 5
    keys = keyset(server, clock, timeout=0.3)
    started = time.monotonic()
    with pytest.raises(KeysUnavailable, match="no complete answer within 0.3 s"):
        keys.key("k1")
    assert time.monotonic() - started < 3


@pytest.mark.parametrize(("body", "why"), [
    (b"<html>oops</html>", "not JSON"),
    (b'{"public_cert": {"kid": "k1", "cert": "-----BEGIN CERTIFICATE-----"}}', "not a JWKS"),
    (b'{"keys": []}', "no usable RSA signing key"),
    (b'{"keys": [{"kty": "EC", "kid": "k1", "crv": "P-256", "x": "AA", "y": "AA"}]}', "no usable RSA"),
    (b'{"keys": [{"kty": "RSA", "kid": "k1", "e": "AQAB", "n": "AQAB"}]}', "no usable RSA"),  # 17-bit modulus
    (b'{"keys": [{"kty": "RSA", "kid": "k1", "e": "AQAB", "n": "%%%"}]}', "no usable RSA"),
    (b"[1, 2, 3]", "not a JWKS"),
    (b"x" * 300_000, "larger than"),
])
def test_garbage_bodies_are_refused(server: JwksServer, clock: Clock, body: bytes, why: str) -> None:
    server.routes[CERTS] = lambda: (200, body)
    with pytest.raises(KeysUnavailable, match=why):
        keyset(server, clock).key("k1")


def test_redirects_are_not_followed(server: JwksServer, clock: Clock) -> None:
    server.routes[CERTS] = lambda: (302, b"")
    with pytest.raises(KeysUnavailable, match="HTTP 302"):
        keyset(server, clock).key("k1")
    assert list(server.hits) == [CERTS]


def test_one_fetch_in_flight(server: JwksServer, clock: Clock) -> None:
    server.delay[CERTS] = 0.3
    keys = keyset(server, clock)
    results: list[object] = []
    threads = [threading.Thread(target=lambda: results.append(keys.key("k1"))) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(results) == 12 and hits(server) == 1


def test_ttl_refresh_does_not_block_other_callers(server: JwksServer, clock: Clock) -> None:
    keys = keyset(server, clock, ttl=60)
    keys.key("k1")
    server.delay[CERTS] = 1.0
    clock.advance(61)
    fetcher = threading.Thread(target=lambda: keys.key("k1"))
    fetcher.start()
    while hits(server) < 2:
        time.sleep(0.01)
    started = time.monotonic()
    assert keys.key("k1") is not None  # served from the current set while the refresh is in flight
    assert time.monotonic() - started < 0.5
    fetcher.join(5)


# -- outages and staleness -------------------------------------------------------------------------------
def test_last_good_set_serves_through_an_outage_then_fails_closed(server: JwksServer, clock: Clock) -> None:
    v = verifier(server, clock, key_ttl=600, key_max_stale=3600, cache_size=0)
    assert v.decide("payroll-api", cf_access_token=token(K1, clock)).allowed
    server.routes[CERTS] = lambda: (500, b"down")
    clock.advance(601)
    verdict = v.decide("payroll-api", cf_access_token=token(K1, clock))
    assert verdict.allowed, verdict.reason
    assert hits(server) == 2
    clock.advance(10)
    assert v.decide("payroll-api", cf_access_token=token(K1, clock)).allowed
    assert hits(server) == 2  # retry paced by the cooldown
    clock.advance(3000)
    verdict = v.decide("payroll-api", cf_access_token=token(K1, clock))
    assert not verdict.allowed and "beyond the 3600 s allowed" in verdict.reason and "failing closed" in verdict.reason
    server.serve_json(CERTS, jwks(K1))  # the endpoint comes back
    clock.advance(31)
    assert v.decide("payroll-api", cf_access_token=token(K1, clock)).allowed


def test_cached_tokens_are_rechecked_once_the_key_set_is_due(server: JwksServer, clock: Clock) -> None:
    v = verifier(server, clock, key_ttl=600, key_max_stale=3600)
    tok = token(K1, clock, ttl=86400)
    assert v.decide("payroll-api", cf_access_token=tok).allowed
    server.routes[CERTS] = lambda: (500, b"down")
    for _ in range(5):
        clock.advance(900)
        v.decide("payroll-api", cf_access_token=tok)
    verdict = v.decide("payroll-api", cf_access_token=tok)
    assert not verdict.allowed and "failing closed" in verdict.reason


# -- rotation --------------------------------------------------------------------------------------------
def test_key_rotation(server: JwksServer, clock: Clock) -> None:
    v = verifier(server, clock)
    old = token(K1, clock, ttl=3600)
    assert v.decide("payroll-api", cf_access_token=old).allowed
    server.serve_json(CERTS, jwks(K2, K1))  # rotated: new current key, the previous still published
    new = token(K2, clock, ttl=3600)
    early = v.decide("payroll-api", cf_access_token=new)
    assert not early.allowed and "no key with kid 'k2'" in early.reason  # within the cooldown of the first fetch
    clock.advance(31)
    assert v.decide("payroll-api", cf_access_token=new).allowed
    assert v.decide("payroll-api", cf_access_token=old).allowed
    assert hits(server) == 2
    server.serve_json(CERTS, jwks(K2))  # the previous key is retired
    clock.advance(601)
    assert v.decide("payroll-api", cf_access_token=new).allowed  # TTL refresh
    verdict = v.decide("payroll-api", cf_access_token=old)
    assert not verdict.allowed and "no key with kid 'k1'" in verdict.reason


def test_cache_entries_leave_with_their_key(server: JwksServer, clock: Clock) -> None:
    v = verifier(server, clock)
    old = token(K1, clock)
    assert v.decide("payroll-api", cf_access_token=old).allowed
    assert v.cached("payroll-api", cf_access_token=old) is not None
    server.serve_json(CERTS, jwks(K2))
    assert v.certs.refresh()
    assert v.cached("payroll-api", cf_access_token=old) is None
    assert not v.decide("payroll-api", cf_access_token=old).allowed


def test_a_key_replaced_under_the_same_kid_drops_its_tokens(server: JwksServer, clock: Clock) -> None:
    v = verifier(server, clock)
    old = token(K1, clock)
    assert v.decide("payroll-api", cf_access_token=old).allowed
    impostor = signing_key("k1-other")
    server.serve_json(CERTS, {"keys": [{**impostor.jwk(), "kid": "k1"}]})
    assert v.certs.refresh()
    verdict = v.decide("payroll-api", cf_access_token=old)
    assert not verdict.allowed and "bad signature" in verdict.reason


def test_storm_of_random_kids_refetches_at_most_once_per_cooldown(server: JwksServer, clock: Clock) -> None:
    v = verifier(server, clock, key_cooldown=30)
    assert v.decide("payroll-api", cf_access_token=token(K1, clock)).allowed
    started = clock.now
    for i in range(400):  # 400 requests over 200 s, each with a fresh random kid
        clock.advance(0.5)
        forged = K1.mint(app_claims(HR_AUD, now=clock.now), kid=f"storm-{i}-{'x' * (i % 7)}")
        assert not v.decide("payroll-api", cf_access_token=forged).allowed
    elapsed = clock.now - started
    refetches = hits(server) - 1
    assert 1 <= refetches <= elapsed // 30 + 1


# -- the token cache -------------------------------------------------------------------------------------
def test_a_repeated_token_is_answered_from_the_cache(server: JwksServer, clock: Clock) -> None:
    v = verifier(server, clock)
    tok = token(K1, clock)
    first = v.decide("payroll-api", cf_access_token=tok)
    assert v.decide("payroll-api", cf_access_token=tok) is first
    other = v.decide("ledger", cf_access_token=tok)  # same verified token, another target
    assert not other.allowed and other.source == "hr-portal"


def test_expiry_is_rechecked_on_every_hit(server: JwksServer, clock: Clock) -> None:
    v = verifier(server, clock, leeway=30)
    tok = token(K1, clock, ttl=60)
    assert v.decide("payroll-api", cf_access_token=tok).allowed
    clock.advance(80)
    assert v.decide("payroll-api", cf_access_token=tok).allowed  # within exp + leeway
    clock.advance(15)
    verdict = v.decide("payroll-api", cf_access_token=tok)
    assert not verdict.allowed and "expired" in verdict.reason


def test_the_cache_is_bounded(server: JwksServer, clock: Clock) -> None:
    v = verifier(server, clock, cache_size=5)
    tokens = [token(K1, clock, jti=str(i)) for i in range(12)]
    for tok in tokens:
        assert v.decide("payroll-api", cf_access_token=tok).allowed
    assert len(v._cf_cache) == 5
    assert v.cached("payroll-api", cf_access_token=tokens[0]) is None
    assert v.cached("payroll-api", cf_access_token=tokens[-1]) is not None


def test_denied_unverified_tokens_are_not_cached(server: JwksServer, clock: Clock) -> None:
    v = verifier(server, clock)
    forged = signing_key("k2").mint(app_claims(HR_AUD, now=clock.now), kid="k1")
    assert not v.decide("payroll-api", cf_access_token=forged).allowed
    assert len(v._cf_cache) == 0
