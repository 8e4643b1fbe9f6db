"""`linked-apps`: the command line. Each command's module is imported only when that command runs, so
`linked-apps verify` never pays for Pulumi or pulumi_cloudflare.

One grammar on every command: `--format` picks the output (text first), deployed state is `--state FILE`
(`--against` an alias), apps are named positionally (`--from`/`--to` accepted as aliases; `verify` documents
`--to APP`), and every error is one line `linked-apps: <culprit>: <what to do>` with exit 2.

Exit codes shared by every command: 0 success, 1 the answer is "no" (rule broken, token denied, trust
changed with --exit-code, no path), 2 the input cannot be used (usage, unreadable file, unknown app).
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from ..errors import LinkedAppsError

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
    "drift": "linked_apps.cli.drift:drift_command",
    "import": "linked_apps.cli.adopt:import_command",
}

# The top-level list shows these instead of loading every command (and cutting its docstring mid-sentence).
SUMMARIES: dict[str, str] = {
    "plan": "Plan a stack offline: apps, links, resources, rule violations.",
    "check": "Check the rules and trust assertions (config or deployed state).",
    "who-calls": "Every app whose user identity can get to APP.",
    "reach": "Every app APP's user identity can get to.",
    "explain": "Can FROM reach TO? The path and policies, or the missing link.",
    "diff": "Trust a stack config adds or removes against deployed state.",
    "graph": "Draw who may call whom (Mermaid, DOT, JSON).",
    "verify": "Would Access let this token through to APP, as whom, and why.",
    "drift": "Trust the account enforces against what the stack recorded.",
    "import": "Write a stack config that adopts an account's apps and links.",
}


class _Group(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, attr = target.split(":")
        return getattr(importlib.import_module(module), attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, SUMMARIES[name]) for name in self.list_commands(ctx)])

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        """click's main, except that every failure is one line on stderr and exit 2 (never a usage block)."""
        try:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.Exit as done:  # --help, --version
            sys.exit(done.exit_code)
        except click.exceptions.Abort:
            _one_line("interrupted", "nothing was changed")
        except click.UsageError as exc:
            sub = exc.ctx.command.name if exc.ctx is not None and exc.ctx.parent is not None else None
            help_of = f"linked-apps {sub} --help" if sub else "linked-apps --help"
            _one_line(sub or "usage", f"{exc.format_message()} (see '{help_of}')")
        except click.ClickException as exc:
            _one_line("error", exc.format_message())
        except KeyboardInterrupt:
            _one_line("interrupted", "nothing was changed")
        except (SystemExit, MemoryError):
            raise
        except LinkedAppsError as exc:  # reported on purpose, but not caught by the command
            _one_line("error", str(exc))
        except Exception as exc:  # noqa: BLE001 - a bug must not read as "denied" (1) to a script
            _one_line("internal error", f"{type(exc).__name__}: {str(exc)[:300]}; nothing was changed, please report it")
        sys.exit(0)


def _one_line(culprit: str, what: str) -> None:
    from ..model.rules import printable  # names and messages quote hostile input

    click.echo(f"linked-apps: {printable(culprit)}: {printable(' '.join(what.split()))}", err=True)
    sys.exit(2)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="linked-apps", prog_name="linked-apps")
def main() -> None:
    """Cloudflare Access app-to-app trust (Linked App Token policies) as code.

    \b
    Grammar: --format on every command; deployed state is --state FILE; apps are named positionally
    (--from/--to accepted as aliases).
    Exit codes: 0 ok, 1 a rule is broken / a token is denied / trust changed (with --exit-code) /
    no path (explain), 2 the input cannot be used.
    """
