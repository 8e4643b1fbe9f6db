"""Deployed state -> trust graph: `pulumi stack export`, `pulumi stack output --json`, or raw resources.

No Pulumi import: reading state is plain JSON. Trust is derived from the Cloudflare resources themselves
(applications, reusable policies, policies inline on an app), whether linked-apps made them or not. Secret
values (ciphertext objects, "[secret]") never break reading, and never grant: a field the verifier needs that is
secret, of the wrong shape or ambiguous is recorded on its app or policy (`unreadable`, naming the JSON path), and
the verifier denies on it. A document unusable as a whole is a StateError naming the path.
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
from ..model.rules import KNOWN_SELECTORS, LINKED_APP_TOKEN, NON_IDENTITY, POLICY_DECISIONS, UUID, linked_policy_name

APP_TYPE = "cloudflare:index/zeroTrustAccessApplication:ZeroTrustAccessApplication"
POLICY_TYPE = "cloudflare:index/zeroTrustAccessPolicy:ZeroTrustAccessPolicy"
SERVICE_TOKEN_TYPE = "cloudflare:index/zeroTrustAccessServiceToken:ZeroTrustAccessServiceToken"
STACK_TYPE = "pulumi:pulumi:Stack"
_SECRET_SIG = "4dabf18193072939515e22adb298388d"
UNKNOWN_TYPE = "unknown"
"""The type of an app whose stack outputs do not say: no rule lets it receive or send linked-app trust."""


MAX_STATE_BYTES = 64 * 1024 * 1024
"""A state file larger than this is refused (the export of a stack with thousands of apps is a few MB)."""
OUTPUT_SECRET = "[secret]"
"""How `pulumi stack output --json` prints a secret (nested ones included) without --show-secrets."""


def is_secret(value: Any) -> bool:
    return (isinstance(value, Mapping) and _SECRET_SIG in value) or value == OUTPUT_SECRET


def _kind(value: Any) -> str:
    if is_secret(value):
        return "a secret"
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "an object" if isinstance(value, Mapping) else "a number")


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


def _field(props: Mapping[str, Any], at: str, keys: tuple[str, ...], problems: list[str]) -> Any:
    """The value under any spelling of one field. Spellings that disagree, or a secret, are a problem naming the
    field (and read as absent): nothing unreadable is ever taken as empty."""
    present = [(k, props[k]) for k in keys if props.get(k) is not None]
    if not present:
        return None
    key, value = present[0]
    if any(other != value for _, other in present[1:]):
        problems.append(f"{at}: both " + " and ".join(f"`{k}`" for k, _ in present) + " are set, and differ")
        return None
    if is_secret(value):
        problems.append(f"{at}.{key} is a secret")
        return None
    return value


def _text(props: Mapping[str, Any], at: str, keys: tuple[str, ...], problems: list[str], *,
          required: bool) -> str | None:
    """A non-empty string field; anything else present (or nothing, when `required`) is a problem naming it."""
    before = len(problems)
    value = _field(props, at, keys, problems)
    if isinstance(value, str) and value:
        return value
    if len(problems) == before:  # not already reported as a secret or a disagreement
        if value is not None:
            problems.append(f"{at}.{keys[0]} is {_kind(value)}, not a non-empty string")
        elif required:
            problems.append(f"{at}.{keys[0]} is missing")
    return None


def _precedence(value: Any, position: int) -> int:
    """An attachment's precedence; a missing or nonsensical one falls back to its place in the list."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) < 2**31:
        return int(value)
    return position


_RULE_LISTS = (("include", ("includes", "include")), ("require", ("requires", "require")),
               ("exclude", ("excludes", "exclude")))


