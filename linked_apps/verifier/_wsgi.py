"""WSGI middleware for App B (Flask, Django, any WSGI app): the same decision as the ASGI `AccessMiddleware`.

    app.wsgi_app = WSGIAccessMiddleware(app.wsgi_app, verifier=verifier, target="payroll-api")   # Flask
    application = WSGIAccessMiddleware(get_wsgi_application(), verifier=verifier, target="payroll-api")  # Django

On allow, the environ carries `linked_apps.verdict` (the Verdict), `linked_apps.identity`,
`linked_apps.source_app` and `linked_apps.via` (Flask: `request.environ[...]`, Django: `request.META[...]`).
On deny: 403 `{"allowed": false, "reason": ...}`. A WSGI server joins repeated headers with commas, which no
token contains, so a repeated token header is denied as malformed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ._asgi import GuardedApp, deny_body, request_state
from ._verdict import Verdict
from ._verifier import Verifier

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
ENVIRON_PREFIX = "linked_apps."


class WSGIAccessMiddleware(GuardedApp):
    """Guard the WSGI `app` as the Access application `target` (its Cloudflare name, uid or domain)."""

    def __init__(self, app: WSGIApp, *, verifier: Verifier, target: str, exempt_paths: Iterable[str] = (),
                 behind_access: bool = True) -> None:
        super().__init__(app, verifier=verifier, target=target, exempt_paths=exempt_paths,
                         behind_access=behind_access)
        self._environ_keys = tuple((f"HTTP_{n.upper().replace('-', '_')}", n) for n in self.guard.wanted)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") in self.exempt_paths:
            return self.app(environ, start_response)
        verdict = self.decide(environ)
        if verdict.allowed:
            for key, value in request_state(verdict).items():
                environ[ENVIRON_PREFIX + ("verdict" if key == "linked_app" else key)] = value
            return self.app(environ, start_response)
        body = deny_body(verdict)
        start_response("403 Forbidden", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    def decide(self, environ: dict[str, Any]) -> Verdict:
        headers = {name: environ[key] for key, name in self._environ_keys if key in environ}
        verdict = self.guard.cached(headers)
        return verdict if verdict is not None else self.guard.decide(headers)
