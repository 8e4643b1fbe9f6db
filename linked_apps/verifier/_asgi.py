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
from ._verifier import NO_TOKEN_REASON, Verifier, token_from_headers

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_WANTED = (b"cf-access-token", b"authorization")


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
            await send({"type": "websocket.close", "code": 1008, "reason": verdict.reason[:120]})
        else:
            body = json.dumps({"allowed": False, "reason": verdict.reason}).encode()
            await send({"type": "http.response.start", "status": 403,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})

    async def _decide(self, scope: Scope) -> Verdict:
        found: dict[bytes, list[bytes]] = {}
        for name, value in scope.get("headers") or ():
            name = name.lower()
            if name in _WANTED:
                found.setdefault(name, []).append(value)
        for name, values in found.items():
            if len(values) > 1:
                return Verdict(False, f"the request carries {len(values)} {name.decode()} headers; send one",
                               self.target)
        token = token_from_headers({k.decode("latin-1"): v[0].decode("latin-1") for k, v in found.items()})
        if token is None:
            return Verdict(False, NO_TOKEN_REASON, self.target)
        verdict = self.verifier.cached(self.target, **token)
        if verdict is None:
            # A cold decision may fetch keys over the network: keep it off the event loop.
            import anyio.to_thread

            verdict = await anyio.to_thread.run_sync(lambda: self.verifier.decide(self.target, **token))
        return verdict
