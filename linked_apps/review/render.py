"""Pictures and reports of trust: Mermaid and DOT drawings, and the diff as text or a Markdown PR comment.

Pure module: no Pulumi, no I/O. Everything drawn comes from a `TrustGraph` or a `TrustDiff`; a drawing of one
graph is a diff with nothing added or removed, so `graph` and `diff` share one renderer.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..model.graph import App, TrustGraph
from ..model.rules import token_header
from .diff import Edge, TrustDiff

ADDED, REMOVED, PENDING, SAME = "added", "removed", "pending", ""
ADDED_COLOUR, REMOVED_COLOUR = "#1a7f37", "#cf222e"
PENDING_NOTE = ("a link that closes a cycle of trust attaches on the next `pulumi up`, once its source's trust "
                "policy exists")
MAX_DRAWN_EDGES = 150
"""Beyond this many links a PR comment draws only the changes: GitHub renders at most 500 Mermaid edges and
a comment holds at most 65,536 characters."""


@dataclass(frozen=True, slots=True)
class DrawnEdge:
    source: str
    target: str
    change: str = SAME


@dataclass(frozen=True, slots=True)
class Drawing:
    """Apps and edges to draw, each marked added, removed or unchanged."""

    apps: dict[str, App]
    app_changes: dict[str, str]
    edges: tuple[DrawnEdge, ...]

    @classmethod
    def of_graph(cls, graph: TrustGraph) -> Drawing:
        return cls(dict(graph.apps), {}, tuple(DrawnEdge(a, b) for a, b in sorted(graph.edges())))

    @classmethod
    def of_diff(cls, diff: TrustDiff, *, changes_only: bool = False) -> Drawing:
        """The diff's picture; `changes_only` keeps just the added and removed links and the apps they touch."""
        changes = {a.name: ADDED for a in diff.apps_added} | {a.name: REMOVED for a in diff.apps_removed}
        edges = ([] if changes_only else [DrawnEdge(a, b) for a, b in diff.unchanged])
        edges += [DrawnEdge(a, b, ADDED) for a, b in diff.added] + [DrawnEdge(a, b, REMOVED) for a, b in diff.removed]
        edges += [DrawnEdge(a, b, PENDING) for a, b in diff.pending]
        apps = dict(diff.apps)
        if changes_only:
            keep = set(changes) | {n for e in edges for n in (e.source, e.target)}
            apps = {n: a for n, a in apps.items() if n in keep}
        return cls(apps, changes, tuple(edges))

    def names(self) -> list[str]:
        """Every app to draw: known apps, plus names an edge mentions that no side declares."""
        names = set(self.apps)
        for e in self.edges:
            names.update((e.source, e.target))
        return sorted(names)


def _describe(app: App | None) -> str:
    if app is None:
        return "undeclared"
    return app.type + ("" if app.managed else ", managed elsewhere")


# -- Mermaid ----------------------------------------------------------------------------------------------------
def _mermaid_text(text: str) -> str:
    # Inside a quoted label Mermaid reads entity codes; quotes and angle brackets would end or inject markup.
    return text.replace("#", "#35;").replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")


