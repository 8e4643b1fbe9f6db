"""`linked-apps drift`: the trust a stack's state records against the trust the Cloudflare account enforces."""

from __future__ import annotations

import json

import click

from ..review.drift import drift, drift_markdown, drift_text
from ._common import API_URL_HELP, STATE_FILES, echo, fail, format_option, load_state


@click.command("drift")
@click.option("--state", "--against", "state", metavar="FILE", required=True,
              help=f"What the stack recorded: {STATE_FILES.split(', or cloudflare:')[0]}. --against is an alias.")
@click.option("--live", metavar="cloudflare:ACCOUNT_ID", required=True,
              help="The account whose enforced trust to compare with (token in CLOUDFLARE_API_TOKEN; "
                   "'Access: Apps and Policies Read' is enough).")
@click.option("--api-url", metavar="URL", default=None, help=API_URL_HELP.replace("With --state", "With --live"))
@format_option(["text", "json", "markdown"],
               "text for people; json for scripts (added, removed, unchanged, apps_added, apps_removed, "
               "attachments_changed, changed); markdown for an issue or PR comment.")
@click.option("--exit-code", is_flag=True,
              help="Exit 1 when the account drifted from the state (links, apps or attachments differ).")
def drift_command(state: str, live: str, api_url: str | None, fmt: str, exit_code: bool) -> None:
    """Find drift: links Cloudflare enforces that the stack does not record (made by hand), links recorded but
    not enforced, apps on one side only, and reusable policies attached, detached or moved by hand.

    \b
    Exit codes: 0 shown, 1 drifted (only with --exit-code), 2 an input cannot be used.
    """
    if not live.startswith("cloudflare:"):
        fail(f"--live {live}: give the account as cloudflare:ACCOUNT_ID")
    recorded = load_state(state)
    enforced = load_state(live, api_url)
    result = drift(recorded, enforced)
    if fmt == "json":
        click.echo(json.dumps(result.as_dict(), indent=2))
    elif fmt == "markdown":
        click.echo(drift_markdown(result, state, live))
    else:
        echo(drift_text(result, state, live))
    raise SystemExit(1 if exit_code and result.drifted else 0)
