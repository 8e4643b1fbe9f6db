"""`linked-apps check`: the stack's rules and trust assertions, on the desired topology or on deployed state."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..errors import UnknownAppError
from ._common import echo, fail, format_option, load_state, load_topology, stack_options, state_option


@click.command("check")
@stack_options
@state_option("Check the assertions against deployed trust instead")
@format_option(["text", "json"], "text for people, json for scripts ({against, state, assertions, not_deployed, "
                                 "violations}).")
def check_command(stack: str | None, config: Path | None, project_dir: Path | None, state: str | None,
                  api_url: str | None, fmt: str) -> None:
    """Check the stack's rules and trust assertions (linked-apps:assertions).

    Without --state: the rules and the assertions on the desired topology, from the config alone (quick; `plan`
    reports the same violations after running the program). With --state FILE: the assertions on the trust
    that is deployed, e.g. to catch a link someone added by hand. Apps an assertion names that the state lacks
    are listed as not deployed (JSON `not_deployed`) and judged as apps with no links.

    \b
    Exit codes: 0 everything holds, 1 a rule or an assertion fails, 2 the input cannot be used.
    """
    topology, where = load_topology(stack, config, project_dir)
    absent: list[str] = []
    if state is None:
        against, violations = f"desired trust, {where}", topology.violations()
    else:
        graph = load_state(state, api_url)
        named = (name for assertion in topology.assertions for _, name in assertion.app_refs())
        absent = sorted({name for name in named if name not in graph.apps})
        try:
            violations = topology.assertion_violations(graph)
        except UnknownAppError as exc:
            fail(f"{state}: {exc}")
        against = f"deployed trust in {state}"
    if fmt == "json":
        click.echo(json.dumps({"against": "deployed" if state is not None else "desired",
                               "state": str(state) if state is not None else None,
                               "assertions": len(topology.assertions),
                               "not_deployed": absent,
                               "violations": [v.as_dict() for v in violations]}, indent=2))
    else:
        n = len(topology.assertions)
        if violations:
            echo(f"{len(violations)} violation(s) on {against}:")
            echo("\n".join(f"  [{v.rule}] {v.message}" for v in violations))
        else:
            what = "rules and " if state is None else ""
            echo(f"ok: the {what}{n} assertion{'s' if n != 1 else ''} hold on {against}")
        if absent:
            echo(f"note: not in the deployed state, so linked to nothing there: {', '.join(absent)}")
    raise SystemExit(1 if violations else 0)
