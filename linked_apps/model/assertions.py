"""Trust assertions: invariants written in the stack config, judged on any trust graph, desired or deployed.

Pure module: no Pulumi, no I/O. `Topology.violations()` runs them with the rules on the desired graph (so
`plan`, `pulumi preview` and `diff` report them), and `Topology.assertion_violations(graph)` runs them on a
graph read from deployed state (`linked-apps check --state`). A failed assertion is a `Violation` whose
message names the assertion, the apps, and the path that breaks it.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Annotated, Any, Literal, Union

from pydantic import Discriminator, Field, Tag, model_validator

from ..errors import UnknownAppError
from ._spec import Spec as _Spec
from .graph import Link, TrustGraph
from .paths import Reach, reach, render_path
from .rules import Violation

RULE = "assertion"
"""The `rule` id of every failed assertion."""

_SHOWN = 8  # apps listed by name in one message before "and N more"


# The assertion specs: the `linked-apps:assertions` entries of the config contract.


class _AssertionSpec(_Spec):
    """Fields every assertion may carry, so a failure can say which invariant broke and why it matters."""

    name: str | None = None
    description: str | None = None

    def app_refs(self) -> list[tuple[str, str]]:
        """`(key path inside this assertion, app name)` for every app it names, e.g. `("only[1]", "hr-portal")`."""
        raise NotImplementedError

    def summary(self) -> str:
        """The assertion as written in YAML flow style, e.g. `{to: ledger, only: [payroll-api]}`."""
        raise NotImplementedError


def _flow(items: list[str]) -> str:
    return "[" + ", ".join(items) + "]"


def _not_the_source(source: str, targets: list[str], key: str) -> None:
    if source in targets:
        raise ValueError(f"`{key}` lists `{source}`, the app the assertion starts from; name other apps")


class LinkAssertion(_AssertionSpec):
    """`{from: A, to: B, expect: allow|deny}`: the direct link A -> B must (allow) or must not (deny) exist."""

    source: str = Field(alias="from", min_length=1)
    target: str = Field(alias="to", min_length=1)
    expect: Literal["allow", "deny"]

    @model_validator(mode="after")
    def _two_apps(self) -> LinkAssertion:
        if self.source == self.target:
            raise ValueError("`from` and `to` are the same app; an app cannot link to itself")
        return self

    def app_refs(self) -> list[tuple[str, str]]:
        return [("from", self.source), ("to", self.target)]

    def summary(self) -> str:
        return f"{{from: {self.source}, to: {self.target}, expect: {self.expect}}}"


class OnlyCallersAssertion(_AssertionSpec):
    """`{to: B, only: [A, C]}`: no app outside the list may link into B (an empty list: no app may)."""

    target: str = Field(alias="to", min_length=1)
    only: list[str]

    def app_refs(self) -> list[tuple[str, str]]:
        return [("to", self.target), *((f"only[{i}]", n) for i, n in enumerate(self.only))]

    def summary(self) -> str:
        return f"{{to: {self.target}, only: {_flow(self.only)}}}"


class ReachesAssertion(_AssertionSpec):
    """`{from: A, reaches: [..]}`: A's user identity reaches each listed app along a chain of links."""

    source: str = Field(alias="from", min_length=1)
    reaches: list[str] = Field(min_length=1)

    @model_validator(mode="after")
    def _others(self) -> ReachesAssertion:
        _not_the_source(self.source, self.reaches, "reaches")
        return self

    def app_refs(self) -> list[tuple[str, str]]:
        return [("from", self.source), *((f"reaches[{i}]", n) for i, n in enumerate(self.reaches))]

    def summary(self) -> str:
        return f"{{from: {self.source}, reaches: {_flow(self.reaches)}}}"


class NeverReachesAssertion(_AssertionSpec):
    """`{from: A, never_reaches: [..]}`: no chain of links carries A's user identity to a listed app."""

    source: str = Field(alias="from", min_length=1)
    never_reaches: list[str] = Field(min_length=1)

    @model_validator(mode="after")
    def _others(self) -> NeverReachesAssertion:
        _not_the_source(self.source, self.never_reaches, "never_reaches")
        return self

    def app_refs(self) -> list[tuple[str, str]]:
        return [("from", self.source), *((f"never_reaches[{i}]", n) for i, n in enumerate(self.never_reaches))]

    def summary(self) -> str:
        return f"{{from: {self.source}, never_reaches: {_flow(self.never_reaches)}}}"


ASSERTION_MODELS: dict[str, type[_AssertionSpec]] = {
    "expect": LinkAssertion, "only": OnlyCallersAssertion,
    "reaches": ReachesAssertion, "never_reaches": NeverReachesAssertion,
}


def _assertion_kind(raw: Any) -> str | None:
    # The kind is the one key only that kind has; zero or several such keys cannot be told apart.
    if isinstance(raw, _AssertionSpec):
        return next(k for k, m in ASSERTION_MODELS.items() if type(raw) is m)
    if not isinstance(raw, Mapping):
        return None
    kinds = [k for k in ASSERTION_MODELS if k in raw]
    return kinds[0] if len(kinds) == 1 else None


AssertionSpec = Annotated[
    Union[
        Annotated[LinkAssertion, Tag("expect")],
        Annotated[OnlyCallersAssertion, Tag("only")],
        Annotated[ReachesAssertion, Tag("reaches")],
        Annotated[NeverReachesAssertion, Tag("never_reaches")],
    ],
    Discriminator(
        _assertion_kind,
        custom_error_type="assertion_kind",
        custom_error_message=(
            "cannot tell what assertion this is: give exactly one of `expect: allow|deny` (with `from` and `to`), "
            "`only: [..]` (with `to`), `reaches: [..]` or `never_reaches: [..]` (with `from`)"
        ),
    ),
]



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
