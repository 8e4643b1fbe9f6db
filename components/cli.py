"""`linked-apps`: the command line. Each command's module is imported only when that command runs, so
`linked-apps verify` never pays for Pulumi or pulumi_cloudflare.

Exit codes shared by every command: 0 success, 1 the answer is "no" (rule broken, token denied, trust
changed with --exit-code), 2 the input cannot be used (usage, unreadable file, unknown app).
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from .errors import LinkedAppsError

if TYPE_CHECKING:
    from .graph import TrustGraph
    from .plan import Plan
    from .topology import Topology

# command name -> "module:attribute" of a click.Command, loaded on first use.
COMMANDS: dict[str, str] = {
    "plan": "components._cmd_plan:plan_command",
    "check": "components._cmd_check:check_command",
    "who-calls": "components._cmd_questions:who_calls_command",
    "reach": "components._cmd_questions:reach_command",
    "explain": "components._cmd_questions:explain_command",
    "diff": "components._cmd_diff:diff_command",
    "graph": "components._cmd_graph:graph_command",
    "verify": "components._cmd_verify:verify_command",
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, attr = target.split(":")
        return getattr(importlib.import_module(module), attr)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="linked-apps", prog_name="linked-apps")
def main() -> None:
    """Cloudflare Access app-to-app trust (Linked App Token policies) as code.

    \b
    Exit codes: 0 ok, 1 a rule is broken / a token is denied / trust changed (with --exit-code),
    2 the input cannot be used.
    """


def fail(message: str) -> NoReturn:
    """Report unusable input and exit 2, never with a traceback."""
    click.echo(f"linked-apps: {message}", err=True)
    sys.exit(2)


def project_dir(explicit: Path | None = None) -> Path:
    """The Pulumi project to run: --project-dir, else the current directory if it has Pulumi.yaml, else ours."""
    from .plan import PROJECT_ROOT

    if explicit is not None:
        return explicit
    cwd = Path.cwd()
    return cwd if (cwd / "Pulumi.yaml").is_file() and (cwd / "__main__.py").is_file() else PROJECT_ROOT


def config_path(stack: str | None, config: Path | None, project: Path | None) -> Path:
    """The stack config file of `--stack NAME` or `--config FILE`; giving both or neither exits 2."""
    from .plan import stack_file

    if (stack is None) == (config is None):
        fail("give exactly one of --stack NAME or --config FILE")
    return config if config is not None else stack_file(stack, project_dir(project))  # type: ignore[arg-type]


def load_topology(stack: str | None, config: Path | None, project: Path | None) -> tuple[Topology, str]:
    """The desired topology from the config alone (no program run, no Pulumi) and a label for it; errors exit 2."""
    from .plan import read_config_file
    from .topology import topology_from_config

    path = config_path(stack, config, project)
    try:
        return topology_from_config(read_config_file(path), source=str(path)), f"stack {stack}" if stack else str(path)
    except LinkedAppsError as exc:
        fail(str(exc))


def load_desired(stack: str | None, config: Path | None, project: Path | None) -> Plan:
    """Plan the program for `--stack NAME` or `--config FILE` (exactly one); ConfigError exits 2."""
    from .plan import plan, read_config_file

    path = config_path(stack, config, project)
    root = project_dir(project)
    if not (root / "__main__.py").is_file():
        fail(f"{root} has no __main__.py, so there is no Pulumi program to plan; point --project-dir at the "
             "project (the folder holding Pulumi.yaml and __main__.py)")
    try:
        values = read_config_file(path)
        return plan(values, source=str(path), stack=stack or path.stem.split(".")[-1],
                    program=root / "__main__.py", resolve_outputs=False)
    except LinkedAppsError as exc:
        fail(str(exc))


def load_state(path: Path | str) -> TrustGraph:
    """Deployed trust from a `pulumi stack export` or `pulumi stack output --json` file ('-': stdin); errors exit 2."""
    from .state import read_state

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


if __name__ == "__main__":  # pragma: no cover
    main()
