"""Pure ASGI middleware for App B: admit a request only when its linked-app token would reach App B.

Works with any ASGI framework (Starlette, FastAPI, ...). On allow, the request's state carries the verdict:
`request.state.linked_app` (the Verdict), `request.state.identity` (email/sub/common_name...) and
`request.state.source_app` (the sending app's Cloudflare name). On deny: 403 `{"allowed": false, "reason": ...}`.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from ._verdict import Verdict
from ._headers import token_from_header_items
from ._verifier import Verifier

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_CLOSE_REASON = 123
"""Bytes a WebSocket close reason may hold (RFC 6455: a control frame's 125 bytes, less the 2-byte code)."""


def close_reason(reason: str) -> str:
    """`reason` cut to fit a WebSocket close frame, in UTF-8 bytes and on a character boundary."""
    return reason.encode("utf-8")[:MAX_CLOSE_REASON].decode("utf-8", "ignore")


class AccessMiddleware:
    """Guard `app` as the Access application `target` (its Cloudflare name, uid or domain)."""

    def __init__(self, app: ASGIApp, *, verifier: Verifier, target: str, exempt_paths: Iterable[str] = ()) -> None:
        self.app = app
        self.verifier = verifier
        self.target = verifier.target(target).name  # an unknown target fails at startup, not per request
        self.exempt_paths = frozenset(exempt_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or scope.get("path") in self.exempt_paths:
            await self.app(scope, receive, send)
            return
        verdict = await self._decide(scope)
        if verdict.allowed:
            # A new dict: the server may share the lifespan state dict between requests.
            scope["state"] = {**(scope.get("state") or {}), "linked_app": verdict,
                              "identity": dict(verdict.identity), "source_app": verdict.source}
            await self.app(scope, receive, send)
        elif scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008, "reason": close_reason(verdict.reason)})
        else:
            body = json.dumps({"allowed": False, "reason": verdict.reason}).encode()
            await send({"type": "http.response.start", "status": 403,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})

    async def _decide(self, scope: Scope) -> Verdict:
        token, reason = token_from_header_items(scope.get("headers") or ())
        if token is None:
            return Verdict(False, reason, self.target)
        verdict = self.verifier.cached(self.target, **token)
        if verdict is None:
            # A cold decision may fetch keys over the network: keep it off the event loop.
            import anyio.to_thread

            verdict = await anyio.to_thread.run_sync(lambda: self.verifier.decide(self.target, **token))
        return verdict
