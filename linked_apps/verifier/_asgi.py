"""Pure ASGI middleware for App B: admit a request only when Access vouches for it at App B's origin.

Behind Access (the default) the decision is `Verifier.decide_origin`: the `Cf-Access-Jwt-Assertion` header (or
the `CF_Authorization` cookie) for App B is required; a forwarded `Cf-Access-Token` / `Authorization: Bearer`
makes it a linked call that must be proven. `behind_access=False` keeps the forwarded-token-only decision
(`Verifier.decide`) for an app that Access does not front.

Works with any ASGI framework (Starlette, FastAPI, ...). On allow, the request's state carries the verdict:
`request.state.linked_app` (the Verdict), `request.state.identity` (email/sub/common_name...),
`request.state.source_app` (the sending app's Cloudflare name, or None) and `request.state.via` (`user`,
`service-token`, `linked-app`; None when not behind Access). On deny: 403 `{"allowed": false, "reason": ...}`.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from typing import Any

from ._headers import NO_TOKEN_REASON, token_from_headers
from ._origin import RequestRefused, assertion_from_headers, origin_target
from ._verdict import OriginVerdict, Verdict
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

FORWARDED_HEADERS = ("cf-access-token", "authorization")
ORIGIN_HEADERS = (*FORWARDED_HEADERS, "cf-access-jwt-assertion", "cookie")
_REPEATABLE = frozenset({"cookie"})  # HTTP/2 may split cookies over several headers; they are joined with "; "


def deny_body(verdict: Verdict) -> bytes:
    return json.dumps({"allowed": False, "reason": verdict.reason}).encode()


def request_state(verdict: Verdict) -> dict[str, Any]:
    """What an admitted request carries (ASGI `request.state`, WSGI `environ["linked_apps.*"]`)."""
    return {"linked_app": verdict, "identity": dict(verdict.identity), "source_app": verdict.source,
            "via": getattr(verdict, "via", None)}


class Guard:
    """The decision both middlewares make, for one target: headers in (lower-case names), a Verdict out."""

    def __init__(self, verifier: Verifier, target: str, behind_access: bool) -> None:
        self.verifier = verifier
        self.behind_access = behind_access
        # an unknown target (or, behind Access, one without an AUD tag) fails at startup, not per request
        self.target = origin_target(verifier, target) if behind_access else verifier.target(target).name
        self.wanted = ORIGIN_HEADERS if behind_access else FORWARDED_HEADERS

    def refuse(self, reason: str) -> Verdict:
        return OriginVerdict(False, reason, self.target) if self.behind_access else Verdict(False, reason, self.target)

    def duplicated(self, name: str, count: int) -> Verdict | None:
        return None if count < 2 or name in _REPEATABLE else \
            self.refuse(f"the request carries {count} {name} headers; send one")

    def cached(self, headers: Mapping[str, str]) -> Verdict | None:
        """The verdict when it needs no I/O (every token cached, or a refusal), else None: then call decide()."""
        if self.behind_access:
            try:
                assertion = assertion_from_headers(headers)
            except RequestRefused as exc:
                return self.refuse(str(exc))
            return self.verifier._origin.cached(self.target, assertion, **(token_from_headers(headers) or {}))
        token = token_from_headers(headers)
        return self.refuse(NO_TOKEN_REASON) if token is None else self.verifier.cached(self.target, **token)

    def decide(self, headers: Mapping[str, str]) -> Verdict:
        """The full decision (it may fetch keys)."""
        if self.behind_access:
            return self.verifier.decide_origin_headers(self.target, headers)
        token = token_from_headers(headers)
        return self.refuse(NO_TOKEN_REASON) if token is None else self.verifier.decide(self.target, **token)


class GuardedApp:
    """What both middlewares hold: the wrapped app, its guard, and the paths that need no decision."""

    def __init__(self, app: Any, *, verifier: Verifier, target: str, exempt_paths: Iterable[str] = (),
                 behind_access: bool = True) -> None:
        self.app = app
        self.guard = Guard(verifier, target, behind_access)
        self.verifier = verifier
        self.target = self.guard.target
        self.exempt_paths = frozenset(exempt_paths)


class AccessMiddleware(GuardedApp):
    """Guard the ASGI `app` as the Access application `target` (its Cloudflare name, uid or domain)."""

    def __init__(self, app: ASGIApp, *, verifier: Verifier, target: str, exempt_paths: Iterable[str] = (),
                 behind_access: bool = True) -> None:
        super().__init__(app, verifier=verifier, target=target, exempt_paths=exempt_paths,
                         behind_access=behind_access)
        self._wanted = {n.encode(): n for n in self.guard.wanted}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or scope.get("path") in self.exempt_paths:
            await self.app(scope, receive, send)
            return
        verdict = await self._decide(scope)
        if verdict.allowed:
            # A new dict: the server may share the lifespan state dict between requests.
            scope["state"] = {**(scope.get("state") or {}), **request_state(verdict)}
            await self.app(scope, receive, send)
        elif scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008, "reason": close_reason(verdict.reason)})
        else:
            body = deny_body(verdict)
            await send({"type": "http.response.start", "status": 403,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})

    async def _decide(self, scope: Scope) -> Verdict:
        headers: dict[str, str] = {}
        counts: dict[str, int] = {}
        wanted = self._wanted
        for raw, value in scope.get("headers") or ():
            name = wanted.get(raw.lower())
            if name is not None:
                if name in headers:
                    counts[name] = counts.get(name, 1) + 1
                    headers[name] += "; " + value.decode("latin-1")
                else:
                    headers[name] = value.decode("latin-1")
        for name, count in counts.items():
            refused = self.guard.duplicated(name, count)
            if refused is not None:
                return refused
        guard = self.guard
        verdict = guard.cached(headers)
        if verdict is None:
            # A cold decision may fetch keys over the network: keep it off the event loop.
            import anyio.to_thread

            verdict = await anyio.to_thread.run_sync(guard.decide, headers)
        return verdict
