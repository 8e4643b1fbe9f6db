"""Strict little parsers for the subsets of Markdown, Mermaid and DOT that `linked-apps` emits.

Strict on purpose: a line they do not understand fails the test, so the output cannot drift into
something GitHub or Graphviz would read differently without a test noticing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_CELL_SPLIT = re.compile(r"(?<!\\)\|")


def _unescape_cell(cell: str) -> str:
    cell = cell.strip().replace("\\|", "|")
    m = re.fullmatch(r"(`+) ?(.*?) ?\1", cell)
    return m.group(2) if m else cell


def markdown_tables(text: str) -> list[list[dict[str, str]]]:
    """Every GFM table in `text`, as rows of {header: cell}; code spans and `\\|` escapes are undone."""
    tables: list[list[dict[str, str]]] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].startswith("|") and i + 1 < len(lines) and re.fullmatch(r"\|( *:?-+:? *\|)+", lines[i + 1]):
            header = [_unescape_cell(c) for c in _CELL_SPLIT.split(lines[i].strip())[1:-1]]
            rows = []
            i += 2
            while i < len(lines) and lines[i].startswith("|"):
                cells = [_unescape_cell(c) for c in _CELL_SPLIT.split(lines[i].strip())[1:-1]]
                assert len(cells) == len(header), f"row has {len(cells)} cells, header {len(header)}: {lines[i]!r}"
                rows.append(dict(zip(header, cells)))
                i += 1
            tables.append(rows)
        else:
            i += 1
    return tables


def fenced_blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)\n```$", text, flags=re.S | re.M)


# -- Mermaid ----------------------------------------------------------------------------------------------------
_ENTITIES = {"#quot;": '"', "#lt;": "<", "#gt;": ">", "#35;": "#"}


def _decode(label: str) -> str:
    # Mermaid's entity codes: named ones and `#<decimal>;` (the renderer writes every escape in decimal).
    return re.sub(r"#(quot|lt|gt|\d+);", lambda m: _ENTITIES.get(m.group(0)) or chr(int(m.group(1))), label)


@dataclass
class MermaidEdge:
    source: str
    target: str
    arrow: str
    label: str | None


@dataclass
class Mermaid:
    direction: str
    nodes: dict[str, tuple[str, str]] = field(default_factory=dict)
    """node id -> (label, shape: "box" or "stadium")"""
    edges: list[MermaidEdge] = field(default_factory=list)
    link_styles: dict[int, str] = field(default_factory=dict)
    class_defs: dict[str, str] = field(default_factory=dict)
    classes: dict[str, str] = field(default_factory=dict)
    """node id -> class"""

    def name(self, node: str) -> str:
        return self.nodes[node][0].split("<br/>")[0]

    def named_edges(self) -> list[tuple[str, str, MermaidEdge, str | None]]:
        return [(self.name(e.source), self.name(e.target), e, self.link_styles.get(i)) for i, e in enumerate(self.edges)]


def parse_mermaid(text: str) -> Mermaid:
    lines = text.splitlines()
    head = re.fullmatch(r"flowchart (LR|TD|TB|RL|BT)", lines[0])
    assert head, f"not a flowchart header: {lines[0]!r}"
    chart = Mermaid(head.group(1))
    for line in lines[1:]:
        line = line.strip()
        if m := re.fullmatch(r'(\w+)\["([^"]*)"\]', line):
            chart.nodes[m.group(1)] = (_decode(m.group(2)), "box")
        elif m := re.fullmatch(r'(\w+)\(\["([^"]*)"\]\)', line):
            chart.nodes[m.group(1)] = (_decode(m.group(2)), "stadium")
        elif m := re.fullmatch(r"(\w+) (-->|==>|-\.->)(?:\|([^|]*)\|)? (\w+)", line):
            assert m.group(1) in chart.nodes and m.group(4) in chart.nodes, f"edge before its nodes: {line!r}"
            chart.edges.append(MermaidEdge(m.group(1), m.group(4), m.group(2), m.group(3)))
        elif m := re.fullmatch(r"linkStyle ([\d,]+) (\S.*)", line):
            for index in m.group(1).split(","):
                assert int(index) not in chart.link_styles, f"link {index} styled twice"
                chart.link_styles[int(index)] = m.group(2)
        elif m := re.fullmatch(r"classDef (\w+) (\S.*)", line):
            chart.class_defs[m.group(1)] = m.group(2)
        elif m := re.fullmatch(r"class ([\w,]+) (\w+)", line):
            for node in m.group(1).split(","):
                chart.classes[node] = m.group(2)
        else:
            raise AssertionError(f"unexpected Mermaid line: {line!r}")
    for index in chart.link_styles:
        assert 0 <= index < len(chart.edges), f"linkStyle {index} points past the {len(chart.edges)} edges"
    for node, cls in chart.classes.items():
        assert node in chart.nodes and cls in chart.class_defs, f"class {cls} on {node} is undefined"
    return chart


# -- DOT --------------------------------------------------------------------------------------------------------
_DOT_TOKEN = re.compile(r'\s*(?:(?P<str>"(?:\\.|[^"\\])*")|(?P<id>[A-Za-z_][\w.]*|-?\d+(?:\.\d+)?)|(?P<sym>->|[{}\[\]=,;]))')


def _dot_tokens(text: str) -> list[tuple[str, str]]:
    tokens, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        m = _DOT_TOKEN.match(text, pos)
        assert m, f"DOT syntax error at {text[pos:pos + 30]!r}"
        kind = m.lastgroup or ""
        value = m.group(kind)
        if kind == "str":
            value = re.sub(r"\\(.)", lambda e: "\n" if e.group(1) == "n" else e.group(1), value[1:-1])
        tokens.append((kind, value))
        pos = m.end()
    return tokens


@dataclass
class Dot:
    name: str
    graph_attrs: dict[str, str] = field(default_factory=dict)
    node_defaults: dict[str, str] = field(default_factory=dict)
    nodes: dict[str, dict[str, str]] = field(default_factory=dict)
    edges: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)


def parse_dot(text: str) -> Dot:
    """A `digraph NAME { ... }` of attribute, node and edge statements (Graphviz's grammar, that subset)."""
    toks = _dot_tokens(text)
    i = 0

    def take(kind: str | None = None, value: str | None = None) -> str:
        nonlocal i
        assert i < len(toks), "unexpected end of DOT"
        k, v = toks[i]
        assert (kind is None or k == kind or (kind == "idstr" and k in ("id", "str"))) and (value is None or v == value), \
            f"expected {value or kind}, got {v!r}"
        i += 1
        return v

    def attrs() -> dict[str, str]:
        out: dict[str, str] = {}
        if i < len(toks) and toks[i] == ("sym", "["):
            take("sym", "[")
            while toks[i] != ("sym", "]"):
                key = take("idstr")
                take("sym", "=")
                out[key] = take("idstr")
                if toks[i] == ("sym", ","):
                    take("sym", ",")
            take("sym", "]")
        return out

    take("id", "digraph")
    graph = Dot(take("idstr"))
    take("sym", "{")
    while toks[i] != ("sym", "}"):
        first = take("idstr")
        if toks[i] == ("sym", "=") :
            take("sym", "=")
            graph.graph_attrs[first] = take("idstr")
        elif first == "node" and toks[i] == ("sym", "["):
            graph.node_defaults.update(attrs())
        elif toks[i] == ("sym", "->"):
            take("sym", "->")
            target = take("idstr")
            assert first in graph.nodes and target in graph.nodes, f"edge {first} -> {target} before its nodes"
            graph.edges.append((first, target, attrs()))
        else:
            assert first not in graph.nodes, f"node {first!r} declared twice"
            graph.nodes[first] = attrs()
        take("sym", ";")
    take("sym", "}")
    assert i == len(toks), "text after the graph"
    return graph
