"""What every command shares: one-line failures (exit 2), reading the desired topology and deployed state,
the `--stack/--config/--project-dir` options."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from ..errors import LinkedAppsError

if TYPE_CHECKING:
    from ..model.graph import TrustGraph
    from ..model.topology import Topology
    from ..review.plan import Plan

def echo(text: str) -> None:
    """Print text for a terminal: names, descriptions and reasons come from configs, state files and tokens, so
    every line goes through `printable` (no control character, bidi override or lone surrogate reaches it)."""
    from ..model.rules import printable

    click.echo("\n".join(printable(line) for line in text.split("\n")))


def fail(message: str) -> NoReturn:
    """Report unusable input and exit 2, never with a traceback. Messages quote hostile input (names, paths,
    file contents): `printable` keeps control characters and bidi overrides out of the terminal."""
    from ..model.rules import printable

    click.echo("\n".join(printable(line) for line in f"linked-apps: {message}".split("\n")), err=True)
    sys.exit(2)


def project_dir(explicit: Path | None = None) -> Path:
    """The Pulumi project: --project-dir, else the nearest folder from here up that holds Pulumi.yaml."""
    if explicit is not None:
        return explicit
    here = Path.cwd()
    for folder in (here, *here.parents):
        if (folder / "Pulumi.yaml").is_file():
            return folder
    fail(f"{here}: no Pulumi.yaml here or above; run from the project's folder or pass --project-dir DIR")


def config_path(stack: str | None, config: Path | None, project: Path | None) -> Path:
    """The stack config file of `--stack NAME` or `--config FILE`; giving both or neither exits 2."""
    from ..review.plan import stack_file

    if (stack is None) == (config is None):
        fail("give exactly one of --stack NAME or --config FILE")
    return config if config is not None else stack_file(stack, project_dir(project))  # type: ignore[arg-type]


def load_topology(stack: str | None, config: Path | None, project: Path | None) -> tuple[Topology, str]:
    """The desired topology from the config alone (no program run, no Pulumi) and a label for it; errors exit 2."""
    from ..model.topology import topology_from_config
    from ..review.plan import read_config_file

    path = config_path(stack, config, project)
    try:
        return topology_from_config(read_config_file(path), source=str(path)), f"stack {stack}" if stack else str(path)
    except LinkedAppsError as exc:
        fail(str(exc))


def load_desired(stack: str | None, config: Path | None, project: Path | None) -> Plan:
    """Plan the program for `--stack NAME` or `--config FILE` (exactly one); ConfigError exits 2."""
    from ..review.plan import plan, read_config_file

    _require_pulumi()
    path = config_path(stack, config, project)
    root = project_dir(project)
    if not (root / "__main__.py").is_file():
        fail(f"{root} has no __main__.py, so there is no Pulumi program to plan; point --project-dir at the "
             "project (the folder holding Pulumi.yaml and __main__.py)")
    try:
        values = read_config_file(path)
        return plan(values, program=root / "__main__.py", source=str(path),
                    stack=stack or path.stem.split(".")[-1], resolve_outputs=False)
    except LinkedAppsError as exc:
        fail(str(exc))


def _require_pulumi() -> None:
    """`plan` runs the program on the Pulumi SDK, which the plain install leaves out."""
    from importlib.util import find_spec

    missing = [name for name in ("pulumi", "pulumi_cloudflare") if find_spec(name) is None]
    if missing:
        fail(f"plan: needs {' and '.join(missing)}; install them with: pip install 'linked-apps[pulumi]'")


def load_state(path: Path | str) -> TrustGraph:
    """Deployed trust from a `pulumi stack export` or `pulumi stack output --json` file ('-': stdin); errors exit 2."""
    from ..state import read_state

    try:
        return read_state(path)
    except LinkedAppsError as exc:
        fail(str(exc))


def stack_options(fn: Any) -> Any:
    """`--stack/--config/--project-dir`, shared by every command that reads the desired topology."""
    fn = click.option("--project-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                      help="Pulumi project whose __main__.py to run (default: the current directory if it holds "
                           "Pulumi.yaml, else this package's project).")(fn)
    fn = click.option("--config", "config", type=click.Path(dir_okay=False, path_type=Path), default=None,
                      help="A stack config file (Pulumi.<stack>.yaml, or a bare map of linked-apps:* keys).")(fn)
    fn = click.option("--stack", default=None, help="Stack name: reads stacks/Pulumi.<NAME>.yaml.")(fn)
    return fn

