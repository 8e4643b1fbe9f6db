"""Deployed state -> trust graph: `pulumi stack export`, `pulumi stack output --json`, or raw resources.

No Pulumi import: reading state is plain JSON. Trust is derived from the Cloudflare resources themselves
(applications, reusable policies, policies inline on an app), whether linked-apps made them or not. Secret
values (ciphertext objects) never break reading: a secret field reads as absent, which grants nothing.
The CrossGuard pack feeds `graph_from_resources` with the resources of a preview, so both see one model.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..errors import StateError
from ..model.graph import App, Policy, Rule, TrustGraph, links_from_policies
from ..model.rules import LINKED_APP_TOKEN, NON_IDENTITY, linked_policy_name

APP_TYPE = "cloudflare:index/zeroTrustAccessApplication:ZeroTrustAccessApplication"
POLICY_TYPE = "cloudflare:index/zeroTrustAccessPolicy:ZeroTrustAccessPolicy"
SERVICE_TOKEN_TYPE = "cloudflare:index/zeroTrustAccessServiceToken:ZeroTrustAccessServiceToken"
STACK_TYPE = "pulumi:pulumi:Stack"
_SECRET_SIG = "4dabf18193072939515e22adb298388d"
UNKNOWN_TYPE = "unknown"
"""The type of an app whose stack outputs do not say: no rule lets it receive or send linked-app trust."""


def is_secret(value: Any) -> bool:
    return isinstance(value, Mapping) and _SECRET_SIG in value


def _get(props: Mapping[str, Any], *keys: str) -> Any:
    """The first present, non-secret value among camelCase/snake_case spellings."""
    for key in keys:
        value = props.get(key)
        if value is not None and not is_secret(value):
            return value
    return None


def _str(props: Mapping[str, Any], *keys: str) -> str | None:
    value = _get(props, *keys)
    return value if isinstance(value, str) and value else None


def _precedence(value: Any, position: int) -> int:
    """An attachment's precedence; a missing or nonsensical one falls back to its place in the list."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) < 2**31:
        return int(value)
    return position


def _rules(raw: Any) -> tuple[Rule, ...]:
    rules: list[Rule] = []
    for entry in raw if isinstance(raw, list) else ():
        if not isinstance(entry, Mapping):
            continue
        for selector, body in entry.items():
            if body is None:
                continue  # engine state may spell out every selector key; unset ones are null
            name = _snake(selector)
            uid = None
            if name == LINKED_APP_TOKEN and isinstance(body, Mapping):
                uid = _str(body, "appUid", "app_uid")
                uid = uid.lower() if uid else None
            rules.append((name, uid))
    return tuple(rules)


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


def _policy(pid: str, props: Mapping[str, Any], *, inline: bool) -> Policy:
    return Policy(
        id=pid,
        name=_str(props, "name") or pid,
        decision=_str(props, "decision") or "",
        include=_rules(_get(props, "includes", "include")),
        require=_rules(_get(props, "requires", "require")),
        exclude=_rules(_get(props, "excludes", "exclude")),
        inline=inline,
    )


def _disambiguate(apps: dict[str, App], app_props: dict[str, Mapping[str, Any]], name: str, uid: str | None,
                  count: int) -> str:
    """Cloudflare does not make app names unique. Two apps sharing one must never be mistaken for each other (a
    verdict on the wrong app could grant), so neither keeps the bare name: each is `name [uid]`, and a question
    by the bare name finds no app and lists both."""
    if count == 2:
        first = apps.pop(name)
        renamed = f"{name} [{first.uid or 'no uid'}]"
        apps[renamed] = replace(first, name=renamed)
        app_props[renamed] = app_props.pop(name)
    return f"{name} [{uid or f'no uid #{count}'}]"


