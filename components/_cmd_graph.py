"""`linked-apps graph`: draw the trust of a stack config or of deployed state, as Mermaid or DOT.

Reads the topology alone (no program run), so it never imports Pulumi.
"""

from __future__ import annotations

from pathlib import Path

import click

from .cli import fail, project_dir as resolve_project_dir
from .errors import LinkedAppsError
from .graph import TrustGraph
from .render import Drawing, dot, mermaid


def _desired(stack: str | None, config: Path | None, project: Path | None) -> TrustGraph:
    from .plan import read_config_file, stack_file
    from .topology import topology_from_config

    path = config if config is not None else stack_file(stack, resolve_project_dir(project))  # type: ignore[arg-type]
    return topology_from_config(read_config_file(path), source=str(path)).trust_graph()


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
    try:
        if state is not None:
            from .state import read_state

            graph = read_state(state)
        else:
            graph = _desired(stack, config, project_dir)
    except LinkedAppsError as exc:
        fail(str(exc))
    drawing = Drawing.of_graph(graph)
    click.echo(dot(drawing) if fmt == "dot" else mermaid(drawing))
