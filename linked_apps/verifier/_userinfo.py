"""Opt-in, online: ask a SaaS app's OIDC userinfo endpoint whether it accepts an opaque bearer token.

Cloudflare does not document the format of Access-for-SaaS access tokens (CLOUDFLARE.md: *unverified*; they are
reported to be opaque), so an opaque token cannot be verified offline. With `online_userinfo=True` the verifier
sends the token to `<issuer>/userinfo` of each SaaS app the target's policies name (and only those: no other
app could be granted anyway) and takes the first that answers 200 as the source. Every verdict reached this way
says so in its reason.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..errors import TokenRejected
from ..model.graph import App, TrustGraph

if TYPE_CHECKING:
    import httpx

USERINFO_TTL = 60.0
"""Seconds an answer of the userinfo endpoint is reused for the same token (there is no `exp` to go by)."""
LABEL = "checked online at the issuer's /userinfo; the SaaS access-token format is unverified"
MAX_CANDIDATES = 16
_MAX_BODY = 64 * 1024


def candidates(graph: TrustGraph, target: App) -> list[App]:
    """SaaS apps with a client_id that a policy attached to `target` names in a linked_app_token rule."""
    uids = set().union(*(p.linked_uids() for p in graph.attached_policies(target.name)))
    apps = [app for uid in uids if (app := graph.by_uid(uid)) is not None and app.type == "saas" and app.client_id]
    return sorted(apps, key=lambda a: a.name)[:MAX_CANDIDATES]


def ask(token: str, apps: list[App], base_url: str, client: httpx.Client, timeout: float) -> tuple[App, dict[str, Any]]:
    """The app whose userinfo endpoint accepts `token`, with the claims it returned; TokenRejected otherwise."""
    if not apps:
        raise TokenRejected("opaque bearer token, and no SaaS app is named by a policy of the target, so no "
                            f"issuer could vouch for it ({LABEL})")
    problems: list[str] = []
    for app in apps:
        url = f"{base_url}/cdn-cgi/access/sso/oidc/{app.client_id}/userinfo"
        try:
            response = client.get(url, headers={"authorization": f"Bearer {token}", "accept": "application/json"},
                                  timeout=timeout, follow_redirects=False)
        except Exception as exc:  # noqa: BLE001 - an unreachable issuer vouches for nothing
            problems.append(f"{app.name}: {type(exc).__name__}")
            continue
        if response.status_code in (401, 403):
            continue
        if response.status_code != 200 or len(response.content) > _MAX_BODY:
            problems.append(f"{app.name}: HTTP {response.status_code}")
            continue
        try:
            claims = json.loads(response.content)
        except ValueError:
            problems.append(f"{app.name}: not JSON")
            continue
        if isinstance(claims, Mapping):
            return app, dict(claims)
        problems.append(f"{app.name}: not a JSON object")
    tried = ", ".join(a.name for a in apps)
    detail = f"; errors: {'; '.join(problems)}" if problems else ""
    raise TokenRejected(f"opaque bearer token: the userinfo endpoint of no SaaS app the target trusts ({tried}) "
                        f"accepted it{detail} ({LABEL})")
