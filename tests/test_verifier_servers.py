"""The README's middleware examples served by real servers on 127.0.0.1 and driven over HTTP with httpx: the
ASGI example under uvicorn, the (Flask-free) WSGI example under wsgiref. Keys come from a loopback JWKS server;
the examples run as written except for where the state and the keys come from."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import httpx
import pytest
import uvicorn

from linked_apps.state import read_state
from tests._verifier_support import (
    CERTS,
    CI_CLIENT_ID,
    JwksServer,
    app_claims,
    jwks,
    service_claims,
    service_token_resource,
    signing_key,
)
from tests.test_verifier_readme import ROOT, examples

KEY = signing_key("servers")
ATTACKER = signing_key("servers-attacker")
README_STATE = 'Verifier(read_state("examples/dev-state.json"))'
BOB = {"sub": "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0", "email": "bob@acme.com"}


@pytest.fixture(scope="module")
def keys() -> Iterator[JwksServer]:
    with JwksServer() as srv:
        srv.serve_json(CERTS, jwks(KEY))
        yield srv


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The README's state file, plus a deployed service token."""
    doc = json.loads((ROOT / "examples" / "dev-state.json").read_text())
    doc["deployment"]["resources"].append(service_token_resource())
    path = tmp_path_factory.mktemp("state") / "state.json"
    path.write_text(json.dumps(doc))
    return path


def readme_app(index: int, name: str, state: Path, keys: JwksServer) -> Any:
    """Run README example `index` with the state and key URL of this test; return its `name` (app/application)."""
    code = examples()[index]
    assert code.count(README_STATE) == 1, "the README example no longer builds its Verifier this way"
    code = code.replace(README_STATE, f"Verifier(read_state({str(state)!r}), access_url={keys.url!r})")
    namespace: dict[str, Any] = {"__name__": "readme_example"}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102
    return namespace[name]


def serve_uvicorn(app: Any) -> Iterator[str]:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start within 10 s"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


def serve_wsgiref(app: Any) -> Iterator[str]:
    httpd: WSGIServer = make_server("127.0.0.1", 0, app, handler_class=_Quiet)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(10)


@pytest.fixture(scope="module", params=["asgi-uvicorn", "wsgi-wsgiref"])
def served(request: pytest.FixtureRequest, state: Path, keys: JwksServer) -> Iterator[tuple[str, str]]:
    if request.param == "asgi-uvicorn":
        yield from ((url, "asgi") for url in serve_uvicorn(readme_app(1, "app", state, keys)))
    else:
        yield from ((url, "wsgi") for url in serve_wsgiref(readme_app(2, "application", state, keys)))


def aud(state: Path, app: str) -> str:
    return read_state(state).apps[app].aud  # type: ignore[return-value]


def get(served: tuple[str, str], headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    """GET /payslips; the answer as {via, from, email} (ASGI answers JSON, WSGI plain text)."""
    url, kind = served
    with httpx.Client(timeout=10) as client:
        response = client.get(f"{url}/payslips", headers=headers)
    if response.status_code != 200:
        return response.status_code, response.json()
    if kind == "asgi":
        doc = response.json()
        return 200, {"via": doc["via"], "from": doc["from"], "email": doc["for"].get("email")}
    via, source, email = response.text.split(" ")
    return 200, {"via": via, "from": None if source == "-" else source, "email": None if email == "-" else email}


def test_a_person(served: tuple[str, str], state: Path) -> None:
    assertion = KEY.mint(app_claims(aud(state, "payroll-api")))
    assert get(served, {"Cf-Access-Jwt-Assertion": assertion}) == \
        (200, {"via": "user", "from": None, "email": "ann@acme.com"})
    assert get(served, {"Cookie": f"CF_Authorization={assertion}"})[1]["via"] == "user"


def test_a_service_token(served: tuple[str, str], state: Path) -> None:
    assertion = KEY.mint(service_claims(aud(state, "payroll-api")))
    assert get(served, {"Cf-Access-Jwt-Assertion": assertion}) == \
        (200, {"via": "service-token", "from": None, "email": None})
    assert CI_CLIENT_ID in read_state(state).service_tokens


def test_a_linked_call(served: tuple[str, str], state: Path) -> None:
    headers = {"Cf-Access-Jwt-Assertion": KEY.mint(app_claims(aud(state, "payroll-api"))),
               "Cf-Access-Token": KEY.mint(app_claims(aud(state, "hr-portal")))}
    assert get(served, headers) == (200, {"via": "linked-app", "from": "hr-portal", "email": "ann@acme.com"})


def test_a_forged_assertion(served: tuple[str, str], state: Path) -> None:
    forged = ATTACKER.mint(app_claims(aud(state, "payroll-api")), kid=KEY.kid)
    status, body = get(served, {"Cf-Access-Jwt-Assertion": forged})
    assert status == 403 and body == {"allowed": False, "reason": "Access assertion: bad signature: the token was "
                                                                  "not signed by a key of the pinned key set"}


def test_a_missing_assertion(served: tuple[str, str], state: Path) -> None:
    # a forwarded token alone never admits a request behind Access
    status, body = get(served, {"Cf-Access-Token": KEY.mint(app_claims(aud(state, "hr-portal")))})
    assert status == 403 and body["reason"].startswith("no Access assertion")


def test_a_provenance_it_cannot_prove(served: tuple[str, str], state: Path) -> None:
    headers = {"Cf-Access-Jwt-Assertion": KEY.mint(app_claims(aud(state, "payroll-api"))),
               "Cf-Access-Token": KEY.mint(app_claims(aud(state, "hr-portal"), **BOB))}
    status, body = get(served, headers)
    assert status == 403 and "names bob@acme.com, not the user of the Access assertion" in body["reason"]
