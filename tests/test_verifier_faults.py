"""Fault tests on loopback: a key server that trickles, a proxy set in the environment, bodies that are too big
(plain or gzip), and waiters behind a fetch that does not end. Every wait has a deadline, every body a cap.

The servers are raw sockets on 127.0.0.1 speaking just enough HTTP/1.1 to misbehave; bounded in count and time.
"""

from __future__ import annotations

import gzip
import json
import socket
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from linked_apps.state import graph_from_export
from linked_apps.verifier import KeySet, Verdict, Verifier
from linked_apps.verifier import _http
from tests._verifier_support import (
    AUD,
    CERTS,
    TEAM,
    JwksServer,
    app_claims,
    handmade_export,
    jwks,
    signing_key,
)

KEY = signing_key("faults")
DEADLINE = 1.0
"""fetch_timeout of these tests: the documented deadline of one fetch, connect and all reads together."""


@pytest.fixture(autouse=True)
def fetch_workers_end() -> Iterator[None]:
    """Each test leaves no fetch worker behind (they end at their next read past the deadline), so the bound on
    workers cannot leak from one test into the next."""
    yield
    limit = time.monotonic() + 5
    while any(t.name == "linked-apps-fetch" for t in threading.enumerate()) and time.monotonic() < limit:
        time.sleep(0.05)


class RawServer:
    """127.0.0.1, one thread per connection, `respond(conn, stop)` writes whatever it likes."""

    def __init__(self, respond: Callable[[socket.socket, threading.Event], None]) -> None:
        self.stop = threading.Event()
        self.sent: list[int] = []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self._respond = respond
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.recv(65536)  # the request; its content does not matter here
                self._respond(conn, self.stop)
            except OSError:
                pass  # the client gave up: what the tests want

    def close(self) -> None:
        self.stop.set()
        self._thread.join(2)
        self.sock.close()