def _rules(raw: Any, at: str, kind: str, problems: list[str]) -> tuple[Rule, ...]:
    """One of a policy's rule lists. Each entry holds exactly one selector; a linked_app_token rule names its
    app by uid. An entry that is not so, or an unknown selector in require/exclude, is a problem naming it."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        problems.append(f"{at} is {_kind(raw)}, not a list of rules")
        return ()
    rules: list[Rule] = []
    for i, entry in enumerate(raw):
        here = f"{at}[{i}]"
        if not isinstance(entry, Mapping) or is_secret(entry):
            problems.append(f"{here} is {_kind(entry)}, not a rule object")
            continue
        # Engine state may spell out every selector key; unset ones are null.
        chosen = [(k, v) for k, v in entry.items() if v is not None]
        if len(chosen) != 1:
            problems.append(f"{here} has {len(chosen)} selectors set; a rule has exactly one")
            continue
        selector, body = chosen[0]
        name = _snake(str(selector))
        if name not in KNOWN_SELECTORS and kind != "include":
            problems.append(f"{here}: unknown selector `{selector}` in {kind}")
        uid = None
        if name == LINKED_APP_TOKEN:
            uid = _linked_uid(body, f"{here}.{selector}", problems)  # None: kept, so the rule is seen, never met
        rules.append((name, uid))
    return tuple(rules)


def _linked_uid(body: Any, at: str, problems: list[str]) -> str | None:
    if not isinstance(body, Mapping) or is_secret(body):
        problems.append(f"{at} is {_kind(body)}, not {{appUid: <uid>}}")
        return None
    uid = _text(body, at, ("appUid", "app_uid"), problems, required=True)
    if uid is None:
        return None
    if not UUID.match(uid.strip().lower()):
        problems.append(f"{at}.appUid {uid[:80]!r} is not an app uid (a UUID)")
        return None
    return uid.strip().lower()


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


def _policy(pid: str, props: Mapping[str, Any], at: str, *, inline: bool) -> Policy:
    problems: list[str] = []
    decision = _text(props, at, ("decision",), problems, required=True)
    if decision is not None and decision not in POLICY_DECISIONS:
        problems.append(f"{at}.decision {decision[:40]!r} is not a policy decision "
                        f"({', '.join(sorted(POLICY_DECISIONS))})")
    lists = {kind: _rules(_field(props, at, keys, problems), f"{at}.{keys[0]}", kind, problems)
             for kind, keys in _RULE_LISTS}
    return Policy(id=pid, name=_str(props, "name") or pid, decision=decision or "", inline=inline,
                  unreadable=tuple(problems), **lists)


def _unique_names(rows: list[tuple[str, str | None]]) -> tuple[list[str], dict[str, list[str]]]:
    """Cloudflare does not make app names unique. Apps sharing one are known here as `name [uid]`, kept apart
    from every other name (an app really named so included); a question by the shared name lists them all."""
    count: dict[str, int] = {}
    for name, _ in rows:
        count[name] = count.get(name, 0) + 1
    taken = {name for name, n in count.items() if n == 1}
    keys: list[str] = []
    shared: dict[str, list[str]] = {}
    for name, uid in rows:
        key = name
        if count[name] > 1:
            key = base = f"{name} [{uid or 'no uid'}]"
            n = 1
            while key in taken:
                n += 1
                key = f"{base} #{n}"
            shared.setdefault(name, []).append(key)
        taken.add(key)
        keys.append(key)
    return keys, shared


def _check_copy(policies: dict[str, Policy], pid: str, entry: Mapping[str, Any], at: str) -> None:
    """An attachment that repeats a reusable policy's decision or rules must repeat them exactly. Two versions
    of one policy (read at different moments, or hand-edited) leave unknown which one Access enforces: the
    policy is then unreadable, so it grants nothing and blocks grants on the app."""
    copy = _policy(pid, entry, at, inline=True)
    policy = policies[pid]
    given = [kind for kind, keys in (("decision", ("decision",)), *_RULE_LISTS)
             if any(entry.get(k) is not None for k in keys)]
    differ = [kind for kind in given if getattr(copy, kind) != getattr(policy, kind)]
    # Only what the copy gives is judged: a copy of the rules alone need not repeat the decision.
    unreadable = [p for p in copy.unreadable if "decision" in given or not p.startswith(f"{at}.decision ")]
    if differ or unreadable:
        why = (f"{at} repeats policy {pid!r} with another {', '.join(differ)}" if differ
               else f"{at} repeats policy {pid!r} unreadably: {'; '.join(unreadable)}")
        policies[pid] = replace(policy, unreadable=(*policy.unreadable, why))


def _attachments(name: str, props: Mapping[str, Any], at: str, policies: dict[str, Policy],
                 problems: list[str]) -> tuple[tuple[str, int], ...]:
    attached: list[tuple[str, int]] = []
    listed = _field(props, at, ("policies",), problems)
    if listed is not None and not isinstance(listed, list):
        problems.append(f"{at}.policies is {_kind(listed)}, not a list")
        listed = None
    for i, entry in enumerate(listed or ()):
        here = f"{at}.policies[{i}]"
        if not isinstance(entry, Mapping) or is_secret(entry):
            problems.append(f"{here} is {_kind(entry)}, not a policy reference or an inline policy")
            continue
        pid = _text(entry, here, ("id",), problems, required=False)
        precedence = _precedence(entry.get("precedence"), i + 1)
        inline = any(entry.get(k) is not None for k in ("decision", *(k for _, ks in _RULE_LISTS for k in ks)))
        if pid and pid in policies:  # a reusable policy (the provider or the API may copy its rules into the entry)
            if inline:
                _check_copy(policies, pid, entry, here)
            attached.append((pid, precedence))
        elif inline:
            pid = pid or f"inline:{name}:{i}"
            policies[pid] = _policy(pid, entry, here, inline=True)
            attached.append((pid, precedence))
        elif pid:
            attached.append((pid, precedence))  # a policy outside this state: it grants nothing we can see
        elif entry.get("id") is None:
            problems.append(f"{here} has neither an `id` nor rules")
    return tuple(sorted(attached, key=lambda a: a[1]))


def graph_from_resources(
    resources: Iterable[Mapping[str, Any]],
    *,
    team_domain: str | None = None,
    known_apps: Iterable[App] = (),
) -> TrustGraph:
    """Build the trust graph from resources `{"type", "id", "props"}` (props camelCase, as in engine state;
    optional `name` and `path`, where the resource sits in its document, for messages).

    Never raises on a field: what cannot be read is recorded on the app or policy (`unreadable`), naming the
    field, and the verifier denies on it. `known_apps` (e.g. the stack's `apps` output) adds unmanaged apps that
    are not resources here, so links from them carry a name rather than a bare uid.
    """
    policies: dict[str, Policy] = {}
    app_rows: list[tuple[str, str | None, Mapping[str, Any], str]] = []
    service_tokens: dict[str, str] = {}
    for res in resources:
        typ, props = res.get("type"), res.get("props")
        props = props if isinstance(props, Mapping) else {}
        at = str(res.get("path") or res.get("name") or typ)
        rid = _str(res, "id") or _str(props, "id")
        if typ == SERVICE_TOKEN_TYPE:
            # Output `clientId` is what an origin's assertion carries as `common_name` (only clientSecret is secret).
            client_id = _str(props, "clientId", "client_id")
            if client_id:
                service_tokens[client_id] = _str(props, "name") or _str(res, "name") or rid or client_id
        elif typ == POLICY_TYPE and rid:
            if rid in policies:  # two resources claim one id: neither can be trusted to be the deployed one
                twice = f"two policies in the state have id {rid!r}"
                policies[rid] = replace(policies[rid], unreadable=(*policies[rid].unreadable, twice))
            else:
                policies[rid] = _policy(rid, props, at, inline=False)
        elif typ == APP_TYPE:
            name = _str(props, "name") or _str(res, "name") or rid or "?"
            uid = (rid or _str(props, "uid") or "").lower() or None
            app_rows.append((name, uid, props, at))

    keys, shared = _unique_names([(name, uid) for name, uid, _, _ in app_rows])
    apps: dict[str, App] = {}
    attachments: dict[str, tuple[tuple[str, int], ...]] = {}
    for key, (_, uid, props, at) in zip(keys, app_rows):
        problems: list[str] = []
        typ = _text(props, at, ("type",), problems, required=True)
        if uid is None:
            problems.append(f"{at}: the app's `id` (its uid) is missing or secret")
        saas = _get(props, "saasApp", "saas_app")
        attachments[key] = _attachments(key, props, at, policies, problems)
        apps[key] = App(
            name=key,
            # No type, no trust: only a declared self-hosted app may grant, so an app whose type the state does
            # not give (missing, secret, not a string) neither receives nor sends.
            type=typ or UNKNOWN_TYPE,
            uid=uid,
            aud=_str(props, "aud"),
            domain=_str(props, "domain"),
            client_id=_str(saas, "clientId", "client_id") if isinstance(saas, Mapping) else None,
            managed=True,
            unreadable=tuple(problems),
        )

    by_uid: dict[str, list[str]] = {}
    for name, app in apps.items():
        if app.uid:
            by_uid.setdefault(app.uid, []).append(name)
    for extra in known_apps:
        same = by_uid.get(extra.uid or "", [])
        if len(same) == 1:
            # The same app as a resource: only fill what the resource hides (e.g. a saasApp kept secret whole).
            app = apps[same[0]]
            apps[app.name] = replace(app, aud=app.aud or extra.aud, client_id=app.client_id or extra.client_id,
                                     domain=app.domain or extra.domain)
        elif not same and extra.name not in apps and not extra.managed:
            apps[extra.name] = extra
    links, unknown = links_from_policies(apps.values(), policies, attachments)
    return TrustGraph(apps.values(), links, policies=policies, attachments=attachments,
                      team_domain=team_domain, unknown_uids=unknown, shared_names=shared,
                      service_tokens=service_tokens)


def _apps_output(apps: Any, at: str, *, managed_default: bool) -> list[App]:
    out: list[App] = []
    if not isinstance(apps, Mapping):
        return out
    for name, entry in apps.items():
        here = f"{at}.{name}"
        problems: list[str] = []
        if is_secret(entry):
            problems.append(f"{here} is a secret")
            entry = {}
        elif not isinstance(entry, Mapping):
            raise StateError(f"{here} is {_kind(entry)}; expected an object {{type, uid, aud, ...}}")
        uid = _str(entry, "uid")
        typ = _text(entry, here, ("type",), problems, required=True)
        out.append(App(
            name=str(name),
            # No type, no trust: only a declared self-hosted app may grant, so an app whose type the outputs do
            # not give neither receives nor sends (the program always exports it; hand-made files may not).
            type=typ or UNKNOWN_TYPE,
            uid=uid.lower() if uid else None,
            aud=_str(entry, "aud"),
            domain=_str(entry, "domain"),
            client_id=_str(entry, "client_id", "clientId"),
            managed=entry["managed"] if isinstance(entry.get("managed"), bool) else managed_default,
            unreadable=tuple(problems),
            lookup=_str(entry, "lookup"),
            stack=_str(entry, "stack"),
        ))
    return out


def _props_of(res: Mapping[str, Any], at: str) -> tuple[Mapping[str, Any], str]:
    """A resource's properties: its outputs (what is deployed), else its inputs; anything else is malformed."""
    for key in ("outputs", "inputs"):
        value = res.get(key)
        if value is None:
            continue
        if not isinstance(value, Mapping) or is_secret(value):
            raise StateError(f"{at}.{key} is {_kind(value)}; a resource's {key} is an object")
        return value, f"{at}.{key}"
    return {}, f"{at}.outputs"


def graph_from_export(doc: Mapping[str, Any]) -> TrustGraph:
    """A `pulumi stack export` document (version 3). Resources pending deletion (`delete: true`, left by a
    replacement) are not live and are skipped."""
    deployment = doc.get("deployment")
    if not isinstance(deployment, Mapping):
        raise StateError("not a `pulumi stack export` document: it has no `deployment` object")
    resources = deployment.get("resources") or []
    if not isinstance(resources, list):
        raise StateError("`deployment.resources` is not a list")
    rows: list[dict[str, Any]] = []
    team_domain = None
    known: list[App] = []
    for i, res in enumerate(resources):
        at = f"deployment.resources[{i}]"
        if not isinstance(res, Mapping):
            raise StateError(f"{at} is {_kind(res)}; a resource is an object")
        typ = res.get("type")
        if not isinstance(typ, str) or not typ:
            raise StateError(f"{at}.type is {_kind(typ) if 'type' in res else 'missing'}; every resource has a type")
        if typ not in (STACK_TYPE, APP_TYPE, POLICY_TYPE, SERVICE_TOKEN_TYPE) or res.get("delete") is True:
            continue
        props, where = _props_of(res, at)
        if typ == STACK_TYPE:
            team_domain = _str(props, "team_domain")
            known = _apps_output(_get(props, "apps"), f"{where}.apps", managed_default=False)
        else:
            name = str(res.get("urn", "")).rsplit("::", 1)[-1]
            rows.append({"type": typ, "id": res.get("id"), "props": props, "name": name, "path": where})
    return graph_from_resources(rows, team_domain=team_domain, known_apps=known)


def graph_from_outputs(doc: Mapping[str, Any]) -> TrustGraph:
    """`pulumi stack output --json` of a linked-apps program: `team_domain`, `apps`, `links`."""
    if is_secret(doc.get("apps")):
        raise StateError("the `apps` output is a secret (\"[secret]\"), so no app can be read; deploy with this "
                         "version of the program (it exports client ids unsecreted), run `pulumi stack output "
                         "--json --show-secrets`, or pass `pulumi stack export`")
    if "apps" not in doc or not isinstance(doc.get("apps"), Mapping):
        raise StateError("not linked-apps stack outputs: there is no `apps` object (expected team_domain, apps, links)")
    apps = _apps_output(doc["apps"], "apps", managed_default=True)
    by_name = {a.name: a for a in apps}
    sources: dict[str, tuple[str, dict[str, None]]] = {}  # policy id -> (its source's name, uids it names)
    attachments: dict[str, dict[str, None]] = {}  # target -> policy ids, in order (dicts: ordered sets)
    links = doc.get("links") or []
    if not isinstance(links, list):
        raise StateError(f"`links` is not a list (it is {_kind(links)}; expected [{{from, to, policy_id}}, ...])")
    for i, link in enumerate(links):
        if not isinstance(link, Mapping) or is_secret(link):
            raise StateError(f"links[{i}] is {_kind(link)}; expected an object {{from, to, policy_id}}")
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
    return TrustGraph(apps, links, policies=policies, attachments=frozen, attachments_recorded=False,
                      team_domain=_str(doc, "team_domain"), unknown_uids=unknown)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise StateError(f"the key {key[:80]!r} appears twice in one object; which one is deployed is ambiguous")
        out[key] = value
    return out


def _no_constant(name: str) -> Any:
    raise StateError(f"{name} is not a JSON number")


def parse_state(data: bytes, name: str) -> Mapping[str, Any]:
    """A state document from bytes: JSON, one object, no duplicate keys; StateError names `name` and the fix."""
    hint = "give the output of `pulumi stack export` or `pulumi stack output --json`"
    if len(data) > MAX_STATE_BYTES:
        raise StateError(f"{name}: larger than {MAX_STATE_BYTES // 2**20} MiB; {hint}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise StateError(f"{name}: not UTF-8 text (byte {exc.start}); {hint}") from None
    try:
        doc = json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise StateError(f"{name}: not JSON (line {exc.lineno}: {exc.msg}); {hint}") from None
    except RecursionError:
        raise StateError(f"{name}: nested too deeply to read (no Pulumi state nests so); {hint}") from None
    except StateError as exc:
        raise StateError(f"{name}: {exc}") from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise StateError(f"{name}: not readable JSON ({str(exc)[:120]}); {hint}") from None
    if not isinstance(doc, Mapping):
        raise StateError(f"{name}: expected a JSON object from `pulumi stack export` or `pulumi stack output --json`")
    return doc


def read_state(path: Path | str) -> TrustGraph:
    """Read a stack export or a stack output file ('-': standard input), whichever it is; StateError names the
    file, the JSON path of what is wrong and the fix. At most MAX_STATE_BYTES are read, so a file that never
    ends (/dev/zero) is refused, not waited for."""
    stdin = str(path) == "-"
    name = "standard input" if stdin else str(path)
    try:
        if stdin:
            data = sys.stdin.buffer.read(MAX_STATE_BYTES + 1)
        else:
            with open(path, "rb") as handle:
                data = handle.read(MAX_STATE_BYTES + 1)
    except OSError as exc:
        raise StateError(f"{name}: cannot be read ({exc.strerror or exc})") from None
    doc = parse_state(data, name)
    try:
        return graph_from_export(doc) if "deployment" in doc else graph_from_outputs(doc)
    except StateError as exc:
        raise StateError(f"{name}: {exc}") from None
    except (TypeError, AttributeError, KeyError, ValueError, RecursionError) as exc:
        # A shape no check above foresaw: the state is unusable as a whole, never a partial grant.
        raise StateError(f"{name}: a shape this reader does not understand ({type(exc).__name__}); "
                         "give the unedited output of `pulumi stack export` or `pulumi stack output --json`") from None


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
