"""`linked-apps plan`: the apps, links, resources and rule violations a stack config would produce."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..model.rules import token_header
from ..review.render import markdown_code
from ._common import echo, format_option, load_desired, stack_options

if TYPE_CHECKING:
    from ..review.plan import Plan


DEFERRED_NOTE = ("each attaches on the next `pulumi up`, once its source's trust policy exists (the first up "
                 "creates everything else and warns naming them)")


def _short_type(token: str) -> str:
    return token.rsplit(":", 1)[-1]


def render_text(p: Plan) -> str:
    apps = p.topology.apps
    width = max((len(n) for n in apps), default=4)
    out = [f"Apps ({len(apps)})"]
    for name, spec in apps.items():
        out.append(f"  {name:<{width}}  {spec.type:<11}  {'managed' if spec.managed else 'managed elsewhere'}")
    out.append(f"\nLinks ({len(p.topology.links)})")
    arrows = [f"{link.source} -> {link.target}" for link in p.topology.links]
    arrow_width = max((len(a) for a in arrows), default=0)
    deferred = set(p.deferred)
    for arrow, link in zip(arrows, p.topology.links):
        src = apps.get(link.source)
        header = f"[{token_header(src.type if src else None)}]"
        note = f"  {link.description}" if link.description else ""
        mark = "~" if (link.source, link.target) in deferred else " "
        out.append(f" {mark}{arrow:<{arrow_width}}  {header:<23}{note}".rstrip())
    if deferred:
        out.append(f"  ~ closes a cycle of trust: {DEFERRED_NOTE}")
    if p.violations:
        out.append(f"\nViolations ({len(p.violations)}): nothing would be sent to Cloudflare")
        out.extend(f"  [{v.rule}] {v.message}" for v in p.violations)
    else:
        out.append(f"\nResources ({len(p.resources)})")
        out.extend(f"  {_short_type(r['type']):<26}  {r['name']}" for r in p.resources)
        held = len(p.topology.assertions)
        out.append("\nViolations: none" + (f" ({held} trust assertion(s) hold)" if held else ""))
    return "\n".join(out)


def render_markdown(p: Plan) -> str:
    apps = p.topology.apps
    status = (f"**{len(p.violations)} rule violation(s)**" if p.violations
              else f"{len(p.resources)} resources, no violations")
    out = [f"### linked-apps plan: {len(apps)} apps, {len(p.topology.links)} links, {status}", "",
           "| from | to | token | description |", "| --- | --- | --- | --- |"]
    deferred = set(p.deferred)
    for link in p.topology.links:
        src = apps.get(link.source)
        note = markdown_code(" ".join(link.description.split())) if link.description else ""
        if (link.source, link.target) in deferred:
            note = f"{note} (attaches on the next `pulumi up`)".lstrip()
        out.append(f"| {markdown_code(link.source)} | {markdown_code(link.target)} | "
                   f"{markdown_code(token_header(src.type if src else None))} | {note} |")
    if deferred:
        out += ["", f"_{len(deferred)} link(s) close a cycle of trust: {DEFERRED_NOTE}._"]
    if p.violations:
        out += ["", "| rule | message |", "| --- | --- |"]
        out += [f"| {markdown_code(v.rule)} | {markdown_code(v.message)} |" for v in p.violations]
    return "\n".join(out)


@click.command("plan")
@stack_options(runs_program=True)
@format_option(["text", "json", "markdown"],
               "text for people, json for scripts (apps, links, deferred, violations, resources), markdown for PRs.")
def plan_command(stack: str | None, config: Path | None, project_dir: Path | None, fmt: str) -> None:
    """Plan a stack offline: run the program under Pulumi's mock runtime and show what it would create.

    No Pulumi CLI and no Cloudflare credentials are needed; secure config values become placeholders.
    Needs the Pulumi SDK: pip install 'linked-apps[pulumi]'.

    \b
    Exit codes: 0 every rule holds, 1 a rule is broken, 2 the input cannot be used.
    """
    result = load_desired(stack, config, project_dir)
    if fmt == "json":
        click.echo(json.dumps(result.as_dict(), indent=2))
    elif fmt == "markdown":
        click.echo(render_markdown(result))
    else:
        echo(render_text(result))
    raise SystemExit(1 if result.violations else 0)
