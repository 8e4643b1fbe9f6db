"""Deployed trust read from the Cloudflare account itself: `cloudflare:ACCOUNT_ID` wherever state is read.

Pulumi's state records what was applied; the account is what Access enforces. This reader asks the API v4,
through the official `cloudflare` SDK (the `linked-apps[cloudflare]` extra, imported only here), for:
- `GET /accounts/{id}/access/apps`: every application with its attached policies (id, precedence, decision,
  include/require/exclude), paginated until an empty page;
- `GET /accounts/{id}/access/policies`: the reusable policies, so an attachment by id is told from an
  app-scoped (inline) policy and a reusable policy attached to nothing is still seen;
- `GET /accounts/{id}/access/organizations`: the Zero Trust organization, whose `auth_domain` is the team domain.

The API speaks snake_case (`linked_app_token.app_uid`, `saas_app.client_id`); the stack-state reader accepts
those spellings too, so both sources go through the same reader rules (one home, fail closed).

The API token comes only from `CLOUDFLARE_API_TOKEN` and is never printed; "Access: Apps and Policies Read" is
enough. Every fetch has one total deadline and a body cap; plain http only to this machine; no proxy from the
environment for a loopback mirror.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ..errors import StateError
from ..model.graph import TrustGraph
from ..model.rules import is_loopback, is_loopback_http
from ._pulumi import APP_TYPE, POLICY_TYPE, graph_from_resources

SOURCE_PREFIX = "cloudflare:"
TOKEN_VARIABLE = "CLOUDFLARE_API_TOKEN"
DEADLINE = 120.0
"""Seconds for one whole read of the account: every page, retry and Retry-After wait included."""
BODY_CAP = 32 * 1024 * 1024
"""Bytes of one response body, after decompression: a page of applications is far below this."""
PER_PAGE = 100
DEFAULT_API_URL = "https://api.cloudflare.com/client/v4"
"""The SDK's own default base URL."""


@dataclass
class Account:
    """What the API returned for one account, as plain JSON (snake_case, as the API sends it)."""

    account_id: str
    team_domain: str | None
    apps: list[dict[str, Any]] = field(default_factory=list)
    policies: list[dict[str, Any]] = field(default_factory=list)

    def resources(self) -> list[dict[str, Any]]:
        """The account as resources `{"type", "id", "props"}` for the shared state reader."""
        # `path` names where a field sits in what the API returned, for the reader's messages.
        return ([{"type": POLICY_TYPE, "id": p.get("id"), "props": p, "path": f"access/policies[{i}]"}
                 for i, p in enumerate(self.policies)]
                + [{"type": APP_TYPE, "id": a.get("id"), "props": a, "path": f"access/apps[{i}]"}
                   for i, a in enumerate(self.apps)])

    def graph(self) -> TrustGraph:
        return graph_from_resources(self.resources(), team_domain=self.team_domain)


def is_account_source(source: str) -> bool:
    return isinstance(source, str) and source.startswith(SOURCE_PREFIX)


def account_id_of(source: str) -> str:
    account = source[len(SOURCE_PREFIX):]
    if not (len(account) == 32 and all(c in "0123456789abcdef" for c in account.lower())):
        raise StateError(f"{source}: not an account id; write cloudflare:<the 32 hex characters of the account id>")
    return account.lower()


def read_account(source: str, *, api_url: str | None = None, environ: Mapping[str, str] | None = None) -> TrustGraph:
    """The trust Cloudflare enforces in the account `cloudflare:ACCOUNT_ID`."""
    return fetch_account(source, api_url=api_url, environ=environ).graph()


