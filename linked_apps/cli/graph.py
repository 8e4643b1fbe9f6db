"""`linked-apps graph`: draw the trust of a stack config or of deployed state, as Mermaid or DOT.

Reads the topology alone (no program run), so it never imports Pulumi.
"""

from __future__ import annotations

from pathlib import Path

import click

from ..review.render import Drawing, dot, mermaid
from ._common import fail, load_state, load_topology


@click.command("graph")
@click.option("--stack", default=None, help="Stack name: draws stacks/Pulumi.<NAME>.yaml.")
@click.option("--config", "config", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="A stack config file (Pulumi.<stack>.yaml, or a bare map of linked-apps:* keys).")
@click.option("--state", "state", default=None, metavar="FILE",
              help="Deployed state instead: a `pulumi stack export` or `pulumi stack output --json` file.")
@click.option("--project-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Project whose stacks/ --stack reads (default: the current directory if it holds Pulumi.yaml).")
@click.option("--format", "fmt", type=click.Choice(["mermaid", "dot"]), default="mermaid", show_default=True,
              help="mermaid (GitHub renders it in Markdown) or dot (Graphviz: `| dot -Tsvg > trust.svg`).")
def graph_command(stack: str | None, config: Path | None, state: str | None, project_dir: Path | None,
                  fmt: str) -> None:
    """Draw who may call whom: one arrow per link, from the app that sends the token to the app that accepts it.

    Give exactly one of --stack, --config or --state. Exit 0, or 2 when the input cannot be read.
    """
    if sum(x is not None for x in (stack, config, state)) != 1:
        fail("give exactly one of --stack NAME, --config FILE or --state FILE")
    graph = load_state(state) if state is not None else load_topology(stack, config, project_dir)[0].trust_graph()
    drawing = Drawing.of_graph(graph)
    click.echo(dot(drawing) if fmt == "dot" else mermaid(drawing))
