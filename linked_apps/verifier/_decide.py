"""The decision on the trust graph, once a token is verified: which app sent it, and would the target admit it.

Pure: no I/O. The rules (who may receive, who may send, how a policy is evaluated) live in linked_apps.model.rules
and are only asked here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..model.graph import App, TrustGraph
from ..model.rules import (
    BEARER_HEADER,
    CF_ACCESS_TOKEN_HEADER,
    LINKED_APP_TOKEN,
    can_receive_linked_trust,
    can_send_linked_token,
    evaluate_linked_policy,
    token_header,
)

CF_ACCESS_TOKEN = "cf-access-token"
BEARER = "bearer"
FLOW_HEADER = {CF_ACCESS_TOKEN: CF_ACCESS_TOKEN_HEADER, BEARER: BEARER_HEADER}


@dataclass(frozen=True, slots=True)
class Grant:
    allowed: bool
    reason: str
    source: str | None
    policy: str | None = None


def sources_by_aud(graph: TrustGraph, audiences: Sequence[str]) -> list[App]:
    """The apps whose AUD tag is in the token's `aud`, in claim order, each once."""
    found: dict[str, App] = {}
    for aud in audiences:
        app = graph.by_aud(aud)
        if app is not None:
            found.setdefault(app.name, app)
    return list(found.values())


def saas_source(graph: TrustGraph, issuer_prefix: str, iss: object) -> App | None:
    """The SaaS app whose OIDC issuer is exactly `iss` (`<issuer_prefix><client_id>`), if any."""
    if not isinstance(iss, str) or not iss.startswith(issuer_prefix):
        return None
    client_id = iss[len(issuer_prefix):]
    app = graph.by_client_id(client_id) if client_id and "/" not in client_id else None
    return app if app is not None and app.type == "saas" else None


def sender_problem(source: App, flow: str) -> str | None:
    """Why `source` cannot have sent this token through this flow (None: it can)."""
    if not can_send_linked_token(source.type):
        return f"{source.name} is a {source.type} app, which carries no user token another app can accept"
    expected = token_header(source.type)
    if expected != FLOW_HEADER[flow]:
        return (f"{source.name} is a {source.type} app; its tokens arrive as {expected}, "
                f"not {FLOW_HEADER[flow]}")
    return None


def grant(graph: TrustGraph, target: App, sources: Sequence[App]) -> Grant:
    """Would `target` admit a token issued for `sources`, through its attached policies, as Access evaluates them."""
    first = sources[0].name if sources else None
    names = ", ".join(s.name for s in sources) or "?"
    if not can_receive_linked_trust(target.type):
        return Grant(False, f"{target.name} is a {target.type} app; only a self-hosted app can grant access "
                            "through a linked_app_token rule", first)
    uids = frozenset(s.uid for s in sources if s.uid)
    if not uids:
        return Grant(False, f"{names} has no uid in the state, so no linked_app_token rule can name it", first)
    named_by: list[tuple[str, str]] = []
    for policy in graph.attached_policies(target.name):
        ok, why = evaluate_linked_policy(policy.decision, policy.include, policy.require, policy.exclude, uids)
        if ok:
            source = next((s.name for s in sources if s.uid in policy.linked_uids()), first)
            return Grant(True, f"policy {policy.name!r} attached to {target.name}: {why} ({source})",
                         source, policy.name)
        if policy.linked_uids() & uids:
            named_by.append((policy.name, why))
    if named_by:
        policy_name, why = named_by[0]
        return Grant(False, f"policy {policy_name!r} attached to {target.name} names {names} but does not "
                            f"admit it: {why}", first, policy_name)
    # Explain the near miss: a policy that would admit the source exists, but not on this app.
    where: dict[str, list[str]] = {}
    for app_name, attached in graph.attachments.items():
        for pid, _ in attached:
            where.setdefault(pid, []).append(app_name)
    elsewhere = [p for p in graph.policies.values()
                 if any(sel == LINKED_APP_TOKEN and uid in uids for sel, uid in p.include)]
    for policy in sorted(elsewhere, key=lambda p: bool(where.get(p.id))):
        on = where.get(policy.id)
        attached_to = f"attached to {', '.join(sorted(on))}, not to {target.name}" if on else "attached to no app"
        return Grant(False, f"policy {policy.name!r} names {names} but is {attached_to}; a policy grants only "
                            "through the app's policies list", first, policy.name)
    return Grant(False, f"no policy attached to {target.name} has a linked_app_token rule for {names}", first)
