"""`linked-apps diff`: desired trust (the plan of a stack config) against deployed trust (a state file)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..errors import LinkedAppsError
from ..review.diff import diff_trust, resolve_identities
from ..review.render import Drawing, diff_markdown, diff_text, dot, mermaid
from ._common import echo, fail, format_option, load_state, load_topology, stack_options, state_option


@click.command("diff")
@stack_options
@state_option("The deployed side", required=True)
@format_option(["text", "json", "markdown", "mermaid", "dot"],
               "text for people; json for scripts (added, removed, unchanged, apps_added, apps_removed, "
               "apps_changed, violations); markdown for a PR comment (at most 65,000 characters); mermaid or "
               "dot for the picture alone.")
@click.option("--exit-code", is_flag=True,
              help="Exit 1 when trust changes (a link or an app is added or removed, or a name now stands for "
                   "another app), like `git diff --exit-code`.")
def diff_command(stack: str | None, config: Path | None, project_dir: Path | None, state: str,
                 api_url: str | None, fmt: str, exit_code: bool) -> None:
    """Show which app gains or loses the right to call which: a stack config against deployed state.

    Apps are matched by their Cloudflare name, then compared by identity (uid, lookup, stack reference,
    managed-ness, type). The config's rule violations are reported, not fatal.

    \b
    Exit codes: 0 shown, 1 trust changed (only with --exit-code), 2 an input cannot be used.
    """
    deployed = load_state(state, api_url)
    # The desired trust and its violations come from the topology, exactly as the program's own check computes
    # them; running the program under mocks (and importing pulumi_cloudflare) would add 1.5 s and nothing else.
    topology, _ = load_topology(stack, config, project_dir)
    desired = topology.trust_graph()
    # Assertions are judged on identities as deployed state resolves them, too: a name that turns out to be
    # another app's uid cannot slip a link past an assertion about that app.
    resolved, same_app = resolve_identities(desired, deployed)
    try:
        violations = topology.violations() + same_app
        violations += [v for v in topology.assertion_violations(resolved) if v not in violations]
    except LinkedAppsError as exc:
        fail(str(exc))
    result = diff_trust(desired, deployed, violations, deferred=topology.deferred_links())
    desired_label = f"stack {stack}" if stack else str(config)
    if fmt == "json":
        click.echo(json.dumps(result.as_dict(), indent=2))
    elif fmt == "markdown":
        click.echo(diff_markdown(result, desired_label, state))
    elif fmt == "mermaid":
        click.echo(mermaid(Drawing.of_diff(result)))
    elif fmt == "dot":
        click.echo(dot(Drawing.of_diff(result)))
    else:
        echo(diff_text(result, desired_label, state))
    raise SystemExit(1 if exit_code and result.changed else 0)
