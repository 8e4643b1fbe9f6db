"""AccessMiddleware in a real Starlette app: verified identity and source app on request.state, 403 JSON on deny.

These tests run the forwarded-token decision (`behind_access=False`, an app Access does not front); the origin
decision behind Access is tested over real servers in test_verifier_servers.py."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket, WebSocketDisconnect

from linked_apps.errors import UnknownAppError
from linked_apps.state import graph_from_export
from linked_apps.verifier import AccessMiddleware, Verifier
from tests._verifier_support import (
    JwksServer,
    app_claims,
    dev_app,
    dev_export,
    dev_jwks_server,
    saas_claims,
    signing_key,
)

KEY = signing_key("asgi")
MCP = dev_app("mcp-server")["client_id"]


@pytest.fixture(scope="module")
def server() -> Any:
    with dev_jwks_server(KEY) as srv:
        yield srv


@pytest.fixture
def verifier(server: JwksServer) -> Verifier:
    return Verifier(graph_from_export(dev_export()), access_url=server.url)


def whoami(request: Request) -> JSONResponse:
    return JSONResponse({"source": request.state.source_app, "identity": request.state.identity,
                         "policy": request.state.linked_app.policy})


def health(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


async def echo(ws: WebSocket) -> None:
    await ws.accept()
    await ws.send_text(ws.state.source_app)
    await ws.close()


def payroll_app(verifier: Verifier) -> Starlette:
    app = Starlette(routes=[Route("/whoami", whoami), Route("/health", health), WebSocketRoute("/ws", echo)])
    app.add_middleware(AccessMiddleware, verifier=verifier, target="payroll.acme.com", exempt_paths=["/health"],
                       behind_access=False)
    return app


def hr_token() -> str:
    return KEY.mint(app_claims(dev_app("hr-portal")["aud"]))


def test_cf_access_token_is_admitted_with_identity_and_source(verifier: Verifier) -> None:
    with TestClient(payroll_app(verifier)) as client:
        response = client.get("/whoami", headers={"Cf-Access-Token": hr_token()})
        assert response.status_code == 200
        assert response.json() == {"source": "hr-portal", "policy": "Linked app token: hr-portal",
                                   "identity": {"email": "ann@acme.com", "country": "NL",
                                                "sub": "7335d417-61da-459d-899c-0a01c76a2f94"}}
        # the repeated token is answered from the cache, with the same result
        assert client.get("/whoami", headers={"Cf-Access-Token": hr_token()}).json()["source"] == "hr-portal"


def test_saas_bearer_is_admitted(verifier: Verifier) -> None:
    with TestClient(payroll_app(verifier)) as client:
        response = client.get("/whoami", headers={"Authorization": f"Bearer {KEY.mint(saas_claims(MCP))}"})
        assert response.status_code == 200 and response.json()["source"] == "mcp-server"


@pytest.mark.parametrize(("headers", "reason"), [
    ({}, "no linked-app token"),
    ({"Authorization": "Basic dXNlcjpwYXNz"}, "no linked-app token"),
    ({"Cf-Access-Token": "garbage"}, "malformed token"),
    ({"Authorization": "Bearer opaque-123"}, "opaque bearer token"),
    ({"Cf-Access-Token": signing_key("stranger").mint(app_claims(dev_app("hr-portal")["aud"]))}, "no key with kid"),
    ({"Cf-Access-Token": KEY.mint(app_claims(dev_app("docs-api")["aud"]))}, "for docs-api"),
])
def test_denied_requests_get_403_json(verifier: Verifier, headers: dict[str, str], reason: str) -> None:
    with TestClient(payroll_app(verifier)) as client:
        response = client.get("/whoami", headers=headers)
        assert response.status_code == 403
        assert response.headers["content-type"] == "application/json"
        body = response.json()
        assert body["allowed"] is False and reason in body["reason"], body


def test_duplicate_token_headers_are_refused(verifier: Verifier) -> None:
    with TestClient(payroll_app(verifier)) as client:
        response = client.get("/whoami", headers=[("Cf-Access-Token", hr_token()), ("Cf-Access-Token", "x")])
        assert response.status_code == 403 and "2 cf-access-token headers" in response.json()["reason"]


def test_exempt_paths_pass_without_a_token(verifier: Verifier) -> None:
    with TestClient(payroll_app(verifier)) as client:
        assert client.get("/health").text == "ok"


def test_websockets_are_guarded_too(verifier: Verifier) -> None:
    with TestClient(payroll_app(verifier)) as client:
        with client.websocket_connect("/ws", headers={"Cf-Access-Token": hr_token()}) as ws:
            assert ws.receive_text() == "hr-portal"
        with pytest.raises(WebSocketDisconnect) as denied:
            with client.websocket_connect("/ws") as ws:
                ws.receive_text()
        assert denied.value.code == 1008


def test_an_unknown_target_fails_at_startup(verifier: Verifier) -> None:
    app = Starlette(routes=[Route("/whoami", whoami)])
    app.add_middleware(AccessMiddleware, verifier=verifier, target="nope")
    with pytest.raises(UnknownAppError, match="no app named 'nope'"):
        with TestClient(app) as client:
            client.get("/whoami")