def graph_from_resources(
    resources: Iterable[Mapping[str, Any]],
    *,
    team_domain: str | None = None,
    known_apps: Iterable[App] = (),
) -> TrustGraph:
    """Build the trust graph from resources `{"type", "id", "props"}` (props camelCase, as in engine state).

    `known_apps` (e.g. the stack's `apps` output) adds unmanaged apps that are not resources here, so
    links from them carry a name rather than a bare uid.
    """
    apps: dict[str, App] = {}
    app_props: dict[str, Mapping[str, Any]] = {}
    policies: dict[str, Policy] = {}
    named: dict[str, int] = {}
    service_tokens: dict[str, str] = {}
    for res in resources:
        typ, props = res.get("type"), res.get("props")
        props = props if isinstance(props, Mapping) else {}
        rid = _str(res, "id") or _str(props, "id")
        if typ == SERVICE_TOKEN_TYPE:
            # Output `clientId` is what an origin's assertion carries as `common_name` (only clientSecret is secret).
            client_id = _str(props, "clientId", "client_id")
            if client_id:
                service_tokens[client_id] = _str(props, "name") or _str(res, "name") or rid or client_id
        elif typ == POLICY_TYPE and rid:
            policies[rid] = _policy(rid, props, inline=False)
        elif typ == APP_TYPE:
            name = _str(props, "name") or _str(res, "name") or rid or "?"
            uid = (rid or _str(props, "uid") or "").lower() or None
            named[name] = named.get(name, 0) + 1
            if named[name] > 1:
                name = _disambiguate(apps, app_props, name, uid, named[name])
            saas = _get(props, "saasApp", "saas_app")
            apps[name] = App(
                name=name,
                type=_str(props, "type") or "self_hosted",
                uid=uid,
                aud=_str(props, "aud"),
                domain=_str(props, "domain"),
                client_id=_str(saas, "clientId", "client_id") if isinstance(saas, Mapping) else None,
                managed=True,
            )
            app_props[name] = props

    attachments: dict[str, tuple[tuple[str, int], ...]] = {}
    for name, props in app_props.items():
        attached: list[tuple[str, int]] = []
        listed = _get(props, "policies")
        for i, entry in enumerate(listed if isinstance(listed, list) else ()):
            if not isinstance(entry, Mapping):
                continue
            pid = _str(entry, "id")
            precedence = _precedence(entry.get("precedence"), i + 1)
            if pid and pid in policies:
                attached.append((pid, precedence))
            elif _get(entry, "decision") or _get(entry, "includes", "include"):
                pid = pid or f"inline:{name}:{i}"
                policies[pid] = _policy(pid, entry, inline=True)
                attached.append((pid, precedence))
            elif pid:
                attached.append((pid, precedence))  # a policy outside this state: it grants nothing we can see
        attachments[name] = tuple(sorted(attached, key=lambda a: a[1]))

    by_uid = {a.uid: name for name, a in apps.items() if a.uid}
    for extra in known_apps:
        same = apps.get(by_uid.get(extra.uid, "")) if extra.uid else None
        if same is not None:
            # The same app as a resource: only fill what the resource hides (e.g. a saasApp kept secret whole).
            apps[same.name] = replace(same, aud=same.aud or extra.aud, client_id=same.client_id or extra.client_id,
                                      domain=same.domain or extra.domain)
        elif extra.name not in apps and not extra.managed:
            apps[extra.name] = extra
    links, unknown = links_from_policies(apps.values(), policies, attachments)
    return TrustGraph(apps.values(), links, policies=policies, attachments=attachments,
                      team_domain=team_domain, unknown_uids=unknown, service_tokens=service_tokens)


def _apps_output(apps: Any, *, managed_default: bool) -> list[App]:
    out: list[App] = []
    if not isinstance(apps, Mapping):
        return out
    for name, entry in apps.items():
        if not isinstance(entry, Mapping):
            continue
        uid = _str(entry, "uid")
        out.append(App(
            name=str(name),
            # No type, no trust: only a declared self-hosted app may grant, so an app whose type the outputs do
            # not give neither receives nor sends (the program always exports it; hand-made files may not).
            type=_str(entry, "type") or UNKNOWN_TYPE,
            uid=uid.lower() if uid else None,
            aud=_str(entry, "aud"),
            domain=_str(entry, "domain"),
            client_id=_str(entry, "client_id", "clientId"),
            managed=entry["managed"] if isinstance(entry.get("managed"), bool) else managed_default,
        ))
    return out


def graph_from_export(doc: Mapping[str, Any]) -> TrustGraph:
    """A `pulumi stack export` document (version 3)."""
    deployment = doc.get("deployment")
    if not isinstance(deployment, Mapping):
        raise StateError("not a `pulumi stack export` document: it has no `deployment` object")
    resources = deployment.get("resources") or []
    if not isinstance(resources, list):
        raise StateError("`deployment.resources` is not a list")
    rows: list[dict[str, Any]] = []
    team_domain = None
    known: list[App] = []
    for res in resources:
        if not isinstance(res, Mapping):
            continue
        typ = res.get("type")
        props = res.get("outputs") if isinstance(res.get("outputs"), Mapping) else res.get("inputs") or {}
        if typ == STACK_TYPE:
            team_domain = _str(props, "team_domain")
            known = _apps_output(_get(props, "apps"), managed_default=False)
        elif typ in (APP_TYPE, POLICY_TYPE, SERVICE_TOKEN_TYPE):
            name = str(res.get("urn", "")).rsplit("::", 1)[-1]
            rows.append({"type": typ, "id": res.get("id"), "props": props, "name": name})
    return graph_from_resources(rows, team_domain=team_domain, known_apps=known)


