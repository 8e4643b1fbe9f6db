"""`linked-apps`: the command line. Each command's module is imported only when that command runs, so
`linked-apps verify` never pays for Pulumi or pulumi_cloudflare.

Exit codes shared by every command: 0 success, 1 the answer is "no" (rule broken, token denied, trust
changed with --exit-code), 2 the input cannot be used (usage, unreadable file, unknown app).
"""

from __future__ import annotations

import importlib

import click

# command name -> "module:attribute" of a click.Command, loaded on first use.
COMMANDS: dict[str, str] = {
    "plan": "linked_apps.cli.plan:plan_command",
    "check": "linked_apps.cli.check:check_command",
    "who-calls": "linked_apps.cli.questions:who_calls_command",
    "reach": "linked_apps.cli.questions:reach_command",
    "explain": "linked_apps.cli.questions:explain_command",
    "diff": "linked_apps.cli.diff:diff_command",
    "graph": "linked_apps.cli.graph:graph_command",
    "verify": "linked_apps.cli.verify:verify_command",
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

    def invoke(self, ctx: click.Context) -> object:
        """Exit 1 means "no" (trust changed, rule broken, token denied), so a crash must never exit 1: anything
        a command did not handle becomes one line and exit 2."""
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit, KeyboardInterrupt):
            raise
        except Exception as exc:  # noqa: BLE001 - the last line of defence
            from ..errors import LinkedAppsError
            from ._common import fail

            if isinstance(exc, LinkedAppsError):
                fail(str(exc))
            detail = " ".join(str(exc).split())[:300]
            fail(f"internal error ({type(exc).__name__}: {detail}); nothing was changed. Please report it with "
                 "the command that caused it")


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="linked-apps", prog_name="linked-apps")
def main() -> None:
    """Cloudflare Access app-to-app trust (Linked App Token policies) as code.

    \b
    Exit codes: 0 ok, 1 a rule is broken / a token is denied / trust changed (with --exit-code),
    2 the input cannot be used.
    """
