"""Pictures and reports of trust: Mermaid and DOT drawings, and the diff as text or a Markdown PR comment.

Pure module: no Pulumi, no I/O. Everything drawn comes from a `TrustGraph` or a `TrustDiff`; a drawing of one
graph is a diff with nothing added or removed, so `graph` and `diff` share one renderer.

Names and descriptions come from pull requests and state files, so they are hostile: each medium has one escaper
here (`markdown_code`, `_mermaid_text`, `_dot_id`, `printable` for terminals), every such string goes through
it, and none of them lets input become markup, a directive, a control character or a line break.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..model.graph import App, TrustGraph
from ..model.rules import printable, token_header
from .diff import AppChange, Edge, TrustDiff

ADDED, REMOVED, PENDING, SAME = "added", "removed", "pending", ""
ADDED_COLOUR, REMOVED_COLOUR = "#1a7f37", "#cf222e"
PENDING_NOTE = ("a link that closes a cycle of trust attaches on the next `pulumi up`, once its source's trust "
                "policy exists")
MAX_DRAWN_EDGES = 150
"""Beyond this many links a PR comment draws only the changes: GitHub renders at most 500 Mermaid edges and
a comment holds at most 65,536 characters."""
MAX_COMMENT_CHARS = 65_000
"""`diff --format markdown` stays within this many characters (UTF-16 units, as GitHub counts): GitHub refuses a
comment over 65,536, and the workflow adds a marker and a footer."""


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
_MERMAID_ENTITIES = {ch: f"#{ord(ch)};" for ch in '#"<>%{}`&|[]()\\'}


def _mermaid_text(text: str) -> str:
    """A quoted Mermaid label: Mermaid reads `#<code>;` entities there. Quotes, brackets and angle brackets would end
    the label or inject markup, `%%{init: ...}%%` anywhere in the source is a directive (so `%` and `{` go), a
    backtick starts a Markdown label, and a line break (shown escaped by `printable`) would end the statement and
    could close the Markdown fence around the diagram."""
    return "".join(_MERMAID_ENTITIES.get(ch, ch) for ch in printable(text))


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
def _dot_text(text: str) -> str:
    """Inside a DOT quoted string only `\\` and `"` are special; controls (a NUL ends the file for Graphviz) and line
    breaks are shown escaped by `printable`, whose backslashes are then doubled like any other."""
    return printable(text).replace("\\", "\\\\").replace('"', '\\"')


def _dot_id(text: str) -> str:
    return f'"{_dot_text(text)}"'


def dot(drawing: Drawing) -> str:
    """A Graphviz digraph of the same drawing (`dot -Tsvg`)."""
    out = ["digraph trust {", "  rankdir=LR;", '  node [shape=box, style=rounded, fontname="Helvetica"];']
    for name in drawing.names():
        app = drawing.apps.get(name)
        attrs = [f'label="{_dot_text(name)}\\n{_dot_text(_describe(app))}"']
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
        if diff.apps_changed:
            changed = len({c.app for c in diff.apps_changed})
            parts.append(f"{_plural(changed, 'app')} changed identity")
    else:
        parts = [f"no trust change ({_plural(len(diff.unchanged), 'link')} unchanged)"]
    parts.append(f"{_plural(len(diff.violations), 'rule violation')}" if diff.violations else "no rule violations")
    return "; ".join(parts)


def _token(diff: TrustDiff, edge: Edge) -> str:
    source = diff.apps.get(edge[0])
    return token_header(source.type) if source is not None else "? (undeclared app)"


def _value(value: object) -> str:
    """A field value of an identity change, as people read it."""
    if value is None:
        return "(none)"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _change_words(change: AppChange) -> tuple[str, str, str]:
    field = "managed here" if change.field == "managed" else change.field
    return field, _value(change.before), _value(change.after)


def diff_text(diff: TrustDiff, desired: str, deployed: str) -> str:
    """The diff for a terminal: every name, description and message through `printable`."""
    p = printable
    rows: list[tuple[str, Edge]] = ([("+", e) for e in diff.added] + [("~", e) for e in diff.pending]
                                    + [("-", e) for e in diff.removed] + [(" ", e) for e in diff.unchanged])
    arrows = [f"{p(a)} -> {p(b)}" for _, (a, b) in rows]
    width = max(map(len, arrows), default=0)
    out = [f"Trust diff: {p(desired)} (desired) against {p(deployed)} (deployed)"]
    for (mark, edge), arrow in zip(rows, arrows):
        out.append(f"  {mark} {arrow:<{width}}  [{p(_token(diff, edge))}]")
    if not rows:
        out.append("  (no links on either side)")
    if diff.pending:
        out.append(f"  ~ pending: {PENDING_NOTE}")
    for title, apps in (("Apps added", diff.apps_added), ("Apps removed", diff.apps_removed)):
        if apps:
            out.append(f"{title}: " + ", ".join(f"{p(a.name)} ({p(_describe(a))})" for a in apps))
    if diff.apps_changed:
        out.append(f"Apps whose identity changed behind the same name ({len(diff.apps_changed)}):")
        for change in diff.apps_changed:
            field, before, after = _change_words(change)
            out.append(f"  ~ {p(change.app)}: {field} {p(before)} -> {p(after)}")
    for app, uid in diff.unknown_uids:
        out.append(f"Deployed: {p(app)} accepts tokens of uid {p(uid)}, which is no app known on either side")
    if diff.violations:
        out.append(f"Violations ({len(diff.violations)}): the preview fails until they are fixed")
        out.extend(f"  [{p(v.rule)}] {p(v.message)}" for v in diff.violations)
    out.append(summary(diff))
    return "\n".join(out)


# -- the diff as a PR comment -------------------------------------------------------------------------------------
def markdown_code(text: str) -> str:
    """`text` as one inline code span that is safe in a GFM table cell, whatever it holds.

    A code span shows its content literally: no HTML, emphasis, links, and no @mention or #reference (GitHub
    skips code). The fence is one backtick longer than the longest run inside, padded when the text touches a
    backtick; `printable` removes line breaks (which end a table row) and invisible characters; `|` is escaped
    for the table, and a backslash just before a `|` is shown as `\\u005c`, since GitHub's table scanner would
    read `\\\\|` as an escaped backslash followed by a cell border.
    """
    text = printable(text)
    if not text:
        return "(empty)"
    text = text.replace("\\|", "\\u005c|").replace("|", "\\|")
    run = current = 0
    for ch in text:
        current = current + 1 if ch == "`" else 0
        run = max(run, current)
    fence = "`" * (run + 1)
    # CommonMark strips one space from each end when both ends have one (unless it is all spaces): pad to keep them.
    spaced = text.startswith(" ") and text.endswith(" ") and text.strip(" ")
    pad = " " if text.startswith("`") or text.endswith("`") or spaced else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


@dataclass
class _Table:
    """A Markdown table of the comment; when the comment must be cut, only its first `kept` rows are shown."""

    intro: list[str]
    header: str
    rows: list[str]
    what: str | Callable[[int], str]
    """What the rows not shown are (e.g. "link changes"), or a function of how many rows are kept that says it."""
    kept: int = -1

    def lines(self) -> list[str]:
        kept = len(self.rows) if self.kept < 0 else self.kept
        if not self.rows:
            return []
        columns = self.header.count("|") - 1
        out = ["", *self.intro, *([self.header, "|" + " --- |" * columns, *self.rows[:kept]] if kept else [])]
        if kept < len(self.rows):
            what = self.what(kept) if callable(self.what) else self.what
            out += [*([""] if kept else []),
                    f"**{len(self.rows) - kept} {'more ' if kept else ''}{what} not shown here** (see the note above)."]
        return out


def diff_markdown(diff: TrustDiff, desired: str, deployed: str, *, max_drawn_edges: int = MAX_DRAWN_EDGES,
                  max_chars: int = MAX_COMMENT_CHARS) -> str:
    """A PR comment: the summary in the heading, tables of what changes, then the picture and unchanged links.

    Within `max_chars`: when everything does not fit, the diagram goes first, then the unchanged links, then rows
    from the end of the lowest tables (link changes are kept longest); the heading keeps the full counts and a
    note under it says what was cut. Cuts are whole lines, so fences and `<details>` stay balanced.
    """
    code = markdown_code
    head = [f"### Trust review: {summary(diff)}", "",
            f"Desired {code(desired)} against deployed {code(deployed)}."]
    tables = [
        _Table([], "| change | from | to | token |",
               [f"| {change} | {code(a)} | {code(b)} | {code(_token(diff, (a, b)))} |"
                for change, edges in ((ADDED, diff.added), (PENDING, diff.pending), (REMOVED, diff.removed))
                for a, b in edges],
               lambda kept: _cut_changes(diff, kept)),
        _Table(["**Apps whose identity changed behind the same name** (trust follows the identity, not the name):",
                ""], "| app | field | from | to |",
               [f"| {code(c.app)} | {' | '.join(code(w) for w in _change_words(c))} |" for c in diff.apps_changed],
               "identity changes"),
        _Table(["**Rule violations** (the preview fails until they are fixed):", ""], "| rule | message |",
               [f"| {code(v.rule)} | {code(v.message)} |" for v in diff.violations], "violations"),
        _Table(["**Apps added or removed:**", ""], "| app | change | kind |",
               [f"| {code(a.name)} | {change} | {code(_describe(a))} |"
                for change, apps in (("added", diff.apps_added), ("removed", diff.apps_removed)) for a in apps],
               "app changes"),
        _Table(["**Deployed rules naming no known app:**", ""], "| app | accepts uid |",
               [f"| {code(app)} | {code(uid)} |" for app, uid in diff.unknown_uids], "deployed rules"),
    ]
    no_change = [] if diff.added or diff.removed or diff.pending else ["", "_No link is added or removed._"]
    if diff.pending:
        no_change += ["", f"_Pending: {PENDING_NOTE}._"]
    total = len(diff.added) + len(diff.pending) + len(diff.removed) + len(diff.unchanged)
    changes_only = total > max_drawn_edges
    diagram = ["", "```mermaid", mermaid(Drawing.of_diff(diff, changes_only=changes_only)), "```", "",
               "<sub>Thick green arrows: links added. Dashed red arrows: links removed."
               + (f" The {len(diff.unchanged)} unchanged links are not drawn (`linked-apps graph` draws them all)."
                  if changes_only else "") + "</sub>"]
    unchanged = (["", f"<details><summary>{_plural(len(diff.unchanged), 'unchanged link')}</summary>", "",
                  "| from | to |", "| --- | --- |", *(f"| {code(a)} | {code(b)} |" for a, b in diff.unchanged), "",
                  "</details>"] if diff.unchanged else [])

    def render(note: list[str], with_diagram: bool, with_unchanged: bool) -> str:
        body = [line for t in tables for line in t.lines()]
        return "\n".join([*head, *note, *no_change, *body, *(diagram if with_diagram else []),
                          *(unchanged if with_unchanged else [])])

    full = render([], True, True)
    if _utf16_len(full) <= max_chars:
        return full
    cut: list[str] = ["the diagram"]
    with_unchanged = _utf16_len(render(_cut_note(cut), False, True)) <= max_chars
    if not with_unchanged and unchanged:
        cut.append(f"the list of {_plural(len(diff.unchanged), 'unchanged link')}")
    if _utf16_len(render(_cut_note(cut), False, with_unchanged)) > max_chars:
        cut.append("rows at the end of the tables below")
        fixed = _utf16_len(render(_cut_note(cut), False, with_unchanged)) - sum(
            _utf16_len(r) + 1 for t in tables for r in t.rows)
        budget = max_chars - fixed - 200 * len(tables)  # room for each table's "N more ... not shown" line
        for table in tables:  # in order of importance: link changes first
            table.kept = 0
            for row in table.rows:
                if budget < _utf16_len(row) + 1:
                    break
                budget -= _utf16_len(row) + 1
                table.kept += 1
    return render(_cut_note(cut), False, with_unchanged)


def _cut_changes(diff: TrustDiff, kept: int) -> str:
    """What the link-change rows not shown are: rows run added, then pending, then removed."""
    left = []
    for what, edges in (("added", diff.added), ("pending", diff.pending), ("removed", diff.removed)):
        hidden = min(len(edges), max(len(edges) - kept, 0))
        kept = max(kept - len(edges), 0)
        if hidden or what != "pending":
            left.append(f"{hidden} {what}")
    return f"link changes ({', '.join(left)})"


def _cut_note(cut: Sequence[str]) -> list[str]:
    return ["", f"> **This review is cut to fit one comment.** Not shown here: {', '.join(cut)}. The counts above "
                "are complete; the job summary or `linked-apps diff` shows everything."]
