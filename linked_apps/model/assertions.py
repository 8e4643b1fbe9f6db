"""Trust assertions: invariants written in the stack config, judged on any trust graph, desired or deployed.

Pure module: no Pulumi, no I/O. `Topology.violations()` runs them with the rules on the desired graph (so
`plan`, `pulumi preview` and `diff` report them), and `Topology.assertion_violations(graph)` runs them on a
graph read from deployed state (`linked-apps check --state`). A failed assertion is a `Violation` whose
message names the assertion, the apps, and the path that breaks it.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Collection, Sequence
from typing import TYPE_CHECKING

from ..errors import UnknownAppError
from .graph import Link, TrustGraph
from .paths import Reach, reach, render_path
from .rules import Violation

if TYPE_CHECKING:
    from .topology import AssertionSpec

RULE = "assertion"
"""The `rule` id of every failed assertion."""

_SHOWN = 8  # apps listed by name in one message before "and N more"


def unknown_app_problems(
    assertions: Sequence[AssertionSpec], known: Collection[str], where: str, key: str
) -> list[str]:
    """One problem per app an assertion names that is not in `known`, at its key path (`<key>[2].to`)."""
    problems: list[str] = []
    for i, assertion in enumerate(assertions):
        for field, name in assertion.app_refs():
            if name not in known:
                hint = difflib.get_close_matches(name, list(known), n=1)
                problems.append(f"{key}[{i}].{field}: no app named {name!r} {where}"
                                + (f"; did you mean `{hint[0]}`?" if hint else "; declare it or fix the name"))
    return problems


def check_assertions(
    assertions: Sequence[AssertionSpec], graph: TrustGraph, key: str, declared: Collection[str] | None = None
) -> list[Violation]:
    """One violation per assertion that does not hold on `graph`; `key` is where they live in config.

    Every app an assertion names must be `declared` (default: in the graph), else UnknownAppError lists them:
    a misspelt name is no verdict at all. A declared app missing from the graph (deployed state from before
    it was added) has no links there: `deny`, `only` and `never_reaches` about it hold, `allow` and
    `reaches` fail and say it is missing.
    """
    known = graph.apps if declared is None else declared
    problems = unknown_app_problems(assertions, known, "in this trust graph" if declared is None else "declared", key)
    if problems:
        raise UnknownAppError("assertions name apps that do not exist:\n" + "\n".join(f"  - {p}" for p in problems))
    searches: dict[str, Reach] = {}

    def reach_of(app: str) -> Reach:
        if app not in searches:
            searches[app] = reach(graph, app) if app in graph.apps else Reach(app, {}, {})
        return searches[app]

    found: list[Violation] = []
    for i, assertion in enumerate(assertions):
        failure = _failure(assertion, graph, reach_of)
        if failure is None:
            continue
        detail, apps = failure
        label = f"assertion {assertion.name!r} ({key}[{i}])" if assertion.name else f"assertion {key}[{i}]"
        why = f" (why it matters: {assertion.description})" if assertion.description else ""
        found.append(Violation(RULE, f"{label} {assertion.summary()} fails: {detail}{why}", apps))
    return found


def _failure(
    assertion: AssertionSpec, graph: TrustGraph, reach_of: Callable[[str], Reach]
) -> tuple[str, tuple[str, ...]] | None:
    from .topology import LinkAssertion, NeverReachesAssertion, OnlyCallersAssertion, ReachesAssertion

    if isinstance(assertion, LinkAssertion):
        src, dst = assertion.source, assertion.target
        direct = [link for link in graph.links_from(src) if link.target == dst]
        if assertion.expect == "allow" and not direct:
            return (f"there is no link {src} -> {dst}{_absent(graph, src, dst)}: no policy on {dst} admits a token "
                    f"issued for {src}; add the link, or change the assertion if {src} must not call {dst}",
                    (src, dst))
        if assertion.expect == "deny" and direct:
            return (f"the link {src} -> {dst} exists (policy {_policy(direct[0])}); remove it, or change the "
                    "assertion if this trust is intended", (src, dst))
        return None
    if isinstance(assertion, OnlyCallersAssertion):
        dst, allowed = assertion.target, set(assertion.only)
        strays = [link for link in graph.links_into(dst) if link.source not in allowed]
        # A deployed rule naming a uid of no known app admits a caller no list can name: it fails closed.
        strangers = [uid for target, uid in graph.unknown_uids if target == dst]
        if not strays and not strangers:
            return None
        sources = list(dict.fromkeys(link.source for link in strays))
        shown = [f"{render_path([link])} (policy {_policy(link)})" for link in strays]
        shown += [f"an app with uid {uid}, which is not in this trust graph" for uid in strangers]
        fix = f", or add {_names(sources)} to `only`" if sources else ""
        return f"{dst} has callers outside the list: {_names(shown)}; remove those links{fix}", (dst, *sources)
    if isinstance(assertion, ReachesAssertion):
        src, found = assertion.source, reach_of(assertion.source)
        missing = [app for app in assertion.reaches if app not in found]
        if not missing:
            return None
        reached = f"it reaches {_names(list(found))}" if len(found) else "it reaches no app"
        return (f"no chain of links carries {src}'s user identity to {_names(missing)} "
                f"({reached}{_absent(graph, src, *missing, lead='; ')}); add a link "
                f"into {_names(missing)} from {src} or from an app it reaches", (src, *missing))
    if isinstance(assertion, NeverReachesAssertion):
        src, found = assertion.source, reach_of(assertion.source)
        hits = [app for app in assertion.never_reaches if app in found]
        if not hits:
            return None
        paths = "; ".join(f"{src} reaches {app} through {render_path(found.path(app))}" for app in hits)
        return f"{paths}; remove a link on each path", (src, *hits)
    raise TypeError(f"not an assertion: {assertion!r}")  # pragma: no cover - the config model admits no other


def _absent(graph: TrustGraph, *apps: str, lead: str = " (") -> str:
    missing = [app for app in dict.fromkeys(apps) if app not in graph.apps]
    if not missing:
        return ""
    note = f"{_names(missing)} {'is' if len(missing) == 1 else 'are'} not in this trust graph"
    return f"{lead}{note}" + (")" if lead == " (" else "")


def _policy(link: Link) -> str:
    name = repr(link.policy_name) if link.policy_name else None
    if name and link.policy_id:
        return f"{name}, id {link.policy_id}"
    return name or link.policy_id or "unknown"


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:_SHOWN])
    return shown + (f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else "")