def trickle_body(conn: socket.socket, stop: threading.Event) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100000\r\n\r\n{")
    while not stop.wait(0.2):
        conn.sendall(b" ")


def trickle_headers(conn: socket.socket, stop: threading.Event) -> None:
    for byte in b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n" * 1000:
        if stop.wait(0.2):
            return
        conn.sendall(bytes([byte]))


@pytest.fixture
def trickling(request: pytest.FixtureRequest) -> Iterator[RawServer]:
    server = RawServer(request.param)
    yield server
    server.close()


def in_thread(fn: Callable[[], Any], limit: float = 10.0) -> tuple[Any, float]:
    """Run `fn` with a hard limit, so that a hang fails the test instead of holding the suite."""
    out: dict[str, Any] = {}
    started = time.monotonic()
    thread = threading.Thread(target=lambda: out.update(value=fn()), daemon=True)
    thread.start()
    thread.join(limit)
    assert not thread.is_alive(), f"no answer within {limit} s"
    return out.get("value"), time.monotonic() - started


def handmade_verifier(url: str, **options: Any) -> Verifier:
    return Verifier(graph_from_export(handmade_export()), team_domain=TEAM, access_url=url,
                    fetch_timeout=DEADLINE, **options)


# -- a key server that trickles ------------------------------------------------------------------------------
@pytest.mark.parametrize("trickling", [trickle_body, trickle_headers], indirect=True, ids=["body", "headers"])
def test_a_trickling_key_server_gets_a_verdict_within_the_deadline(trickling: RawServer) -> None:
    verifier = handmade_verifier(trickling.url)
    token = KEY.mint(app_claims(AUD["front"]))
    verdict, took = in_thread(lambda: verifier.decide("api", cf_access_token=token))
    assert isinstance(verdict, Verdict) and not verdict.allowed
    assert f"no complete answer within {DEADLINE:g} s" in verdict.reason
    assert DEADLINE * 0.9 <= took < DEADLINE + 1.0  # the margin is for a loaded machine


@pytest.mark.parametrize("trickling", [trickle_body], indirect=True)
def test_waiters_behind_a_fetch_that_trickles_give_up_in_time(trickling: RawServer) -> None:
    keys = KeySet(f"{trickling.url}{CERTS}", timeout=DEADLINE)
    results: list[str] = []

    def ask() -> None:
        try:
            keys.key("k1")
        except Exception as exc:  # noqa: BLE001 - the reason is what the test reads
            results.append(str(exc))

    threads = [threading.Thread(target=ask, daemon=True) for _ in range(12)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    took = time.monotonic() - started
    assert not any(t.is_alive() for t in threads) and len(results) == 12
    assert took < 2 * DEADLINE + 1.0  # the fetch's deadline, then at most one waiter's
    assert keys.fetches <= 2
    assert all("within" in r or "failed" in r for r in results), results


def test_fetch_workers_are_bounded() -> None:
    server = RawServer(trickle_body)
    try:
        url = f"{server.url}{CERTS}"
        errors: list[str] = []

        def fetch() -> None:
            try:
                _http.get(url, timeout=DEADLINE, max_body=1024)
            except _http.FetchFailed as exc:
                errors.append(str(exc))

        threads = [threading.Thread(target=fetch, daemon=True) for _ in range(_http.MAX_WORKERS + 4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        assert len(errors) == _http.MAX_WORKERS + 4
        assert sum("not starting another" in e for e in errors) >= 4
    finally:
        server.close()


# -- proxies ---------------------------------------------------------------------------------------------------
class Proxy:
    """A hostile proxy on loopback: answers every GET with its own keys, refuses CONNECT; records requests."""

    def __init__(self, body: bytes) -> None:
        self.seen: list[str] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                proxy.seen.append(f"GET {self.path}")
                self.send_response(200)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_CONNECT(self) -> None:  # noqa: N802
                proxy.seen.append(f"CONNECT {self.path}")
                self.send_response(403)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[Proxy]:
    evil = Proxy(json.dumps(jwks(signing_key("proxy")) | {"keys": [signing_key("proxy").jwk() | {"kid": KEY.kid}]})
                 .encode())
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.setenv(name, evil.url)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(_http, "_CLIENTS", {})  # clients read the environment when made
    yield evil
    evil.close()


def test_a_proxy_in_the_environment_never_answers_for_a_loopback_mirror(proxy: Proxy) -> None:
    with JwksServer() as mirror:
        mirror.serve_json(CERTS, jwks(KEY))
        verifier = handmade_verifier(mirror.url)
        forged = signing_key("proxy").mint(app_claims(AUD["front"]), kid=KEY.kid)
        assert not verifier.decide("api", cf_access_token=forged).allowed
        assert verifier.decide("api", cf_access_token=KEY.mint(app_claims(AUD["front"]))).allowed
        assert mirror.hits == {CERTS: 1}
    assert proxy.seen == []


def test_a_proxy_may_only_tunnel_https_to_the_team_domain(proxy: Proxy) -> None:
    """The decision (README): an https key fetch may use the environment's proxy, as a CONNECT tunnel; TLS is
    checked for the team domain inside it, so the proxy can refuse, never answer."""
    with pytest.raises(_http.FetchFailed):
        _http.get(f"https://{TEAM}{CERTS}", timeout=DEADLINE, max_body=1024)
    assert proxy.seen == [f"CONNECT {TEAM}:443"]


# -- bodies that are too big ----------------------------------------------------------------------------------
def endless(conn: socket.socket, stop: threading.Event, *, sent: list[int]) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 67108864\r\n\r\n")
    chunk = b"{" + b" " * 65535
    for _ in range(1024):
        if stop.is_set():
            return
        conn.sendall(chunk)
        sent[0] += len(chunk)


def test_a_huge_userinfo_answer_is_cut_off_while_streaming() -> None:
    from tests.test_verifier_failclosed import two_saas_outputs
    from linked_apps.state import graph_from_outputs

    sent = [0]
    server = RawServer(lambda conn, stop: endless(conn, stop, sent=sent))
    try:
        verifier = Verifier(graph_from_outputs(two_saas_outputs()), access_url=server.url, online_userinfo=True,
                            fetch_timeout=5.0)
        verdict, _ = in_thread(lambda: verifier.decide("api", bearer="opaque-token"))
    finally:
        server.close()
    assert not verdict.allowed and "larger than 65536 bytes" in verdict.reason
    assert sent[0] < 16 * 2**20  # of 64 MiB offered: the reader stopped at the cap, not at the end


def test_a_gzip_answer_is_inflated_only_up_to_the_cap() -> None:
    body = gzip.compress(b" " * (64 * 2**20), 9)  # 64 MiB of spaces in about 64 KiB
    answer = (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-encoding: gzip\r\n"
              + f"content-length: {len(body)}\r\n\r\n".encode() + body)
    server = RawServer(lambda conn, stop: conn.sendall(answer))
    tracemalloc.start()
    try:
        with pytest.raises(_http.FetchFailed, match="larger than 262144 bytes"):
            _http.get(f"{server.url}{CERTS}", timeout=5.0, max_body=256 * 1024)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        server.close()
    assert peak < 8 * 2**20


def test_a_small_gzip_answer_is_read() -> None:
    body = gzip.compress(json.dumps(jwks(KEY)).encode())

    def answer(conn: socket.socket, stop: threading.Event) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-encoding: gzip\r\n"
                     + f"content-length: {len(body)}\r\n\r\n".encode() + body)

    server = RawServer(answer)
    try:
        keys = KeySet(f"{server.url}{CERTS}", timeout=DEADLINE)
        assert keys.key(KEY.kid) is not None
    finally:
        server.close()


# -- the middleware: unknown kids cannot park the worker threads -----------------------------------------------
def test_unknown_kids_against_a_slow_key_server_do_not_starve_valid_requests() -> None:
    """The first fetch serves the keys; every later one trickles. 45 requests with unknown kids (cooldown 0, so
    each asks for a refetch) take anyio's 40 worker threads; each gives up within the deadline, so a valid
    request that needs a thread still gets its answer."""
    import anyio

    from linked_apps.verifier import AccessMiddleware

    served = [0]

    def keys_then_trickle(conn: socket.socket, stop: threading.Event) -> None:
        served[0] += 1
        if served[0] > 1:
            trickle_body(conn, stop)
            return
        body = json.dumps(jwks(KEY)).encode()
        conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n"
                     + f"content-length: {len(body)}\r\n\r\n".encode() + body)

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    server = RawServer(keys_then_trickle)
    try:
        verifier = handmade_verifier(server.url, key_cooldown=0)
        assert verifier.certs.refresh()  # the first, good fetch
        # The forwarded-token path: the one that waits for keys a request's own token names.
        app = AccessMiddleware(inner, verifier=verifier, target="api", behind_access=False)

        async def request(token: str) -> int:
            status: list[int] = []

            async def receive() -> dict[str, Any]:
                return {"type": "http.request", "body": b""}

            async def send(message: dict[str, Any]) -> None:
                if message["type"] == "http.response.start":
                    status.append(message["status"])

            await app({"type": "http", "path": "/", "headers": [(b"cf-access-token", token.encode())]},
                      receive, send)
            return status[0]

        async def main() -> tuple[list[int], int, float]:
            statuses: list[int] = []

            async def unknown(i: int) -> None:
                statuses.append(await request(KEY.mint(app_claims(AUD["front"]), kid=f"unknown-{i}")))

            with anyio.fail_after(15):
                async with anyio.create_task_group() as group:
                    for i in range(45):
                        group.start_soon(unknown, i)
                    await anyio.sleep(0.2)  # the unknown kids hold the threads now
                    started = time.monotonic()
                    valid = await request(KEY.mint(app_claims(AUD["front"])))
                    took = time.monotonic() - started
            return statuses, valid, took

        statuses, valid, took = anyio.run(main)
    finally:
        server.close()
    assert statuses == [403] * 45
    assert valid == 200 and took < 3 * DEADLINE + 1.0, took