def fetch_account(source: str, *, api_url: str | None = None,
                  environ: Mapping[str, str] | None = None) -> Account:
    account_id = account_id_of(source)
    env = os.environ if environ is None else environ
    token = env.get(TOKEN_VARIABLE, "").strip()
    if not token:
        raise StateError(f"{TOKEN_VARIABLE}: not set; export an API token with the permission "
                         "'Access: Apps and Policies Read' to read the account")
    if api_url is not None and not api_url.startswith("https://") and not is_loopback_http(api_url):
        raise StateError(f"--api-url {api_url}: use https://, or plain http:// only to this machine "
                         "(localhost, 127.0.0.1, [::1])")
    try:
        import cloudflare
        import httpx
    except ImportError:
        raise StateError(f"{source}: reading the account needs the Cloudflare SDK; install it with: "
                         "pip install 'linked-apps[cloudflare]'") from None

    deadline = time.monotonic() + DEADLINE
    base_url = api_url or DEFAULT_API_URL
    # The transport is ours (deadline, body cap), so httpx reads no proxy from the environment itself: say here
    # which one applies. None to this machine; for https elsewhere the environment's, which can only tunnel
    # (TLS still checks the API's host), as for key fetches.
    transport = _CappedTransport(deadline, proxy=_proxy_for(base_url))
    http = httpx.Client(transport=transport, timeout=httpx.Timeout(30.0, connect=5.0), follow_redirects=False)
    client = cloudflare.Cloudflare(api_token=token, base_url=base_url, http_client=http, max_retries=2)
    try:
        org = client.zero_trust.organizations.list(account_id=account_id)
        apps = [_plain(a) for a in client.zero_trust.access.applications.list(account_id=account_id,
                                                                                per_page=PER_PAGE)]
        policies = [_plain(p) for p in client.zero_trust.access.policies.list(account_id=account_id,
                                                                               per_page=PER_PAGE)]
    except cloudflare.APIStatusError as exc:
        raise StateError(f"{source}: the Cloudflare API answered {exc.status_code}: {_api_errors(exc)}"
                         + (f"; check {TOKEN_VARIABLE} (it needs 'Access: Apps and Policies Read' on this "
                            "account)" if exc.status_code in (401, 403) else "")) from None
    except cloudflare.APIConnectionError as exc:
        cause = exc.__cause__ if isinstance(exc.__cause__, StateError) else None
        where = urlsplit(str(client.base_url)).netloc
        raise StateError(f"{source}: {cause or f'cannot reach the Cloudflare API at {where}'}") from None
    finally:
        http.close()
    domain = _plain(org).get("auth_domain") if org is not None else None
    return Account(account_id, domain if isinstance(domain, str) and domain else None, apps, policies)


def _proxy_for(url: str) -> str | None:
    """The proxy the environment names for `url`: never one to this machine, nor to a host NO_PROXY lists."""
    import urllib.request

    if is_loopback(url) or urllib.request.proxy_bypass(urlsplit(url).hostname or ""):
        return None
    proxies = urllib.request.getproxies()
    return proxies.get(urlsplit(url).scheme) or proxies.get("all")


def _plain(model: Any) -> dict[str, Any]:
    """An SDK object as the JSON the API sent (field names as on the wire, unset fields left out)."""
    if hasattr(model, "to_dict"):
        return model.to_dict(mode="json")
    return dict(model) if isinstance(model, Mapping) else {}


def _api_errors(exc: Any) -> str:
    """The API's own `errors[].message` (the envelope's), else the SDK's message."""
    body = getattr(exc, "body", None)
    errors = body.get("errors") if isinstance(body, Mapping) else None
    messages = [f"{e.get('message')} (code {e.get('code')})" for e in errors or [] if isinstance(e, Mapping)]
    return "; ".join(messages) or str(getattr(exc, "message", exc))


class _CappedTransport:
    """httpx transport that holds every request to one total deadline and every body to BODY_CAP bytes."""

    def __init__(self, deadline: float, proxy: str | None = None) -> None:
        import httpx

        self._inner = httpx.HTTPTransport(proxy=proxy)
        self._deadline = deadline

    def handle_request(self, request: Any) -> Any:
        import httpx

        left = self._deadline - time.monotonic()
        if left <= 0:
            raise StateError(f"no answer within {DEADLINE:.0f} s (the deadline for one read of the account)")
        request.extensions["timeout"] = {k: min(v, left) if v else left
                                         for k, v in request.extensions.get("timeout", {}).items()} or {
            "connect": left, "read": left, "write": left, "pool": left}
        raw = self._inner.handle_request(request)
        # Decode (gzip, br, ...) here so the cap counts what the body inflates to, not what came over the wire.
        decoding = httpx.Response(raw.status_code, headers=raw.headers, stream=raw.stream, request=request)
        try:
            body = b"".join(_capped(decoding.iter_bytes(), self._deadline))
        finally:
            decoding.close()
        headers = [(k, v) for k, v in raw.headers.multi_items() if k.lower() not in ("content-encoding",
                                                                                     "content-length")]
        return httpx.Response(raw.status_code, headers=headers, content=body, request=request,
                              extensions=raw.extensions)

    def close(self) -> None:
        self._inner.close()


def _capped(stream: Iterator[bytes], deadline: float) -> Iterator[bytes]:
    """The decoded body, refused past BODY_CAP bytes or past the deadline (a server trickling bytes)."""
    size = 0
    for chunk in stream:
        size += len(chunk)
        if size > BODY_CAP:
            raise StateError(f"a response body is over {BODY_CAP} bytes; refused")
        if time.monotonic() > deadline:
            raise StateError(f"no whole answer within {DEADLINE:.0f} s (the deadline for one read of the account)")
        yield chunk
