"""`linked-apps import`: write a stack config that adopts an existing account's apps and links."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..errors import LinkedAppsError
from ..model.rules import printable
from ._common import API_URL_HELP, echo, fail, format_option


@click.command("import")
@click.argument("source", metavar="cloudflare:ACCOUNT_ID")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The stack config file to write, e.g. stacks/Pulumi.prod.yaml.")
@click.option("--team-domain", metavar="D", default=None,
              help="Team domain (default: the auth_domain of the account's Zero Trust organization).")
@click.option("--existing", is_flag=True,
              help="Declare apps by uid instead of adopting them (apps that receive links stay managed: only "
                   "their own policy list can carry the stack's policies).")
@click.option("--force", is_flag=True, help="Overwrite --out if it exists.")
@click.option("--api-url", metavar="URL", default=None, help=API_URL_HELP.replace("With --state ", "For "))
@format_option(["text", "json"], "text for people; json prints {out, apps, adopted, links, not_expressed, "
                                "after_first_up}.")
def import_command(source: str, out: Path, team_domain: str | None, existing: bool, force: bool,
                   api_url: str | None, fmt: str) -> None:
    """Describe an existing account (its Access apps and linked-app trust) as a stack config of this project.

    Apps become managed entries with `importId`, adopted on the next `pulumi up` (nothing is recreated);
    `linked-apps plan --config FILE` shows the same links. What the schema cannot express (other selectors,
    require/exclude rules, app-scoped policies) is listed on stderr and in the file's header, never dropped.
    The token comes from CLOUDFLARE_API_TOKEN ('Access: Apps and Policies Read' is enough).

    \b
    Exit codes: 0 written, 2 the input cannot be used (or --out exists without --force).
    """
    from ..state._adopt import adopt
    from ..state._cloudflare import fetch_account, is_account_source

    if not is_account_source(source):
        fail(f"{source}: give the account to import as cloudflare:ACCOUNT_ID")
    if out.exists() and not force:
        fail(f"--out {out}: the file exists; give another path, or --force to overwrite it")
    try:
        adoption = adopt(fetch_account(source, api_url=api_url), team_domain=team_domain, existing=existing)
        text = adoption.yaml(source)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    except LinkedAppsError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"--out {out}: cannot be written ({exc.strerror})")
    for note in adoption.notes:
        click.echo(f"not expressed: {printable(note)}", err=True)
    for step in adoption.afterwards:
        click.echo(f"after the first pulumi up: {printable(step)}", err=True)
    adopted = sorted(n for n, e in adoption.apps.items() if "importId" in e)
    if fmt == "json":
        click.echo(json.dumps({"out": str(out), "apps": sorted(adoption.apps), "adopted": adopted,
                               "links": adoption.links, "not_expressed": adoption.notes,
                               "after_first_up": adoption.afterwards}, indent=2))
    else:
        echo(f"wrote {out}: {len(adoption.apps)} apps ({len(adopted)} adopted on the next `pulumi up`), "
                   f"{len(adoption.links)} links" + (f"; {len(adoption.notes)} thing(s) not expressed, listed above"
                                                      if adoption.notes else ""))
