"""The decision on the trust graph, once a token is verified: which app sent it, and would the target admit it.

Pure: no I/O. The rules (who may receive, who may send, how a policy is evaluated) live in linked_apps.model.rules
and are only asked here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import TokenRejected
from ..model.graph import App, TrustGraph
from ..model.rules import (
    BEARER_HEADER,
    CF_ACCESS_TOKEN_HEADER,
    LINKED_APP_TOKEN,
    NON_IDENTITY,
    POLICY_DECISIONS,
    can_receive_linked_trust,
    can_send_linked_token,
    evaluate_linked_policy,
    token_header,
)

CF_ACCESS_TOKEN = "cf-access-token"
BEARER = "bearer"
FLOW_HEADER = {CF_ACCESS_TOKEN: CF_ACCESS_TOKEN_HEADER, BEARER: BEARER_HEADER}
_APART_FROM_SERVICE_AUTH = POLICY_DECISIONS - {NON_IDENTITY}
"""Decisions whose policies cannot change whether a linked_app_token rule admits (allow, deny, bypass)."""


@dataclass(frozen=True, slots=True)
class Grant:
    allowed: bool
    reason: str
    source: str | None
    policy: str | None = None


def _ambiguous(what: str, apps: Sequence[App]) -> TokenRejected:
    names = ", ".join(sorted(a.name for a in apps)[:10])
    return TokenRejected(f"{what} belongs to {len(apps)} apps in the state ({names}), so which app the token was "
                         "issued for is ambiguous; fix the state")


def sources_by_aud(graph: TrustGraph, audiences: Sequence[str]) -> list[App]:
    """The apps whose AUD tag is in the token's `aud`, in claim order, each once. TokenRejected when an AUD tag
    belongs to several apps: the sender is then not known."""
    found: dict[str, App] = {}
    for aud in audiences:
        apps = graph.apps_with_aud(aud)
        if len(apps) > 1:
            raise _ambiguous(f"the AUD tag {aud[:16]}...", apps)
        for app in apps:
            found.setdefault(app.name, app)
    return list(found.values())


def saas_source(graph: TrustGraph, issuer_prefix: str, iss: object) -> App | None:
    """The SaaS app whose OIDC issuer is exactly `iss` (`<issuer_prefix><client_id>`), if any; TokenRejected
    when several apps have that client_id."""
    if not isinstance(iss, str) or not iss.startswith(issuer_prefix):
        return None
    client_id = iss[len(issuer_prefix):]
    apps = graph.apps_with_client_id(client_id) if client_id and "/" not in client_id else ()
    if len(apps) > 1:
        raise _ambiguous(f"the client_id {client_id[:40]!r}", apps)
    return apps[0] if apps and apps[0].type == "saas" else None


def unread_problem(graph: TrustGraph, target: App) -> str | None:
    """The fail-closed rule: why the target's trust was not read in full (None: it was).

    Bearing on a linked-app decision: the target's own record (type, uid, policies list) and every attached
    policy whose decision is non_identity or not known (unreadable, or a value Cloudflare does not document).
    A policy deciding allow/deny/bypass is evaluated by Access after (or apart from) Service Auth, so it cannot
    change whether a linked_app_token rule admits.
    """
    if target.unreadable:
        return f"cannot read {target.name} in full: {_first(target.unreadable)}"
    for policy in graph.attached_policies(target.name):
        if policy.unreadable and policy.decision not in _APART_FROM_SERVICE_AUTH:
            return f"cannot read policy {policy.name!r} attached to {target.name}: {_first(policy.unreadable)}"
    return None


def _first(problems: Sequence[str]) -> str:
    more = len(problems) - 1
    return problems[0] + (f" (and {more} more)" if more else "")


def sender_problem(source: App, flow: str) -> str | None:
    """Why `source` cannot have sent this token through this flow (None: it can)."""
    if not can_send_linked_token(source.type):
        if source.unreadable:
            return f"cannot read the sending app {source.name} in full: {_first(source.unreadable)}"
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
    unread = unread_problem(graph, target)
    if unread:
        return Grant(False, f"{unread}; the verifier grants only on trust it read in full", first)
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
