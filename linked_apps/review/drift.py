"""Drift: the trust a stack's state records against the trust the Cloudflare account enforces.

Pure module: both sides are `TrustGraph`s (the recorded one from a stack export or outputs file, the live one from
`cloudflare:ACCOUNT_ID`). Links are compared as `diff` compares them, with the live account in the place of the
desired side: `added` is enforced but not recorded (made by hand, e.g. in the dashboard), `removed` is recorded but
not enforced. Attachments are compared too: a reusable policy attached, detached or moved in precedence by hand
changes what Access evaluates first even when no link changes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..model.graph import TrustGraph
from .diff import TrustDiff, diff_trust
from .render import markdown_code


@dataclass(frozen=True, slots=True)
class AttachmentChange:
    """One reusable policy whose attachment to an app differs: `recorded`/`live` precedence, None if absent."""

    app: str
    policy_id: str
    policy_name: str | None
    recorded: int | None
    live: int | None

    def as_dict(self) -> dict[str, object]:
        return {"app": self.app, "policy_id": self.policy_id, "policy_name": self.policy_name,
                "recorded_precedence": self.recorded, "live_precedence": self.live}

    def describe(self) -> str:
        what = f"{self.policy_name!r} ({self.policy_id})" if self.policy_name else self.policy_id
        if self.recorded is None:
            return f"{self.app}: {what} attached at precedence {self.live}, not recorded"
        if self.live is None:
            return f"{self.app}: {what} recorded at precedence {self.recorded}, not attached"
        return f"{self.app}: {what} at precedence {self.live}, recorded at {self.recorded}"


@dataclass(frozen=True, slots=True)
class Drift:
    links: TrustDiff
    attachments: tuple[AttachmentChange, ...]
    attachments_compared: bool = True
    """False when the recorded side does not hold the apps' policy lists (stack outputs): nothing to compare."""

    @property
    def drifted(self) -> bool:
        return self.links.changed or bool(self.attachments)

    def as_dict(self) -> dict[str, object]:
        doc = self.links.as_dict()
        doc.pop("violations", None)  # the recorded side is not a plan: no rule run belongs here
        doc["attachments_changed"] = [a.as_dict() for a in self.attachments]
        doc["attachments_compared"] = self.attachments_compared
        doc["changed"] = self.drifted
        return doc


ACCOUNT_FIELDS = ("type", "uid")
"""What the account itself says of an app; managed-ness, lookups and stack references are the stack's notions."""


def drift(recorded: TrustGraph, live: TrustGraph) -> Drift:
    compared = recorded.attachments_recorded and live.attachments_recorded
    changes = tuple(_attachment_changes(recorded, live)) if compared else ()
    links = diff_trust(live, recorded)
    links = replace(links, apps_changed=tuple(c for c in links.apps_changed if c.field in ACCOUNT_FIELDS))
    return Drift(links, changes, compared)


def _attachment_changes(recorded: TrustGraph, live: TrustGraph) -> list[AttachmentChange]:
    changes: list[AttachmentChange] = []
    for app in sorted(recorded.apps.keys() & live.apps.keys()):
        # App-scoped (inline) policies have no identity across the two sources; what they grant shows as links.
        def reusable(graph: TrustGraph) -> dict[str, int]:
            return {pid: precedence for pid, precedence in graph.attachments.get(app, ())
                    if not (pid in graph.policies and graph.policies[pid].inline) and not pid.startswith("inline:")}

        was, now = reusable(recorded), reusable(live)
        for pid in sorted(was.keys() | now.keys()):
            if was.get(pid) != now.get(pid):
                policy = live.policies.get(pid) or recorded.policies.get(pid)
                changes.append(AttachmentChange(app, pid, policy.name if policy else None, was.get(pid), now.get(pid)))
    return changes


def drift_text(result: Drift, recorded: str, live: str) -> str:
    links = result.links
    out = [f"Drift: {recorded} (recorded) against {live} (enforced by Cloudflare)"]
    rows = ([("+", e, "enforced, not recorded") for e in links.added]
            + [("-", e, "recorded, not enforced") for e in links.removed])
    width = max((len(f"{a} -> {b}") for _, (a, b), _ in rows), default=0)
    out += [f"  {mark} {f'{a} -> {b}':<{width}}  {why}" for mark, (a, b), why in rows]
    for title, apps in (("Apps only in the account", links.apps_added), ("Apps only in the state", links.apps_removed)):
        if apps:
            out.append(f"{title}: " + ", ".join(a.name for a in apps))
    out += [f"  ~ {change.describe()}" for change in result.attachments]
    if not result.attachments_compared:
        out.append("Attachments not compared: stack outputs do not record the apps' policy lists (give a stack export)")
    out.append(f"{len(links.added)} link(s) enforced but not recorded, {len(links.removed)} recorded but not "
               f"enforced, {len(links.unchanged)} unchanged; {len(result.attachments)} attachment(s) differ"
               + ("" if result.drifted else ": no drift"))
    return "\n".join(out)


def drift_markdown(result: Drift, recorded: str, live: str) -> str:
    links = result.links
    out = [f"### Trust drift: {len(links.added)} link(s) enforced but not recorded, {len(links.removed)} recorded "
           f"but not enforced, {len(result.attachments)} attachment(s) differ", "",
           f"Recorded {markdown_code(recorded)} against the account {markdown_code(live)}.", ""]
    rows = ([("enforced, not recorded", e) for e in links.added] + [("recorded, not enforced", e) for e in links.removed])
    if rows:
        out += ["| drift | from | to |", "| --- | --- | --- |"]
        out += [f"| {why} | {markdown_code(a)} | {markdown_code(b)} |" for why, (a, b) in rows]
    else:
        out.append("_Every recorded link is enforced, and nothing more._")
    if result.attachments:
        out += ["", "| app | policy | recorded precedence | live precedence |", "| --- | --- | --- | --- |"]
        out += [f"| {markdown_code(c.app)} | {markdown_code(c.policy_name or c.policy_id)} | "
                f"{c.recorded if c.recorded is not None else '-'} | {c.live if c.live is not None else '-'} |"
                for c in result.attachments]
    if not result.attachments_compared:
        out += ["", "_Attachments not compared: stack outputs do not record the apps' policy lists._"]
    return "\n".join(out)
