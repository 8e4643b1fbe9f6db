"""The trust review as a hostile pull request author would try it: names and descriptions that carry markup,
look-alikes, identities swapped behind unchanged names, huge changes, crashes. The Markdown is rendered by a
CommonMark renderer (markdown-it-py with GFM tables, raw HTML allowed as GitHub allows it), not inspected as text.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st
from click.testing import CliRunner, Result
from markdown_it import MarkdownIt
from markdown_it.token import Token

from linked_apps.cli import main
from linked_apps.model.graph import App, Link, TrustGraph
from linked_apps.model.rules import Violation, printable
from linked_apps.review.diff import diff_trust
from linked_apps.review.render import MAX_COMMENT_CHARS, Drawing, diff_markdown, diff_text, dot, mermaid
from tests._review_export import ROOT, dev_config
from tests._review_parsers import fenced_blocks, parse_dot, parse_mermaid

EXAMPLE_STATE = ROOT / "examples" / "dev-state.json"

HOSTILE = [
    "`` ` ``<img src=https://evil.example/pixel.gif>",   # escapes a naive code span
    "@acme/admins please merge", "see #123", "<sub>tiny</sub>", "<b>bold</b>", "&lt;entity&gt;",
    "a\r<!--", "-->z",                                   # \r plus an HTML comment would hide rows
    "%%{init: {'themeCSS': '.edgePath{display:none}'}}%%",  # a Mermaid directive anywhere in the source
    "x\n```\n# heading", "~~~", "```", "nul\x00byte", "\u202eevil", "lone\ud800", "zero\u200bwidth",
    "pipe|split", "back\\|slash", "trailing\\", "[link](https://evil.example)", "*em* _em_",
    "<details><summary>open", "</details>", "](x) ![img](https://evil.example/i.png)",
    " spaced ", "   ", "`", "``x``",
]
ALLOWED_HTML = re.compile(r"</?(sub|details)>|<details><summary>\d+ unchanged links?</summary>")


def renderer() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": True}).enable("table")


def walk(tokens: list[Token]) -> list[Token]:
    out: list[Token] = []
    for token in tokens:
        out.append(token)
        out.extend(walk(token.children or []))
    return out


def graph(apps: list[App], edges: list[tuple[str, str]], descriptions: dict[tuple[str, str], str] | None = None,
          **kw: Any) -> TrustGraph:
    notes = descriptions or {}
    return TrustGraph(apps, [Link(a, b, description=notes.get((a, b))) for a, b in edges], **kw)


def hostile_diff():
    """Every hostile string as an app name on both sides: added links, removed links, unchanged links, apps added
    and removed, a violation message and an unknown deployed uid."""
    api = App("api", "self_hosted")
    desired = graph([api, *(App(f"new {n}", "self_hosted") for n in HOSTILE), *(App(n, "self_hosted") for n in HOSTILE)],
                    [(f"new {n}", "api") for n in HOSTILE] + [(n, "api") for n in HOSTILE])
    deployed = graph([api, *(App(n, "self_hosted") for n in HOSTILE), *(App(f"old {n}", "self_hosted") for n in HOSTILE)],
                     [(n, "api") for n in HOSTILE] + [(f"old {n}", "api") for n in HOSTILE],
                     unknown_uids=[(n, "0b6c7a2e-9f1d-4c3b-8e5a-6d7f8a9b0c1d") for n in HOSTILE[:3]])
    violations = [Violation("unknown-app", f"link `{n}` -> `api`: fix it", (n,)) for n in HOSTILE]
    return diff_trust(desired, deployed, violations)


# -- Markdown, rendered -----------------------------------------------------------------------------------------
def test_hostile_names_produce_no_html_hide_no_row_and_break_no_fence() -> None:
    diff = hostile_diff()
    text = diff_markdown(diff, "stack <b>dev</b>", "state`.json")
    tokens = renderer().parse(text)
    every = walk(tokens)
    html = [t.content.strip() for t in every if t.type in ("html_inline", "html_block")]
    assert html and all(ALLOWED_HTML.fullmatch(h) for h in html), html  # only the comment's own tags
    rendered = renderer().render(text)
    assert "<img" not in rendered and "<b>" not in rendered and "<a " not in rendered and "<em>" not in rendered
    # No row hidden: every table row the renderer sees is one the diff has.
    rows = sum(1 for t in every if t.type == "tr_open")
    headers = sum(1 for t in every if t.type == "thead_open")
    expected = (len(diff.added) + len(diff.removed) + len(diff.violations) + len(diff.apps_added)
                + len(diff.apps_removed) + len(diff.unknown_uids) + len(diff.unchanged))
    assert rows - headers == expected
    # Every name is shown, in a code span, as itself (invisible characters as visible escapes).
    spans = {t.content for t in every if t.type == "code_inline"}
    for name in HOSTILE:
        assert printable(name).replace("\\|", "\\u005c|") in spans, name
    # @mentions, #references and markup stay out of plain text, where GitHub would act on them.
    plain = " ".join(t.content for t in every if t.type == "text")
    assert "@acme" not in plain and "#123" not in plain and "evil.example" not in plain
    # One fence, the Mermaid one, closed where the renderer closes it, holding nothing that restyles it.
    (fence,) = [t for t in every if t.type == "fence"]
    assert fence.info == "mermaid" and fence.content == fenced_blocks(text, "mermaid")[0] + "\n"
    assert "%%" not in fence.content and "{" not in fence.content and "`" not in fence.content
    assert {m for m in re.findall(r"<[^>]*>", fence.content)} == {"<br/>"}
    assert len(parse_mermaid(fence.content).edges) == expected - len(diff.violations) - len(diff.apps_added) \
        - len(diff.apps_removed) - len(diff.unknown_uids)


def test_hostile_names_round_trip_through_mermaid_and_dot() -> None:
    diff = hostile_diff()
    chart = parse_mermaid(mermaid(Drawing.of_diff(diff)))
    drawn = {chart.name(node) for node in chart.nodes}
    assert {printable(n) for n in HOSTILE} <= drawn
    source = dot(Drawing.of_diff(diff))
    assert "\x00" not in source and "\r" not in source and "\ud800" not in source
    parsed = parse_dot(source)
    assert {printable(n) for n in HOSTILE} <= set(parsed.nodes)
    assert len(parsed.edges) == len(diff.added) + len(diff.removed) + len(diff.unchanged)


def test_text_output_carries_no_control_characters() -> None:
    text = diff_text(hostile_diff(), "stack dev", "state.json")
    text.encode("utf-8")  # no lone surrogate left to crash a terminal write
    assert not [ch for ch in text if ch != "\n" and not ch.isprintable()]
    assert "\u202e" not in text and "\\u202e" in text and "\\u0000" in text


def test_plan_markdown_descriptions_cannot_inject() -> None:
    from linked_apps.cli.plan import render_markdown
    from tests._project import plan

    from .conftest import config, link, self_hosted

    result = plan(config({"a": self_hosted("a.acme.com"), "b": self_hosted("b.acme.com")},
                         [link("a", "b", description="<img src=x> @acme/admins #1 ``` |\r<!--")]))
    text = render_markdown(result)
    every = walk(renderer().parse(text))
    assert not [t for t in every if t.type in ("html_inline", "html_block", "fence", "image")]
    assert sum(1 for t in every if t.type == "tr_open") == 2
    (description,) = [t.content for t in every if t.type == "code_inline" and "img" in t.content]
    assert description == "<img src=x> @acme/admins #1 ``` | <!--"


# -- size -------------------------------------------------------------------------------------------------------
def _utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def big_diff(added: int, removed: int, unchanged: int):
    names = [f"service-{i:04d}.payments-platform" for i in range(added + removed + unchanged + 1)]
    hub = App("gateway", "self_hosted")
    new = [(names[i], "gateway") for i in range(added)]
    old = [(names[added + i], "gateway") for i in range(removed)]
    same = [(names[added + removed + i], "gateway") for i in range(unchanged)]
    desired = graph([hub, *(App(a, "self_hosted") for a, _ in new + same)], new + same)
    deployed = graph([hub, *(App(a, "self_hosted") for a, _ in old + same)], old + same)
    return diff_trust(desired, deployed)


def test_a_1500_app_change_fits_one_comment() -> None:
    diff = big_diff(added=1000, removed=500, unchanged=300)
    text = diff_markdown(diff, "stack prod", "state.json")
    assert _utf16(text) <= MAX_COMMENT_CHARS
    assert text.splitlines()[0].startswith("### Trust review: 1000 links added, 500 removed, 300 unchanged; "
                                           "1000 apps added, 500 removed")
    assert "This review is cut to fit one comment" in text.split("|")[0]  # the note comes before any table
    assert "```mermaid" not in text and "<details>" not in text  # the diagram and unchanged rows went first
    every = walk(renderer().parse(text))
    rows = [t for t in every if t.type == "tr_open"]
    shown = re.findall(r"^\| (added|removed) \|", text, flags=re.M)
    assert shown and shown == sorted(shown)  # added rows first, then removed
    assert len(shown) > 600
    assert f"**{1500 - len(shown)} more link changes ({1000 - len(shown)} added, 500 removed) not shown here**" in text
    delimiters = len(re.findall(r"^\|( --- \|)+$", text, flags=re.M))
    assert len(rows) == len(re.findall(r"^\|", text, flags=re.M)) - delimiters  # every row line is a row
    assert not [t for t in every if t.type in ("html_inline", "html_block", "fence")]


def test_cutting_drops_the_diagram_then_unchanged_rows_before_any_change() -> None:
    diff = big_diff(added=40, removed=10, unchanged=1500)
    text = diff_markdown(diff, "stack prod", "state.json")
    assert _utf16(text) <= MAX_COMMENT_CHARS
    assert len(re.findall(r"^\| (added|removed) \|", text, flags=re.M)) == 50  # every change is there
    assert "Not shown here: the diagram, the list of 1500 unchanged links." in text
    small = diff_markdown(big_diff(added=3, removed=1, unchanged=5), "stack prod", "state.json")
    assert "cut to fit" not in small and "```mermaid" in small and "<details>" in small


# -- identities -------------------------------------------------------------------------------------------------
def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def write_config(tmp_path: Path, config: dict[str, Any]) -> Path:
    path = tmp_path / "Pulumi.pr.yaml"
    path.write_text(yaml.safe_dump({"config": config}, allow_unicode=True))
    return path


def test_a_new_uid_behind_an_unchanged_name_is_a_trust_change(tmp_path: Path) -> None:
    config = dev_config()
    config["linked-apps:apps"]["legacy-crm"]["uid"] = "0b6c7a2e-9f1d-4c3b-8e5a-6d7f8a9b0c1d"
    path = write_config(tmp_path, config)
    result = run("diff", "--config", str(path), "--state", str(EXAMPLE_STATE), "--format", "json", "--exit-code")
    assert result.exit_code == 1, result.output
    doc = json.loads(result.output)
    assert doc["apps_changed"] == [{"app": "legacy-crm", "field": "uid", "from": "7c9e6679-7425-40de-944b-e07fc1f90ae7",
                                    "to": "0b6c7a2e-9f1d-4c3b-8e5a-6d7f8a9b0c1d"}]
    markdown = run("diff", "--config", str(path), "--state", str(EXAMPLE_STATE), "--format", "markdown").output
    assert "1 app changed identity" in markdown.splitlines()[0]
    assert "| `legacy-crm` | `uid` | `7c9e6679-7425-40de-944b-e07fc1f90ae7` | `0b6c7a2e-9f1d-4c3b-8e5a-6d7f8a9b0c1d` |" \
        in markdown
    text = run("diff", "--config", str(path), "--state", str(EXAMPLE_STATE)).output
    assert "~ legacy-crm: uid 7c9e6679-7425-40de-944b-e07fc1f90ae7 -> 0b6c7a2e-9f1d-4c3b-8e5a-6d7f8a9b0c1d" in text


def test_a_managed_app_turned_into_a_lookup_is_a_trust_change(tmp_path: Path) -> None:
    config = dev_config()
    config["linked-apps:apps"]["hr-portal"] = {"type": "self_hosted", "lookup": "crm-prod"}
    path = write_config(tmp_path, config)
    result = run("diff", "--config", str(path), "--state", str(EXAMPLE_STATE), "--format", "json", "--exit-code")
    assert result.exit_code == 1
    changes = json.loads(result.output)["apps_changed"]
    assert changes == [{"app": "hr-portal", "field": "managed", "from": True, "to": False},
                       {"app": "hr-portal", "field": "lookup", "from": None, "to": "crm-prod"}]


def test_the_same_identities_are_no_change() -> None:
    result = run("diff", "--stack", "dev", "--state", str(EXAMPLE_STATE), "--format", "json")
    assert json.loads(result.output)["apps_changed"] == []


# -- names and identities refused in config ---------------------------------------------------------------------
LOOK_ALIKES = [
    ("hr-portal\u200b", "U+200B (ZERO WIDTH SPACE)"),
    ("hr-portal\u202e", "U+202E (RIGHT-TO-LEFT OVERRIDE)"),
    ("hr-portal\r", "U+000D, a control character"),
    ("hr-portal ", "must be non-empty with no surrounding spaces"),
    ("hr\x1b[31mportal", "U+001B"),
    ("hr-\ud800portal", "U+D800, a lone surrogate"),
    ("hr\u00a0portal", "U+00A0 (NO-BREAK SPACE)"),
    ("hr-p\u043ertal", "'hr-portal' and 'hr-p\\u043ertal' look alike"),   # Cyrillic о
    ("\uff48r-portal", "'hr-portal' and '\\uff48r-portal' look alike"),   # fullwidth h
    ("hr-portaI", "'hr-portal' and 'hr-portaI' look alike"),               # capital I for l
]


@pytest.mark.parametrize(("name", "message"), LOOK_ALIKES, ids=[ascii(n) for n, _ in LOOK_ALIKES])
def test_unreadable_and_look_alike_names_exit_2_naming_the_culprit(tmp_path: Path, name: str, message: str) -> None:
    config = dev_config()
    config["linked-apps:apps"][name] = {"type": "self_hosted", "domain": "evil.acme.com"}
    path = tmp_path / "Pulumi.pr.yaml"
    # JSON is YAML: it carries every code point as an escape, a lone surrogate included, as a hostile file would.
    path.write_text(json.dumps({"config": config}))
    result = run("diff", "--config", str(path), "--state", str(EXAMPLE_STATE))
    assert result.exit_code == 2, result.output
    (line,) = result.output.strip().splitlines()
    assert line.startswith("linked-apps: ") and message in line and line.isascii() and line.isprintable()


@pytest.mark.parametrize(("second", "what"), [
    ({"type": "self_hosted", "uid": "7C9E6679-7425-40de-944b-e07fc1f90ae7"}, "the same uid"),
    ({"type": "self_hosted", "uid": "0b6c7a2e-9f1d-4c3b-8e5a-6d7f8a9b0c1d",
      "aud": "3f6c2a9e5b1d4f8a7c0e9d2b6a4f1c8e5d3b7a9f0e2c4d6b8a1f3e5c7d9b0a2f"}, "the same AUD tag"),
    ({"type": "self_hosted", "lookup": "payroll-api"}, "the same Cloudflare name 'payroll-api'"),
])
def test_two_apps_with_one_identity_exit_2_naming_both(tmp_path: Path, second: dict[str, str], what: str) -> None:
    config = dev_config()
    config["linked-apps:apps"]["crm-again"] = second
    result = run("diff", "--config", str(write_config(tmp_path, config)), "--state", str(EXAMPLE_STATE))
    assert result.exit_code == 2
    assert what in result.output and "'crm-again'" in result.output


# -- crashes are never "trust changed" ----------------------------------------------------------------------------
def test_an_unexpected_error_exits_2_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import linked_apps.cli.diff as diff_cli

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("something\nunexpected")

    monkeypatch.setattr(diff_cli, "diff_trust", boom)
    result = run("diff", "--stack", "dev", "--state", str(EXAMPLE_STATE), "--exit-code")
    assert result.exit_code == 2
    (line,) = result.output.strip().splitlines()
    assert line.startswith("linked-apps: internal error: RuntimeError: something unexpected")


def test_a_lone_surrogate_in_deployed_state_is_shown_not_crashed_on(tmp_path: Path) -> None:
    doc = json.loads(EXAMPLE_STATE.read_text())
    (stack,) = [r for r in doc["deployment"]["resources"] if r["type"] == "pulumi:pulumi:Stack"]
    stack["outputs"]["apps"]["old\ud800app"] = {"type": "self_hosted", "managed": False,
                                                "uid": "0b6c7a2e-9f1d-4c3b-8e5a-6d7f8a9b0c1d"}
    state = tmp_path / "state.json"
    state.write_text(json.dumps(doc))  # JSON escapes the surrogate as \ud800, as a hand-edited file could
    for fmt in ("text", "markdown", "json", "mermaid", "dot"):
        result = run("diff", "--stack", "dev", "--state", str(state), "--format", fmt, "--exit-code")
        assert result.exit_code == 1, (fmt, result.output)  # an app removed: a trust change, not a crash
        shown = {"dot": "old\\\\ud800app", "mermaid": "old#92;ud800app"}.get(fmt, "old\\ud800app")
        assert shown in result.output, fmt


def test_crm_behind_another_name_is_refused(tmp_path: Path) -> None:
    """The issue's case: `hr-portal` becomes the CRM's uid, so "CRM stays out of finance" would pass by name."""
    config = dev_config()
    config["linked-apps:apps"]["hr-portal"] = {"type": "self_hosted", "uid": "7c9e6679-7425-40de-944b-e07fc1f90ae7"}
    result = run("diff", "--config", str(write_config(tmp_path, config)), "--state", str(EXAMPLE_STATE))
    assert result.exit_code == 2
    assert "apps 'hr-portal' and 'legacy-crm' are one Cloudflare app (the same uid" in result.output


def test_assertions_are_judged_on_identities_the_deployed_state_resolves(tmp_path: Path) -> None:
    # `pulumi stack output --json` of this project's program (components/program.py `_export`): `crm` is managed
    # here and deployed with a uid; the pull request adds `helper`, an existing app named by that same uid.
    crm_uid = "91d6bf95-b044-52ea-b4b9-cda522c73d32"
    state = tmp_path / "outputs.json"
    state.write_text(json.dumps({
        "team_domain": "acme.cloudflareaccess.com",
        "apps": {"crm": {"type": "self_hosted", "managed": True, "uid": crm_uid, "domain": "crm.acme.com"},
                 "payroll": {"type": "self_hosted", "managed": True, "uid": "078c42b2-4b2d-5359-a3fd-376b142aa647",
                             "domain": "payroll.acme.com"}},
        "links": []}))
    config = {"linked-apps:accountId": "0123456789abcdef0123456789abcdef",
              "linked-apps:teamDomain": "acme.cloudflareaccess.com",
              "linked-apps:apps": {"crm": {"type": "self_hosted", "domain": "crm.acme.com"},
                                   "payroll": {"type": "self_hosted", "domain": "payroll.acme.com"},
                                   "helper": {"type": "self_hosted", "uid": crm_uid}},
              "linked-apps:links": [{"from": "helper", "to": "payroll"}],
              "linked-apps:assertions": [{"name": "CRM stays out of finance", "from": "crm",
                                          "never_reaches": ["payroll"]}]}
    path = write_config(tmp_path, config)
    result = run("diff", "--config", str(path), "--state", str(state), "--format", "json")
    assert result.exit_code == 0, result.output
    rules = {v["rule"]: v for v in json.loads(result.output)["violations"]}
    assert set(rules) == {"same-app", "assertion"}
    assert rules["same-app"]["apps"] == ["crm", "helper"]
    assert "CRM stays out of finance" in rules["assertion"]["message"]
    # Without the deployed uid the two names are not known to be one app: the assertion holds by name.
    bare = run("check", "--config", str(path))
    assert "CRM stays out of finance" not in bare.output


def test_questions_print_hostile_state_names_escaped(tmp_path: Path) -> None:
    # `pulumi stack output --json` shape (components/program.py `_export`), hand-edited as a hostile file could be.
    hostile = "crm\u202e\x1b[2Jevil"
    state = tmp_path / "outputs.json"
    state.write_text(json.dumps({
        "team_domain": "acme.cloudflareaccess.com",
        "apps": {"docs-api": {"type": "self_hosted", "managed": True, "uid": "8680cdd6-daef-5acf-91f6-d0f9d58bf47a"},
                 hostile: {"type": "self_hosted", "managed": False, "uid": "7c9e6679-7425-40de-944b-e07fc1f90ae7"}},
        "links": [{"from": hostile, "to": "docs-api", "policy_id": "0b6c7a2e-9f1d-4c3b-8e5a-6d7f8a9b0c1d"}]}))
    result = run("who-calls", "docs-api", "--state", str(state))
    assert result.exit_code == 0, result.output
    assert "crm\\u202e\\u001b[2Jevil" in result.output and "\x1b" not in result.output and "\u202e" not in result.output


# -- any text at all ---------------------------------------------------------------------------------------------
_ANY_TEXT = st.text(st.characters(exclude_categories=()) | st.sampled_from("`|\\<>!-[]()#@%{}\r\n*_~&;:"),
                    min_size=1, max_size=12)


@settings(max_examples=150, deadline=None)
@example([" ", "  x  ", "`", "a\\|b"], ["\\", "|"])
@given(st.lists(_ANY_TEXT, min_size=1, max_size=4, unique=True), st.lists(_ANY_TEXT, max_size=3, unique=True))
def test_any_names_render_as_themselves_in_one_row_each(added: list[str], removed: list[str]) -> None:
    removed = [n for n in removed if n not in added]
    api = App("api", "self_hosted")
    desired = graph([api, *(App(n, "self_hosted") for n in added)], [(n, "api") for n in added])
    deployed = graph([api, *(App(n, "self_hosted") for n in removed)], [(n, "api") for n in removed])
    diff = diff_trust(desired, deployed)
    text = diff_markdown(diff, "stack dev", "state.json")
    every = walk(renderer().parse(text))
    html = [t.content.strip() for t in every if t.type in ("html_inline", "html_block")]
    assert all(ALLOWED_HTML.fullmatch(h) for h in html), html
    header, *link_rows = _tables(every)[0]  # the first table holds the link changes
    assert header == ["change", "from", "to", "token"]
    assert [(c[0], c[1]) for c in link_rows] == [("added", _shown(n)) for n in sorted(added)] + \
        [("removed", _shown(n)) for n in sorted(removed)]
    (fence,) = [t for t in every if t.type == "fence"]
    assert "%%" not in fence.content and len(parse_mermaid(fence.content).edges) == len(added) + len(removed)


def _shown(name: str) -> str:
    """A name as its code span shows it (see `markdown_code`)."""
    return printable(name).replace("\\|", "\\u005c|") or "(empty)"


def _tables(tokens: list[Token]) -> list[list[list[str]]]:
    """Each table as rows of cell texts, as the renderer parsed them (code spans and text, in order)."""
    tables: list[list[list[str]]] = []
    for i, token in enumerate(tokens):
        if token.type == "table_open":
            tables.append([])
        elif token.type == "tr_open":
            tables[-1].append([])
        elif token.type == "inline" and tokens[i - 1].type in ("td_open", "th_open"):
            parts = [c for c in token.children or [] if c.type == "code_inline" or c.type == "text" and c.content.strip()]
            tables[-1][-1].append("".join(c.content for c in parts))
    return tables


def test_the_program_exports_how_each_app_managed_elsewhere_is_found(tmp_path: Path) -> None:
    """So a state from `pulumi up` lets `diff` see a lookup or stack reference change behind an unchanged name."""
    from linked_apps.review.plan import read_config_file
    from tests._project import plan

    result = plan(read_config_file(ROOT / "stacks" / "Pulumi.prod.yaml"), stack="prod")
    apps = result.outputs["apps"]
    assert {n: a["lookup"] for n, a in apps.items() if "lookup" in a} == {"storefront-admin": "storefront-admin"}
    assert {n: a["stack"] for n, a in apps.items() if "stack" in a} == {
        "platform-mcp": "acme/platform-mcp/prod apps.mcp-server"}
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps(result.outputs, default=str))
    state = run("diff", "--config", str(ROOT / "stacks" / "Pulumi.prod.yaml"), "--state", str(outputs),
                "--format", "json")
    assert state.exit_code == 0 and json.loads(state.output)["apps_changed"] == [], state.output