def graph_from_outputs(doc: Mapping[str, Any]) -> TrustGraph:
    """`pulumi stack output --json` of a linked-apps program: `team_domain`, `apps`, `links`."""
    if "apps" not in doc or not isinstance(doc.get("apps"), Mapping):
        raise StateError("not linked-apps stack outputs: there is no `apps` object (expected team_domain, apps, links)")
    apps = _apps_output(doc["apps"], managed_default=True)
    by_name = {a.name: a for a in apps}
    sources: dict[str, tuple[str, dict[str, None]]] = {}  # policy id -> (its source's name, uids it names)
    attachments: dict[str, dict[str, None]] = {}  # target -> policy ids, in order (dicts: ordered sets)
    links = doc.get("links") or []
    if not isinstance(links, list):
        raise StateError("`links` is not a list (expected [{from, to, policy_id}, ...])")
    for i, link in enumerate(links):
        if not isinstance(link, Mapping):
            continue
        src, dst = by_name.get(str(link.get("from"))), str(link.get("to"))
        if src is None or not src.uid or dst not in by_name:
            raise StateError(f"links[{i}]: {link.get('from')!r} -> {dst!r} names an app that is not in `apps` with a uid")
        pid = _str(link, "policy_id") or f"link:{src.name}"
        sources.setdefault(pid, (src.name, {}))[1][src.uid] = None
        attachments.setdefault(dst, {})[pid] = None
    policies = {pid: Policy(pid, linked_policy_name(name), NON_IDENTITY,
                            include=tuple((LINKED_APP_TOKEN, uid) for uid in uids))
                for pid, (name, uids) in sources.items()}
    frozen = {k: tuple((pid, n) for n, pid in enumerate(v, start=1)) for k, v in attachments.items()}
    links, unknown = links_from_policies(apps, policies, frozen)
    return TrustGraph(apps, links, policies=policies, attachments=frozen,
                      team_domain=_str(doc, "team_domain"), unknown_uids=unknown)


def read_state(path: Path | str) -> TrustGraph:
    """Read a stack export or a stack output file ('-': standard input), whichever it is; StateError names the
    file and the fix."""
    stdin = str(path) == "-"
    name = "standard input" if stdin else str(path)
    try:
        text = sys.stdin.read() if stdin else Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise StateError(f"{name}: cannot be read ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise StateError(f"{name}: not UTF-8 text (byte {exc.start}); give the output of `pulumi stack export` "
                         "or `pulumi stack output --json`") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise StateError(f"{name}: not JSON (line {exc.lineno}: {exc.msg}); give the output of "
                         "`pulumi stack export` or `pulumi stack output --json`") from None
    if not isinstance(doc, Mapping):
        raise StateError(f"{name}: expected a JSON object from `pulumi stack export` or `pulumi stack output --json`")
    try:
        return graph_from_export(doc) if "deployment" in doc else graph_from_outputs(doc)
    except StateError as exc:
        raise StateError(f"{name}: {exc}") from None


def read_stack(stack: str, work_dir: Path | str) -> TrustGraph:
    """Live state: `pulumi stack export` of `stack` through the Automation API (needs the Pulumi CLI on PATH)."""
    import shutil

    if shutil.which("pulumi") is None:
        raise StateError(f"--stack {stack}: reading live state needs the Pulumi CLI on PATH, and it is not there; "
                         "install it, or run `pulumi stack export > state.json` where it is and pass --state state.json")
    from pulumi import automation

    try:
        deployment = automation.select_stack(stack_name=stack, work_dir=str(work_dir)).export_stack()
    except Exception as exc:  # noqa: BLE001 - the CLI's own message says what is wrong (login, stack name, ...)
        raise StateError(f"--stack {stack}: cannot export the stack's state: {str(exc).strip()[:500]}") from None
    return graph_from_export({"version": deployment.version, "deployment": deployment.deployment})