def mermaid(drawing: Drawing) -> str:
    """A Mermaid flowchart (GitHub renders it): added edges thick and green, removed ones dashed and red."""
    ids = {name: f"n{i}" for i, name in enumerate(drawing.names())}
    out = ["flowchart LR"]
    if not ids:
        out.append('  empty["no apps"]')
    for name, node in ids.items():
        app = drawing.apps.get(name)
        label = f"{_mermaid_text(name)}<br/>{_mermaid_text(_describe(app))}"
        # SaaS apps are drawn as stadiums, so the two token flows read apart at a glance.
        out.append(f'  {node}(["{label}"])' if app is not None and app.type == "saas" else f'  {node}["{label}"]')
    arrows = {SAME: "-->", ADDED: "==>|added|", REMOVED: "-.->|removed|", PENDING: "==>|pending|"}
    for edge in drawing.edges:
        out.append(f"  {ids[edge.source]} {arrows[edge.change]} {ids[edge.target]}")
    for change, style in ((ADDED, f"stroke:{ADDED_COLOUR},stroke-width:3px"),
                          (REMOVED, f"stroke:{REMOVED_COLOUR},stroke-width:2px,stroke-dasharray:5 5")):
        index = [str(i) for i, e in enumerate(drawing.edges) if e.change == change]
        if index:
            out.append(f"  linkStyle {','.join(index)} {style}")
    external = [ids[n] for n in ids if n in drawing.apps and not drawing.apps[n].managed]
    classes = (("added", ADDED, f"stroke:{ADDED_COLOUR},stroke-width:3px"),
               ("removed", REMOVED, f"stroke:{REMOVED_COLOUR},stroke-width:2px,stroke-dasharray:5 5"))
    for cls, change, style in classes:
        nodes = [ids[n] for n, c in drawing.app_changes.items() if c == change and n in ids]
        if nodes:
            out += [f"  classDef {cls} {style}", f"  class {','.join(nodes)} {cls}"]
    if external:
        out += ["  classDef external stroke-dasharray:2 2", f"  class {','.join(external)} external"]
    return "\n".join(out)


