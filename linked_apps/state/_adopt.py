"""An existing account as a stack config: the apps and links of `cloudflare:ACCOUNT_ID` in this project's schema.

Pure: it reads an `Account` (the API's JSON) and returns the config and the list of what the schema cannot say.
Nothing is dropped silently: every policy, rule or app left out is named in `notes`, which the command prints
and writes into the file's header.

How the account maps:
- a self-hosted app, or an OIDC SaaS app, becomes a managed entry with `importId`: the next `pulumi up` adopts
  it (Pulumi's `import` option) rather than creating a new one; `--existing` declares apps by uid instead (except
  the apps that receive links: a policy reaches an app only through its own policy list, so they stay managed);
- a link is a `linked_app_token` rule in the `include` of a `non_identity` policy with nothing else in it (no
  other selector, no `require`, no `exclude`): exactly what the stack's own `Linked app token: A` policy says;
- any other reusable policy stays attached as it is, by id (`policyIds`, in precedence order), so its exact
  rules keep applying; one that also names linked apps under extra conditions is noted, as its trust is not a
  plain link;
- an app-scoped (inline) policy cannot be referenced by id: a pure linked one becomes links, any other is noted
  (the first `pulumi up` would detach it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, get_args

from ..model.rules import LINKED_APP_TOKEN, NON_IDENTITY, app_name_problem, printable
from ..model.topology import NAMESPACE, AppType
from ._cloudflare import Account

_KNOWN_TYPES = frozenset(get_args(AppType))


@dataclass
class Adoption:
    account_id: str
    team_domain: str
    apps: dict[str, dict[str, Any]] = field(default_factory=dict)
    links: list[dict[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """What the schema cannot express, one sentence each."""
    afterwards: list[str] = field(default_factory=list)
    """What to clean up after the first `pulumi up` (linked-app policies the stack's own replace)."""

    def config(self) -> dict[str, Any]:
        return {
            f"{NAMESPACE}:accountId": self.account_id,
            f"{NAMESPACE}:teamDomain": self.team_domain,
            f"{NAMESPACE}:apps": self.apps,
            f"{NAMESPACE}:links": self.links,
        }

    def yaml(self, source: str) -> str:
        import yaml

        header = [
            f"# Written by `linked-apps import {source}` from the account's Access applications and policies.",
            "# Entries with `importId` adopt those existing applications on the next `pulumi up` (Pulumi's `import`",
            "# option): nothing is recreated. That `up` then sets each adopted app's policy list to the stack's:",
            "# its `policyIds`, then one `Linked app token: <app>` policy per app it trusts.",
        ]
        if self.notes:
            header.append("# Not expressed in this file (review each before `pulumi up`):")
            header += [f"#   - {_comment_safe(note)}" for note in self.notes]
        if self.afterwards:
            header.append("# After the first `pulumi up`:")
            header += [f"#   - {_comment_safe(step)}" for step in self.afterwards]
        body = yaml.safe_dump({"config": self.config()}, sort_keys=False, allow_unicode=False, width=120)
        return "\n".join(header) + "\n" + body


def adopt(account: Account, *, team_domain: str | None = None, existing: bool = False) -> Adoption:
    domain = team_domain or account.team_domain
    if not domain:
        from ..errors import StateError

        raise StateError(f"cloudflare:{account.account_id}: the account has no Zero Trust organization with an "
                         "auth_domain; give --team-domain (e.g. acme.cloudflareaccess.com)")
    result = Adoption(account.account_id, domain)
    reusable = {p.get("id"): p for p in account.policies if isinstance(p.get("id"), str)}
    by_uid: dict[str, str] = {}
    counts: dict[str, int] = {}
    for app in account.apps:
        name = app.get("name")
        if isinstance(name, str):
            counts[name] = counts.get(name, 0) + 1
    for app in account.apps:
        uid, name = _str(app, "id"), _str(app, "name")
        if uid and name and counts[name] == 1:
            by_uid[uid.lower()] = name

    targets: set[str] = set()
    per_app: dict[str, tuple[list[str], list[dict[str, str]]]] = {}
    for app in account.apps:
        uid, name = _str(app, "id"), _str(app, "name")
        if not uid or not name:
            result.notes.append(f"an application without an id or a name ({uid or name or 'unnamed'}): skipped")
            continue
        if counts[name] > 1:
            result.notes.append(f"{name!r} ({uid}): {counts[name]} applications share this name, and a stack "
                                "names each app once; rename them in Cloudflare and import again (until then "
                                "neither they nor the links into them are in the file)")
            continue
        unfit = app_name_problem(name)
        if unfit is not None:  # the config would refuse the key: say why here instead of writing a broken file
            result.notes.append(f"application {uid}: {unfit}; rename it in Cloudflare and import again (until then "
                                "neither it nor the links into it are in the file)")
            continue
        policy_ids, links = _policies(app, name, reusable, by_uid, result)
        per_app[name] = (policy_ids, links)
        targets.update(link["to"] for link in links)

    for app in account.apps:
        name = _str(app, "name")
        if name not in per_app:
            continue
        policy_ids, links = per_app[name]
        entry = _entry(app, name, policy_ids, manage=not existing or name in targets, notes=result.notes)
        if entry is None:
            for link in links:
                result.notes.append(f"link {link['from']} -> {name}: {name} cannot be managed here, so the stack "
                                    "cannot attach the policy")
            continue
        result.apps[name] = entry
        result.links += links
    known = set(result.apps)
    kept = []
    for link in sorted(result.links, key=lambda l: (l["from"], l["to"])):
        if link["from"] in known:
            kept.append(link)
        else:
            result.notes.append(f"link {link['from']} -> {link['to']}: {link['from']} is not in the file")
    result.links = kept
    return result


def _policies(app: Mapping[str, Any], name: str, reusable: Mapping[str, Mapping[str, Any]],
              by_uid: Mapping[str, str], result: Adoption) -> tuple[list[str], list[dict[str, str]]]:
    """The app's reusable non-link policies (ids, precedence order) and its links, noting what neither covers."""
    attached = [p for p in app.get("policies") or [] if isinstance(p, Mapping)]
    attached.sort(key=lambda p: p.get("precedence") if isinstance(p.get("precedence"), int) else 1 << 30)
    policy_ids: list[str] = []
    links: list[dict[str, str]] = []
    notes = result.notes
    for policy in attached:
        pid = _str(policy, "id") or "(no id)"
        full = reusable.get(pid, policy)
        label = f"policy {full.get('name') or pid!r} ({pid}) on {name}"
        sources = _pure_link_sources(full)
        if sources is not None:
            for uid in sources:
                source = by_uid.get(uid.lower())
                if source is None:
                    notes.append(f"{label}: trusts uid {uid}, which is no uniquely named app of the account")
                else:
                    links.append({"from": source, "to": name})
            step = (f"delete the reusable policy {full.get('name') or pid!r} ({pid}): the stack's own linked-app "
                    "policies replace it, and no adopted app keeps it attached")
            if pid in reusable and step not in result.afterwards:
                result.afterwards.append(step)
        elif pid in reusable:
            policy_ids.append(pid)
            if _names_linked_apps(full):
                notes.append(f"{label}: names linked apps together with other rules; kept attached as it is "
                             "(policyIds), not shown as links")
        else:
            notes.append(f"{label}: an app-scoped policy ({full.get('decision')}) cannot be referenced by id; the "
                         "first `pulumi up` would detach it: make it reusable in the dashboard and add its id to "
                         "policyIds")
    return policy_ids, links


def _pure_link_sources(policy: Mapping[str, Any]) -> list[str] | None:
    """The uids a policy trusts when it is exactly a linked-app policy (non_identity, only linked_app_token
    includes, no require or exclude); otherwise None."""
    include = policy.get("include")
    if policy.get("decision") != NON_IDENTITY or not isinstance(include, list) or not include:
        return None
    if policy.get("require") or policy.get("exclude"):
        return None
    uids = []
    for rule in include:
        body = rule.get(LINKED_APP_TOKEN) if isinstance(rule, Mapping) and len(rule) == 1 else None
        uid = body.get("app_uid") if isinstance(body, Mapping) else None
        if not isinstance(uid, str) or not uid:
            return None
        uids.append(uid)
    return uids


def _names_linked_apps(policy: Mapping[str, Any]) -> bool:
    return any(isinstance(rule, Mapping) and LINKED_APP_TOKEN in rule
               for key in ("include", "require", "exclude") for rule in policy.get(key) or [])


def _entry(app: Mapping[str, Any], name: str, policy_ids: list[str], *, manage: bool,
           notes: list[str]) -> dict[str, Any] | None:
    uid, typ = _str(app, "id"), _str(app, "type")
    if typ not in _KNOWN_TYPES:
        notes.append(f"{name!r} ({uid}): application type {typ!r} is not one this project knows; skipped")
        return None
    existing: dict[str, Any] = {"type": typ, "uid": uid}
    if _str(app, "aud"):
        existing["aud"] = app["aud"]
    if not manage:
        return existing
    entry: dict[str, Any] = {"type": typ, "importId": uid}
    if typ == "self_hosted":
        uris = [d.get("uri") for d in app.get("destinations") or []
                if isinstance(d, Mapping) and d.get("type", "public") == "public" and isinstance(d.get("uri"), str)]
        if _str(app, "domain") and len(uris) <= 1:
            entry["domain"] = app["domain"]
        elif uris:
            entry["destinations"] = uris
        else:
            notes.append(f"{name!r} ({uid}): a self-hosted app with no public domain or destination; declared by uid")
            return existing
    elif typ == "saas":
        saas = app.get("saas_app") if isinstance(app.get("saas_app"), Mapping) else {}
        uris = [u for u in saas.get("redirect_uris") or [] if isinstance(u, str)]
        if saas.get("auth_type") != "oidc" or not uris:
            notes.append(f"{name!r} ({uid}): a SaaS app that is not OIDC with redirect URIs (e.g. SAML); declared by "
                         "uid, not managed")
            return existing
        entry["redirectUris"] = uris
        for key, field_name in (("scopes", "scopes"), ("grant_types", "grantTypes"),
                                ("access_token_lifetime", "accessTokenLifetime")):
            if saas.get(key):
                entry[field_name] = saas[key]
    else:
        if policy_ids:
            notes.append(f"{name!r} ({uid}): a {typ} app is declared by uid; its policies stay as they are")
        return existing
    if policy_ids:
        entry["policyIds"] = policy_ids
    if _str(app, "session_duration"):
        entry["sessionDuration"] = app["session_duration"]
    return entry


def _str(doc: Mapping[str, Any], key: str) -> str | None:
    value = doc.get(key)
    return value if isinstance(value, str) and value else None


def _comment_safe(text: str) -> str:
    """One YAML comment line: `printable` escapes line breaks and every other character that could end the
    comment early or hide what it says."""
    return printable(text)
