"""`linked-apps diff`: desired trust (the plan of a stack config) against deployed trust (a state file)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..errors import LinkedAppsError
from ..review.diff import diff_trust
from ..review.render import Drawing, diff_markdown, diff_text, dot, mermaid
from ._common import fail, load_state, load_topology, stack_options


@click.command("diff")
@stack_options
@click.option("--against", "against", required=True, metavar="STATE",
              help="Deployed state: a `pulumi stack export` or `pulumi stack output --json` file ('-' reads stdin).")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown", "mermaid", "dot"]), default="text",
              show_default=True,
              help="text for people; json for scripts (added, removed, unchanged, apps_added, apps_removed, "
                   "violations); markdown for a PR comment; mermaid or dot for the picture alone.")
@click.option("--exit-code", is_flag=True,
              help="Exit 1 when trust changes (a link or an app is added or removed), like `git diff --exit-code`.")
def diff_command(stack: str | None, config: Path | None, project_dir: Path | None, against: str, fmt: str,
                 exit_code: bool) -> None:
    """Show which app gains or loses the right to call which: the plan of a stack against deployed state.

    Apps are matched by their Cloudflare name. The plan's rule violations are reported, not fatal.
    Exit 0; with --exit-code 1 when trust changes; 2 when an input cannot be read.
    """
    deployed = load_state(against)
    # The desired trust and its violations come from the topology, exactly as the program's own check computes
    # them; running the program under mocks (and importing pulumi_cloudflare) would add 1.5 s and nothing else.
    topology, _ = load_topology(stack, config, project_dir)
    try:
        violations = topology.violations()
    except LinkedAppsError as exc:
        fail(str(exc))
    result = diff_trust(topology.trust_graph(), deployed, violations, deferred=topology.deferred_links())
    desired_label = f"stack {stack}" if stack else str(config)
    if fmt == "json":
        click.echo(json.dumps(result.as_dict(), indent=2))
    elif fmt == "markdown":
        click.echo(diff_markdown(result, desired_label, against))
    elif fmt == "mermaid":
        click.echo(mermaid(Drawing.of_diff(result)))
    elif fmt == "dot":
        click.echo(dot(Drawing.of_diff(result)))
    else:
        click.echo(diff_text(result, desired_label, against))
    raise SystemExit(1 if exit_code and result.changed else 0)