# -- DOT (Graphviz) ---------------------------------------------------------------------------------------------
def _dot_id(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def dot(drawing: Drawing) -> str:
    """A Graphviz digraph of the same drawing (`dot -Tsvg`)."""
    out = ["digraph trust {", "  rankdir=LR;", '  node [shape=box, style=rounded, fontname="Helvetica"];']
    for name in drawing.names():
        app = drawing.apps.get(name)
        attrs = [f"label={_dot_id(name + chr(10) + _describe(app))}"]
        if app is not None and app.type == "saas":
            attrs.append("shape=ellipse")
        change = drawing.app_changes.get(name, SAME)
        styles = ["rounded"] + (["dashed"] if (app is not None and not app.managed) or change == REMOVED else [])
        attrs.append(f"style={_dot_id(','.join(styles))}")
        if change:
            attrs.append(f"color={_dot_id(ADDED_COLOUR if change == ADDED else REMOVED_COLOUR)}")
        out.append(f"  {_dot_id(name)} [{', '.join(attrs)}];")
    for edge in drawing.edges:
        attrs = []
        if edge.change == ADDED:
            attrs = [f"color={_dot_id(ADDED_COLOUR)}", "penwidth=3", 'label="added"']
        elif edge.change == REMOVED:
            attrs = [f"color={_dot_id(REMOVED_COLOUR)}", "style=dashed", 'label="removed"']
        elif edge.change == PENDING:
            attrs = [f"color={_dot_id(ADDED_COLOUR)}", "style=dotted", 'label="pending"']
        suffix = f" [{', '.join(attrs)}]" if attrs else ""
        out.append(f"  {_dot_id(edge.source)} -> {_dot_id(edge.target)}{suffix};")
    out.append("}")
    return "\n".join(out)


# -- the diff as words ------------------------------------------------------------------------------------------
def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def summary(diff: TrustDiff) -> str:
    """One line: what changes, in numbers."""
    if diff.changed:
        parts = [f"{_plural(len(diff.added), 'link')} added, "
                 + (f"{len(diff.pending)} pending, " if diff.pending else "")
                 + f"{len(diff.removed)} removed, {len(diff.unchanged)} unchanged"]
        if diff.apps_added or diff.apps_removed:
            parts.append(f"{_plural(len(diff.apps_added), 'app')} added, {len(diff.apps_removed)} removed")
    else:
        parts = [f"no trust change ({_plural(len(diff.unchanged), 'link')} unchanged)"]
    parts.append(f"{_plural(len(diff.violations), 'rule violation')}" if diff.violations else "no rule violations")
    return "; ".join(parts)


def _token(diff: TrustDiff, edge: Edge) -> str:
    source = diff.apps.get(edge[0])
    return token_header(source.type) if source is not None else "? (undeclared app)"


def diff_text(diff: TrustDiff, desired: str, deployed: str) -> str:
    rows: list[tuple[str, Edge]] = ([("+", e) for e in diff.added] + [("~", e) for e in diff.pending]
                                    + [("-", e) for e in diff.removed] + [(" ", e) for e in diff.unchanged])
    width = max((len(f"{a} -> {b}") for _, (a, b) in rows), default=0)
    out = [f"Trust diff: {desired} (desired) against {deployed} (deployed)"]
    for mark, (a, b) in rows:
        out.append(f"  {mark} {f'{a} -> {b}':<{width}}  [{_token(diff, (a, b))}]")
    if not rows:
        out.append("  (no links on either side)")
    if diff.pending:
        out.append(f"  ~ pending: {PENDING_NOTE}")
    for title, apps in (("Apps added", diff.apps_added), ("Apps removed", diff.apps_removed)):
        if apps:
            out.append(f"{title}: " + ", ".join(f"{a.name} ({_describe(a)})" for a in apps))
    for app, uid in diff.unknown_uids:
        out.append(f"Deployed: {app} accepts tokens of uid {uid}, which is no app known on either side")
    if diff.violations:
        out.append(f"Violations ({len(diff.violations)}): the preview fails until they are fixed")
        out.extend(f"  [{v.rule}] {v.message}" for v in diff.violations)
    out.append(summary(diff))
    return "\n".join(out)


def markdown_cell(text: str) -> str:
    """Text safe inside a Markdown table cell: a pipe would end the cell, a newline the row."""
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_code(text: str) -> str:
    """Inline code safe inside a table cell, whatever backticks the text holds."""
    fence = "``" if "`" in text else "`"
    pad = " " if "`" in text else ""
    return f"{fence}{pad}{markdown_cell(text)}{pad}{fence}"


def _app_list(apps: Sequence[App]) -> str:
    return ", ".join(f"{markdown_code(a.name)} ({_describe(a)})" for a in apps)


def diff_markdown(diff: TrustDiff, desired: str, deployed: str, *, max_drawn_edges: int = MAX_DRAWN_EDGES) -> str:
    """A PR comment: one summary line, a table of added and removed links, then the picture."""
    out = [f"### Trust review: {summary(diff)}", "",
           f"Desired {markdown_code(desired)} against deployed {markdown_code(deployed)}.", ""]
    changes: Iterable[tuple[str, Edge]] = [*((ADDED, e) for e in diff.added), *((PENDING, e) for e in diff.pending),
                                           *((REMOVED, e) for e in diff.removed)]
    changes = list(changes)
    if changes:
        out += ["| change | from | to | token |", "| --- | --- | --- | --- |"]
        out += [f"| {change} | {markdown_code(a)} | {markdown_code(b)} | {markdown_code(_token(diff, (a, b)))} |" for change, (a, b) in changes]
    else:
        out.append("_No link is added or removed._")
    if diff.pending:
        out += ["", f"_Pending: {PENDING_NOTE}._"]
    if diff.apps_added:
        out += ["", f"**Apps added:** {_app_list(diff.apps_added)}"]
    if diff.apps_removed:
        out += ["", f"**Apps removed:** {_app_list(diff.apps_removed)}"]
    if diff.unknown_uids:
        out += ["", "**Deployed rules naming no known app:** " + ", ".join(
            f"{markdown_code(app)} accepts uid {markdown_code(uid)}" for app, uid in diff.unknown_uids)]
    if diff.violations:
        out += ["", "**Rule violations** (the preview fails until they are fixed):", "",
                "| rule | message |", "| --- | --- |"]
        out += [f"| {markdown_code(v.rule)} | {markdown_cell(v.message)} |" for v in diff.violations]
    total = len(diff.added) + len(diff.pending) + len(diff.removed) + len(diff.unchanged)
    changes_only = total > max_drawn_edges
    out += ["", "```mermaid", mermaid(Drawing.of_diff(diff, changes_only=changes_only)), "```", "",
            "<sub>Thick green arrows: links added. Dashed red arrows: links removed."
            + (f" The {len(diff.unchanged)} unchanged links are not drawn (`linked-apps graph` draws them all)."
               if changes_only else "") + "</sub>"]
    return "\n".join(out)
