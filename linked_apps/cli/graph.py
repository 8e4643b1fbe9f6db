"""`linked-apps graph`: draw the trust of a stack config or of deployed state, as Mermaid or DOT.

Reads the topology alone (no program run), so it never imports Pulumi.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..review.render import Drawing, dot, mermaid
from ._common import fail, format_option, load_state, load_topology, stack_options, state_option


@click.command("graph")
@stack_options
@state_option("Draw deployed trust instead")
@format_option(["mermaid", "dot", "json"],
               "mermaid (GitHub renders it in Markdown), dot (Graphviz: `| dot -Tsvg > trust.svg`), or json for "
               "scripts ({team_domain, apps, links}).")
def graph_command(stack: str | None, config: Path | None, project_dir: Path | None, state: str | None,
                  api_url: str | None, fmt: str) -> None:
    """Draw who may call whom: one arrow per link, from the app that sends the token to the app that accepts it.

    Give exactly one of --stack, --config (desired trust) or --state (deployed trust).

    \b
    Exit codes: 0 drawn, 2 the input cannot be used.
    """
    if sum(x is not None for x in (stack, config, state)) != 1:
        fail("--stack/--config/--state: give exactly one of --stack NAME, --config FILE or --state FILE")
    graph = load_state(state, api_url) if state is not None else load_topology(stack, config, project_dir)[0].trust_graph()
    if fmt == "json":
        click.echo(json.dumps(graph.as_dict(), indent=2))
        return
    drawing = Drawing.of_graph(graph)
    click.echo(dot(drawing) if fmt == "dot" else mermaid(drawing))
