"""Opt-in, online: ask a SaaS app's OIDC userinfo endpoint whether it accepts an opaque bearer token.

Cloudflare does not document the format of Access-for-SaaS access tokens (CLOUDFLARE.md: *unverified*; they are
reported to be opaque), so an opaque token cannot be verified offline. With `online_userinfo=True` the verifier
sends the token to `<issuer>/userinfo` of every SaaS app the target's policies name (and only those: no other
app could be granted anyway). An endpoint accepts the token only with a 200 answer holding a JSON object with a
non-empty string `sub`; the token's source is the one app that accepts it, and when two accept it (or not every
endpoint could be asked) it is a deny: which app sent it is ambiguous. Every verdict reached this way says so in
its reason.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..errors import TokenRejected
from ..model.graph import App, TrustGraph
from ._http import FetchFailed, get

if TYPE_CHECKING:
    import httpx

USERINFO_TTL = 60.0
"""Seconds an answer of the userinfo endpoint is reused for the same token (there is no `exp` to go by)."""
LABEL = "checked online at the issuer's /userinfo; the SaaS access-token format is unverified"
MAX_CANDIDATES = 16
MAX_BODY = 64 * 1024


def candidates(graph: TrustGraph, target: App) -> list[App]:
    """SaaS apps with a client_id that a policy attached to `target` names in a linked_app_token rule."""
    uids = set().union(*(p.linked_uids() for p in graph.attached_policies(target.name)))
    apps = [app for uid in uids if (app := graph.by_uid(uid)) is not None and app.type == "saas" and app.client_id]
    return sorted(apps, key=lambda a: a.name)


def _accepts(app: App, token: str, base_url: str, client: httpx.Client | None,
             timeout: float) -> tuple[dict[str, Any] | None, str | None]:
    """`(claims, None)` when the endpoint accepts the token; `(None, problem or None)` otherwise."""
    url = f"{base_url}/cdn-cgi/access/sso/oidc/{app.client_id}/userinfo"
    try:
        status, body = get(url, timeout=timeout, max_body=MAX_BODY, client=client,
                           headers={"authorization": f"Bearer {token}", "accept": "application/json"})
    except FetchFailed as exc:  # an unreachable issuer vouches for nothing
        return None, f"{app.name}: {exc}"
    if status in (401, 403):
        return None, None
    if status != 200:
        return None, f"{app.name}: HTTP {status}"
    try:
        claims = json.loads(body)
    except (ValueError, RecursionError):
        return None, f"{app.name}: not JSON"
    if not isinstance(claims, Mapping) or not isinstance(claims.get("sub"), str) or not claims["sub"]:
        return None, f"{app.name}: the answer is not a JSON object with a `sub`"
    return dict(claims), None


def ask(token: str, apps: list[App], base_url: str, client: httpx.Client | None,
        timeout: float) -> tuple[App, dict[str, Any]]:
    """The one app whose userinfo endpoint accepts `token`, with the claims it returned; TokenRejected otherwise."""
    if not apps:
        raise TokenRejected("opaque bearer token, and no SaaS app is named by a policy of the target, so no "
                            f"issuer could vouch for it ({LABEL})")
    if len(apps) > MAX_CANDIDATES:
        raise TokenRejected(f"opaque bearer token, and the target trusts {len(apps)} SaaS apps; at most "
                            f"{MAX_CANDIDATES} userinfo endpoints are asked, and all must be ({LABEL})")
    accepted: list[tuple[App, dict[str, Any]]] = []
    problems: list[str] = []
    for app in apps:
        claims, problem = _accepts(app, token, base_url, client, timeout)
        if claims is not None:
            accepted.append((app, claims))
        elif problem:
            problems.append(problem)
    tried = ", ".join(a.name for a in apps)
    if len(accepted) == 1 and not problems:
        return accepted[0]
    if len(accepted) > 1:
        raise TokenRejected(f"opaque bearer token accepted by {len(accepted)} SaaS apps' userinfo endpoints "
                            f"({', '.join(a.name for a, _ in accepted)}): which app sent it is ambiguous ({LABEL})")
    if accepted:
        raise TokenRejected(f"opaque bearer token: {accepted[0][0].name} accepted it, but not every SaaS app the "
                            f"target trusts answered, so another may accept it too; errors: {'; '.join(problems)} "
                            f"({LABEL})")
    detail = f"; errors: {'; '.join(problems)}" if problems else ""
    raise TokenRejected(f"opaque bearer token: the userinfo endpoint of no SaaS app the target trusts ({tried}) "
                        f"accepted it{detail} ({LABEL})")
