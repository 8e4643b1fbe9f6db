"""The trust graph: the one currency between declaring trust, reviewing it and verifying tokens against it.

Pure module: no Pulumi, no I/O. A graph is built from the desired topology (`Topology.trust_graph()`) or from
deployed resources (`state.graph_from_resources`); plan, diff, the questions and the verifier read only this.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ..errors import UnknownAppError
from .rules import LINKED_APP_TOKEN, NON_IDENTITY, UUID

Rule = tuple[str, "str | None"]
"""A policy rule as `(selector, app_uid)`; app_uid is set for linked_app_token rules only."""


@dataclass(frozen=True, slots=True)
class App:
    name: str
    """The app's Cloudflare name (in config: its key)."""
    type: str
    uid: str | None = None
    aud: str | None = None
    """The AUD tag, as it appears in the `aud` claim of the app's tokens."""
    domain: str | None = None
    client_id: str | None = None
    """SaaS OIDC client id; the app's tokens are issued by `.../sso/oidc/<client_id>`."""
    managed: bool = True
    unreadable: tuple[str, ...] = field(default=(), compare=False)
    """What of the app's own record (type, uid, policies list) could not be read, each naming its field; an app
    with any such part never grants (README: the fail-closed rule)."""
    lookup: str | None = None
    """For an app managed elsewhere and found by its Cloudflare name at deploy time: that name."""
    stack: str | None = None
    """For an app another stack manages: `<stack> <output>` or `<stack> apps.<app>`, where its uid is read."""

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"name": self.name, "type": self.type, "managed": self.managed, "uid": self.uid,
                                  "aud": self.aud, "domain": self.domain, "client_id": self.client_id}
        return out | {k: v for k, v in (("lookup", self.lookup), ("stack", self.stack)) if v is not None}


@dataclass(frozen=True, slots=True)
class Policy:
    id: str
    name: str
    decision: str
    include: tuple[Rule, ...] = ()
    require: tuple[Rule, ...] = ()
    exclude: tuple[Rule, ...] = ()
    inline: bool = False
    """Defined inside an app's `policies` list rather than as a reusable policy."""
    unreadable: tuple[str, ...] = field(default=(), compare=False)
    """Parts of the policy that could not be read (a secret, a wrong shape, an unknown selector or decision),
    each naming its field. Such a policy never grants, and on a target it blocks every grant."""

    def linked_uids(self) -> frozenset[str]:
        return frozenset(uid for sel, uid in (*self.include, *self.require, *self.exclude)
                         if sel == LINKED_APP_TOKEN and uid)


@dataclass(frozen=True, slots=True)
class Link:
    """`source` may call `target` on behalf of its user."""

    source: str
    target: str
    policy_id: str | None = None
    policy_name: str | None = field(default=None, compare=False)
    description: str | None = field(default=None, compare=False)

    @property
    def edge(self) -> tuple[str, str]:
        return (self.source, self.target)

    def as_dict(self) -> dict[str, object]:
        return {"from": self.source, "to": self.target, "policy_id": self.policy_id, "policy_name": self.policy_name,
                "description": self.description}


