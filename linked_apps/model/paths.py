"""Paths through the trust graph: how far a user's identity travels along links, from where it arrives, and why.

Pure module: no Pulumi, no I/O. Identities flow along chains: B receives its own Access JWT for the user and
can forward it to C if C trusts B, so reach is transitive along links. Every function is one breadth-first
search, O(apps + links), and keeps parent pointers so each answer carries its shortest path. Every link in the
graph is followed, whatever its policy's other rules say: for "never reaches" that errs on the safe side.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from .graph import Link, Policy, TrustGraph
from .rules import (
    AppFacts,
    LinkRef,
    Violation,
    can_receive_linked_trust,
    check_links,
    evaluate_linked_policy,
    token_header,
)


@dataclass(frozen=True, slots=True)
class Reach:
    """Every app one breadth-first search found, with the shortest path to (or from) each.

    Forward (`reach`): apps the origin's user identity can get to. Backward (`callers`): apps whose user
    identity can get to the origin. The origin itself is never in the result, even on a cycle.
    """

    origin: str
    via: Mapping[str, Link]
    """App -> the link that touches it on its shortest path (its parent pointer), in search order."""
    hops: Mapping[str, int]
    backward: bool = False

    def __contains__(self, app: object) -> bool:
        return app in self.via

    def __iter__(self) -> Iterator[str]:
        """Apps nearest first (ties in the order the search met them)."""
        return iter(self.via)

    def __len__(self) -> int:
        return len(self.via)

    def path(self, app: str) -> list[Link]:
        """The links of the shortest path, in the direction identities travel (source first)."""
        links: list[Link] = []
        node = app
        while node != self.origin:
            link = self.via[node]
            links.append(link)
            node = link.target if self.backward else link.source
        return links if self.backward else links[::-1]


def _search(graph: TrustGraph, origin: str, *, backward: bool, stop: str | None = None) -> Reach:
    origin = graph.find(origin).name  # by name, uid or domain; UnknownAppError names the near matches
    step = graph.links_into if backward else graph.links_from
    via: dict[str, Link] = {}
    hops: dict[str, int] = {origin: 0}
    queue = deque([origin])
    while queue:
        node = queue.popleft()
        depth = hops[node] + 1
        for link in step(node):
            nxt = link.source if backward else link.target
            if nxt in hops:
                continue
            hops[nxt] = depth
            via[nxt] = link
            if nxt == stop:
                queue.clear()
                break
            queue.append(nxt)
    del hops[origin]
    return Reach(origin, via, hops, backward)


def reach(graph: TrustGraph, source: str) -> Reach:
    """Every app `source`'s user identity can get to along links, with the shortest path to each."""
    return _search(graph, source, backward=False)


def callers(graph: TrustGraph, target: str) -> Reach:
    """Every app whose user identity can get to `target`, directly (1 hop) or through a chain."""
    return _search(graph, target, backward=True)


def shortest_path(graph: TrustGraph, source: str, target: str) -> list[Link] | None:
    """The fewest links that carry `source`'s user identity to `target`; None when no chain does."""
    target = graph.find(target).name
    found = _search(graph, source, backward=False, stop=target)
    return found.path(target) if target in found else None


def render_path(links: list[Link]) -> str:
    """`a -> b -> c` for the links a -> b, b -> c."""
    return " -> ".join([links[0].source, *(link.target for link in links)]) if links else ""


@dataclass(frozen=True, slots=True)
class Hop:
    """One link on a path, with the policy behind it and whether that policy admits the source's token."""

    link: Link
    header: str
    """Where the source sends the user's token (`Cf-Access-Token` or `Authorization: Bearer`)."""
    policy: Policy | None = None
    """The deployed policy behind the link; None for desired trust (this stack creates it)."""
    precedence: int | None = None
    grants: bool | None = None
    """Judged on the policy's linked_app_token rules (deployed only); None when it cannot be judged."""
    reason: str = ""

    def as_dict(self) -> dict[str, object]:
        return {**self.link.as_dict(), "header": self.header, "precedence": self.precedence,
                "decision": self.policy.decision if self.policy else None, "grants": self.grants,
                "reason": self.reason}


@dataclass(frozen=True, slots=True)
class Explanation:
    """Why `source`'s user identity does or does not reach `target`."""

    source: str
    target: str
    hops: tuple[Hop, ...]
    """The shortest path, hop by hop; empty when no chain of links leads there."""
    reached: tuple[str, ...] = ()
    """When there is no path: the apps `source` does reach, nearest first."""
    callers: tuple[str, ...] = ()
    """When there is no path: the apps that do reach `target`, nearest first."""
    blocked: tuple[Violation, ...] = ()
    """When there is no path: the rules a direct link `source -> target` would break."""
    reverse: tuple[Link, ...] = ()
    """When there is no path: the path the other way, `target -> ... -> source`, if there is one."""

    @property
    def reachable(self) -> bool:
        return bool(self.hops)

    def as_dict(self) -> dict[str, object]:
        path = [link.source for link in (h.link for h in self.hops)] + [self.target] if self.hops else None
        missing = None
        if not self.hops:
            missing = {"link": {"from": self.source, "to": self.target}, "reached": list(self.reached),
                       "callers": list(self.callers), "rules": [v.as_dict() for v in self.blocked],
                       "reverse_path": [self.target, *(l.target for l in self.reverse)] if self.reverse else None}
        return {"from": self.source, "to": self.target, "reachable": self.reachable, "path": path,
                "hops": [h.as_dict() for h in self.hops], "missing": missing}


def explain(graph: TrustGraph, source: str, target: str) -> Explanation:
    """The path from `source` to `target` and the policy that grants each hop, or what is missing."""
    source, target = graph.find(source).name, graph.find(target).name
    if source == target:
        raise ValueError(f"`{source}` is both ends; name two different apps")
    found = _search(graph, source, backward=False)
    if target in found:
        return Explanation(source, target, tuple(_hop(graph, link) for link in found.path(target)))
    into = callers(graph, target)
    apps = graph.apps
    facts = {name: AppFacts(apps[name].type, apps[name].managed) for name in (source, target)}
    back = _search(graph, target, backward=False, stop=source)
    return Explanation(
        source, target, (),
        reached=tuple(found), callers=tuple(into),
        blocked=tuple(check_links(facts, [LinkRef(source, target)])),
        reverse=tuple(back.path(source)) if source in back else (),
    )


def _hop(graph: TrustGraph, link: Link) -> Hop:
    src, dst = graph.apps.get(link.source), graph.apps.get(link.target)
    header = token_header(src.type if src else None)
    policy = graph.policies.get(link.policy_id) if link.policy_id else None
    if policy is None:
        return Hop(link, header)
    precedence = next((p for pid, p in graph.attachments.get(link.target, ()) if pid == link.policy_id), None)
    if dst is None or not can_receive_linked_trust(dst.type):
        kind = dst.type if dst else "unknown"
        return Hop(link, header, policy, precedence, False,
                   f"`{link.target}` is a {kind} app; Cloudflare honours linked_app_token rules only on "
                   "self-hosted apps")
    grants, reason = evaluate_linked_policy(policy.decision, policy.include, policy.require, policy.exclude,
                                            frozenset({src.uid}) if src and src.uid else frozenset())
    return Hop(link, header, policy, precedence, grants, reason)
