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
        fail("--stack/--config: give exactly one of --stack NAME or --config FILE")
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
        fail(f"{root}: no __main__.py, so there is no Pulumi program to plan; point --project-dir at the "
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


def load_state(source: Path | str, api_url: str | None = None) -> TrustGraph:
    """Deployed trust from a state file ('-': stdin) or `cloudflare:ACCOUNT_ID`; errors exit 2."""
    from ..state import read_deployed

    try:
        return read_deployed(source, api_url=api_url)
    except LinkedAppsError as exc:
        fail(str(exc))


def stack_options(fn: Any = None, *, runs_program: bool = False) -> Any:
    """`--stack/--config/--project-dir`, shared by every command that reads the desired topology."""

    def add(fn: Any) -> Any:
        project_help = ("The Pulumi project whose __main__.py plan runs" if runs_program
                        else "The Pulumi project whose stacks/ --stack reads")
        fn = click.option("--project-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                          help=f"{project_help} (default: the nearest folder from here up holding Pulumi.yaml).")(fn)
        fn = click.option("--config", "config", type=click.Path(dir_okay=False, path_type=Path), default=None,
                          help="A stack config file (Pulumi.<stack>.yaml, or a bare map of linked-apps:* keys).")(fn)
        fn = click.option("--stack", default=None, metavar="NAME",
                          help="Stack name: reads stacks/Pulumi.<NAME>.yaml of the project.")(fn)
        return fn

    return add(fn) if fn is not None else add


STATE_FILES = ("a `pulumi stack export` or `pulumi stack output --json` file ('-' reads standard input), or "
               "cloudflare:ACCOUNT_ID for the live account (token in CLOUDFLARE_API_TOKEN)")
API_URL_HELP = ("With --state cloudflare:ACCOUNT_ID: the API's base URL (default the SDK's, "
                "https://api.cloudflare.com/client/v4); https, or plain http only to this machine.")


def state_option(help: str, *, required: bool = False) -> Any:
    """`--state FILE` (alias `--against`) and `--api-url`: deployed state, spelled the same on every command."""

    def add(fn: Any) -> Any:
        fn = click.option("--api-url", metavar="URL", default=None, help=API_URL_HELP)(fn)
        # No explicit default: click 8.3+ counts `default=None` as a value, and `required` would never fire.
        return click.option("--state", "--against", "state", metavar="FILE", required=required,
                            help=f"{help}: {STATE_FILES}. --against is an alias.")(fn)

    return add


def format_option(choices: list[str], help: str, default: str | None = None) -> Any:
    """`--format`, on every command; the first choice is the default."""
    return click.option("--format", "fmt", type=click.Choice(choices), default=default or choices[0],
                        show_default=True, help=help)


def app_operand(param: str, flag: str, metavar: str) -> Any:
    """An app named positionally, with the option of its role (`--from`/`--to`) accepted as an alias."""

    def add(fn: Any) -> Any:
        fn = click.option(flag, f"{param}_option", metavar="APP", default=None,
                          help=f"The same as the {metavar} argument.")(fn)
        return click.argument(param, metavar=f"[{metavar}]", required=False)(fn)

    return add


def one_app(positional: str | None, option: str | None, metavar: str, flag: str) -> str:
    """The app of an operand given positionally or by its option; both (differing) or neither exits 2."""
    if positional is not None and option is not None and positional != option:
        fail(f"{metavar}: given as {positional!r} and as {flag} {option!r}; name the app once")
    app = positional if positional is not None else option
    if app is None:
        fail(f"{metavar}: missing; name the app (a Cloudflare name, uid or domain) as {metavar} or {flag} APP")
    return app