class TrustGraph:
    """Apps (by Cloudflare name), the links between them and, for deployed state, the policies behind them."""

    def __init__(
        self,
        apps: Iterable[App],
        links: Iterable[Link],
        *,
        policies: Mapping[str, Policy] | None = None,
        attachments: Mapping[str, tuple[tuple[str, int], ...]] | None = None,
        team_domain: str | None = None,
        unknown_uids: Iterable[tuple[str, str]] = (),
        shared_names: Mapping[str, Iterable[str]] | None = None,
        attachments_recorded: bool = True,
        service_tokens: Mapping[str, str] | None = None,
    ) -> None:
        self.apps: dict[str, App] = {a.name: a for a in apps}
        self.links: tuple[Link, ...] = tuple(links)
        self.policies: dict[str, Policy] = dict(policies or {})
        self.attachments: dict[str, tuple[tuple[str, int], ...]] = dict(attachments or {})
        """App name -> its attached `(policy id, precedence)`, in precedence order."""
        self.attachments_recorded = attachments_recorded
        """False when the source holds only the linked-app policies (stack outputs): precedences are then
        positions among those, not what Access evaluates."""
        self.team_domain = team_domain
        self.unknown_uids: tuple[tuple[str, str], ...] = tuple(unknown_uids)
        """`(target app, uid)` for linked_app_token rules naming no app in the graph."""
        self.shared_names: dict[str, tuple[str, ...]] = {k: tuple(v) for k, v in (shared_names or {}).items()}
        """A Cloudflare name several apps share -> the names they are known by here (`name [uid]`)."""
        self.service_tokens: dict[str, str] = dict(service_tokens or {})
        """Deployed Access service tokens: client id (an assertion's `common_name`) -> the token's name."""
        # Every index keeps all apps under a key: a duplicate is an ambiguity to report, never a silent pick.
        self._by_uid = _index((a.uid, a) for a in self.apps.values() if a.uid)
        self._by_aud = _index((a.aud, a) for a in self.apps.values() if a.aud)
        self._by_domain = _index((a.domain.lower(), a) for a in self.apps.values() if a.domain)
        self._by_client_id = _index((a.client_id, a) for a in self.apps.values() if a.client_id)
        self._into: dict[str, list[Link]] = {}
        self._out: dict[str, list[Link]] = {}
        for link in self.links:
            self._into.setdefault(link.target, []).append(link)
            self._out.setdefault(link.source, []).append(link)

    # -- lookups --------------------------------------------------------------------------------------------
    def find(self, ref: str) -> App:
        """An app by Cloudflare name, uid, or domain; UnknownAppError names the near misses, or every candidate
        when the reference fits more than one app (a uid fits exactly one, or the state is ambiguous)."""
        key = ref.strip().lower()
        if UUID.match(key) and key in self._by_uid:
            return self._one(ref, self._by_uid[key], "uid")
        host = key.removeprefix("https://").removeprefix("http://").rstrip("/")
        found: dict[str, App] = {}
        if ref in self.apps:
            found[ref] = self.apps[ref]
        for name in self.shared_names.get(ref, ()):
            found[name] = self.apps[name]
        for app in (*self._by_uid.get(key, ()), *self._by_domain.get(host, ())):
            found[app.name] = app
        if not found:
            hint = difflib.get_close_matches(ref, list(self.apps), n=3)
            known = ", ".join(hint or sorted(self.apps)[:10]) or "none"
            raise UnknownAppError(f"no app named {ref!r} (by name, uid or domain); known apps: {known}")
        return self._one(ref, tuple(found.values()), "name, uid or domain")

    @staticmethod
    def _one(ref: str, apps: tuple[App, ...], by: str) -> App:
        if len(apps) == 1:
            return apps[0]
        listed = "; ".join(f"{a.name} (uid {a.uid or 'unknown'}, domain {a.domain or 'none'})" for a in apps[:10])
        raise UnknownAppError(f"{ref!r} is ambiguous: by {by} it fits {len(apps)} apps in the state: {listed}; "
                              "ask by uid")

    def by_uid(self, uid: str) -> App | None:
        """The one app with this uid (None when none or, in an ambiguous state, several have it)."""
        return _only(self._by_uid.get(uid.lower(), ()))

    def by_aud(self, aud: str) -> App | None:
        return _only(self._by_aud.get(aud, ()))

    def by_client_id(self, client_id: str) -> App | None:
        return _only(self._by_client_id.get(client_id, ()))

    def apps_with_aud(self, aud: str) -> tuple[App, ...]:
        """Every app whose AUD tag is `aud` (more than one: the state is ambiguous about who sent a token)."""
        return self._by_aud.get(aud, ())

    def apps_with_client_id(self, client_id: str) -> tuple[App, ...]:
        return self._by_client_id.get(client_id, ())

    def links_into(self, name: str) -> list[Link]:
        return list(self._into.get(name, ()))

    def links_from(self, name: str) -> list[Link]:
        return list(self._out.get(name, ()))

    def edges(self) -> frozenset[tuple[str, str]]:
        return frozenset(link.edge for link in self.links)

    def attached_policies(self, name: str) -> list[Policy]:
        """The app's attached policies in precedence order (ids with no known policy are skipped)."""
        return [self.policies[pid] for pid, _ in self.attachments.get(name, ()) if pid in self.policies]

    def as_dict(self) -> dict[str, object]:
        return {
            "team_domain": self.team_domain,
            "apps": [self.apps[n].as_dict() for n in sorted(self.apps)],
            "links": [link.as_dict() for link in sorted(self.links, key=lambda l: l.edge)],
        }


def _index(pairs: Iterable[tuple[str, App]]) -> dict[str, tuple[App, ...]]:
    out: dict[str, tuple[App, ...]] = {}
    for key, app in pairs:
        out[key] = (*out.get(key, ()), app)
    return out


def _only(apps: tuple[App, ...]) -> App | None:
    return apps[0] if len(apps) == 1 else None


def links_from_policies(
    apps: Iterable[App],
    policies: Mapping[str, Policy],
    attachments: Mapping[str, tuple[tuple[str, int], ...]],
) -> tuple[list[Link], list[tuple[str, str]]]:
    """Derive links from deployed policies: a non_identity policy attached to B whose include names A's uid.

    Returns the links and the `(target, uid)` pairs whose uid is no app in the set. Links into apps that cannot
    carry the rule are kept (the rules report them); the verifier still never grants through them.
    """
    by_uid = {a.uid: a.name for a in apps if a.uid}
    links: list[Link] = []
    unknown: list[tuple[str, str]] = []
    for target in sorted(attachments):
        for pid, _precedence in attachments[target]:
            policy = policies.get(pid)
            if policy is None or policy.decision != NON_IDENTITY:
                continue
            for selector, uid in policy.include:
                if selector != LINKED_APP_TOKEN or not uid:
                    continue
                source = by_uid.get(uid)
                if source is None:
                    unknown.append((target, uid))
                else:
                    links.append(Link(source, target, policy.id, policy.name))
    return links, unknown
