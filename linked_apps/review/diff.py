"""Trust diff: which app gains or loses the right to call which, desired against deployed.

Pure module: no Pulumi, no I/O. Both sides are `TrustGraph`s (desired: `Topology.trust_graph()`; deployed:
`state.read_state`), so the diff never re-derives trust from config or state. Apps are matched by their
Cloudflare name, which is how an app managed elsewhere (an existing uid, a lookup, another stack) appears on
both sides; then, for an app on both sides, what the name stands for is compared too (uid, lookup, stack
reference, managed-ness, type): a name kept while its identity changes is a trust change, not "no change".
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..model.graph import App, Link, TrustGraph
from ..model.rules import Violation, shown

Edge = tuple[str, str]
"""`(source, target)`: source may call target on behalf of its user."""


@dataclass(frozen=True, slots=True)
class AppChange:
    """An app on both sides whose identity or kind differs: `field` went from `before` (deployed) to `after`."""

    app: str
    field: str
    before: object
    after: object

    def as_dict(self) -> dict[str, object]:
        return {"app": self.app, "field": self.field, "from": self.before, "to": self.after}


IDENTITY_FIELDS = ("managed", "type", "uid", "lookup", "stack")
"""What an app name stands for, in the order changes are reported."""


def app_changes(desired: App, deployed: App) -> list[AppChange]:
    """What changed behind one name. A uid is compared where both sides know it (an app this stack creates has
    none until it exists, and keeps its deployed one); a lookup or stack reference wherever either side has one."""
    found = []
    for name in IDENTITY_FIELDS:
        before, after = getattr(deployed, name), getattr(desired, name)
        if name == "uid" and (before is None or after is None):
            continue
        if name in ("lookup", "stack") and before is None and after is None:
            continue
        if before != after:
            found.append(AppChange(desired.name, name, before, after))
    return found


@dataclass(frozen=True, slots=True)
class TrustDiff:
    """Edges and apps added (desired only), removed (deployed only) and unchanged, plus the plan's violations."""

    added: tuple[Edge, ...]
    removed: tuple[Edge, ...]
    unchanged: tuple[Edge, ...]
    apps_added: tuple[App, ...]
    apps_removed: tuple[App, ...]
    apps: dict[str, App]
    """Every app on either side by name; the desired side's facts win where both have the app."""
    violations: tuple[Violation, ...] = ()
    unknown_uids: tuple[tuple[str, str], ...] = ()
    """Deployed `(target, uid)` linked_app_token rules naming no app on either side."""
    apps_changed: tuple[AppChange, ...] = ()
    """Apps on both sides whose uid, lookup, stack reference, managed-ness or type differs."""
    pending: tuple[Edge, ...] = ()
    """Desired links of a cycle not deployed yet: they attach on the next `pulumi up` (`rules.deferred_links`)."""

    @property
    def changed(self) -> bool:
        """Trust changes: an edge or an app is added, pending or removed, or a name now stands for another app
        (what `--exit-code` reports)."""
        return bool(self.added or self.pending or self.removed or self.apps_added or self.apps_removed
                    or self.apps_changed)

    def as_dict(self) -> dict[str, object]:
        def edges(items: Iterable[Edge]) -> list[dict[str, str]]:
            return [{"from": a, "to": b} for a, b in items]

        def apps(items: Iterable[App]) -> list[dict[str, object]]:
            return [{"name": a.name, "type": a.type, "managed": a.managed} for a in items]

        return {
            "added": edges(self.added),
            "pending": edges(self.pending),
            "removed": edges(self.removed),
            "unchanged": edges(self.unchanged),
            "apps_added": apps(self.apps_added),
            "apps_removed": apps(self.apps_removed),
            "apps_changed": [c.as_dict() for c in self.apps_changed],
            "violations": [v.as_dict() for v in self.violations],
            "unknown_uids": [{"app": app, "uid": uid} for app, uid in self.unknown_uids],
            "changed": self.changed,
        }


def diff_trust(desired: TrustGraph, deployed: TrustGraph, violations: Sequence[Violation] = (),
               deferred: Iterable[Edge] = ()) -> TrustDiff:
    """Compare desired trust with deployed trust; `violations` are the desired plan's rule violations.

    `deferred` are the desired links that break a cycle: one not deployed yet is `pending` (the next `pulumi up`
    attaches it), not `added`.

    A deployed rule whose uid names no deployed app but names an app of the desired side by uid (an existing
    app the state does not describe) counts as an edge from that app (and the app as deployed), rather than a phantom add plus a warning.
    """
    want = desired.edges()
    have = set(deployed.edges())
    deployed_apps = dict(deployed.apps)
    unknown: list[tuple[str, str]] = []
    for target, uid in deployed.unknown_uids:
        source = desired.by_uid(uid)
        if source is not None:
            have.add((source.name, target))
            deployed_apps.setdefault(source.name, source)
        else:
            unknown.append((target, uid))

    apps = {**deployed_apps, **desired.apps}
    pending = (want - have) & set(deferred)
    return TrustDiff(
        added=tuple(sorted(want - have - pending)),
        pending=tuple(sorted(pending)),
        removed=tuple(sorted(have - want)),
        unchanged=tuple(sorted(want & have)),
        apps_added=tuple(desired.apps[n] for n in sorted(desired.apps.keys() - deployed_apps.keys())),
        apps_removed=tuple(deployed_apps[n] for n in sorted(deployed_apps.keys() - desired.apps.keys())),
        apps=apps,
        violations=tuple(violations),
        unknown_uids=tuple(sorted(set(unknown))),
        apps_changed=tuple(c for n in sorted(desired.apps.keys() & deployed_apps.keys())
                           for c in app_changes(desired.apps[n], deployed_apps[n])),
    )


def resolve_identities(desired: TrustGraph, deployed: TrustGraph) -> tuple[TrustGraph, list[Violation]]:
    """The desired graph with identities the deployed side resolves, for judging assertions by identity.

    An app managed here that is already deployed keeps its deployed uid. Two desired apps that so turn out to share
    a uid are one Cloudflare app under two names (e.g. `crm` managed here, and `hr-portal: {uid: <crm's uid>}`): a
    `same-app` violation names both, and in the returned graph each one's links are the links of every name it has,
    so an assertion about `crm` sees what `hr-portal` is given.
    """
    names_of: dict[str, list[str]] = {}
    for app in desired.apps.values():
        before = deployed.apps.get(app.name)
        uid = app.uid or (before.uid if app.managed and before is not None and before.managed else None)
        if uid:
            names_of.setdefault(uid, []).append(app.name)
    aliases: dict[str, list[str]] = {}
    violations = []
    for uid, names in sorted(names_of.items()):
        if len(names) > 1:
            for name in names:
                aliases[name] = names
            violations.append(Violation(
                "same-app",
                f"apps {' and '.join(shown(n) for n in names)} are one Cloudflare app (uid {uid}, as deployed): trust "
                "given to one is given to the other; declare the app once",
                tuple(names)))
    if not aliases:
        return desired, violations
    links = {(a, b): link for link in desired.links
             for a in aliases.get(link.source, [link.source]) for b in aliases.get(link.target, [link.target])}
    return TrustGraph(desired.apps.values(), [Link(a, b, l.policy_id, l.policy_name, l.description)
                                              for (a, b), l in links.items()],
                      team_domain=desired.team_domain), violations
