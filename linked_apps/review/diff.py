"""Trust diff: which app gains or loses the right to call which, desired against deployed.

Pure module: no Pulumi, no I/O. Both sides are `TrustGraph`s (desired: `Topology.trust_graph()`; deployed:
`state.read_state`), so the diff never re-derives trust from config or state. Apps are matched by their
Cloudflare name, which is how an app managed elsewhere (an existing uid, a lookup, another stack) appears on
both sides.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..model.graph import App, TrustGraph
from ..model.rules import Violation

Edge = tuple[str, str]
"""`(source, target)`: source may call target on behalf of its user."""


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
    pending: tuple[Edge, ...] = ()
    """Desired links of a cycle not deployed yet: they attach on the next `pulumi up` (`rules.deferred_links`)."""

    @property
    def changed(self) -> bool:
        """Trust changes: an edge or an app is added, pending or removed (what `--exit-code` reports)."""
        return bool(self.added or self.pending or self.removed or self.apps_added or self.apps_removed)

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
    )
