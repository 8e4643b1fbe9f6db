"""`linked-apps verify`: would Access let this token through to this app, as whom, and why? With `--assertion`:
is this request genuine as App B's origin received it, who is it, and which app sent it?

Reads deployed state (never the program) and imports neither pulumi nor pulumi_cloudflare, except for
`--stack`, which asks the Pulumi CLI for the live state.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from ._common import fail


def _token(value: str | None, what: str) -> str | None:
    if value != "-":
        return value
    text = sys.stdin.read().strip()  # a trailing newline from `echo` or a file is not part of the token
    if not text:
        fail(f"{what} -: standard input is empty; pipe the token in")
    return text


@click.command("verify")
@click.option("--state", "state_file", metavar="FILE", default=None,
              help="`pulumi stack export` or `pulumi stack output --json` file of the deployed stack.")
@click.option("--stack", default=None, metavar="NAME",
              help="Read the live state of this stack instead (needs the Pulumi CLI on PATH).")
@click.option("--project-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Pulumi project of --stack (default: the current directory if it holds Pulumi.yaml).")
@click.option("--to", "to", required=True, metavar="APP", help="The receiving app: Cloudflare name, uid or domain.")
@click.option("--assertion", metavar="TOKEN", default=None,
              help="App B's origin check: the Cf-Access-Jwt-Assertion (or CF_Authorization cookie) the origin "
                   "received; with --cf-access-token/--bearer too, a linked call that must be proven.")
@click.option("--cf-access-token", metavar="TOKEN", default=None,
              help="Token forwarded by a self-hosted app (`-` reads standard input).")
@click.option("--bearer", metavar="TOKEN", default=None,
              help="Token a SaaS (OIDC) app sends as Authorization: Bearer (`-` reads standard input).")
@click.option("--team-domain", metavar="D", default=None,
              help="Team domain, e.g. acme.cloudflareaccess.com (default: the state's team_domain output).")
@click.option("--access-url", metavar="URL", default=None,
              help="Fetch keys here instead of https://<team domain> (a mirror, tests; http:// only to this "
                   "machine); issuers still use the team.")
@click.option("--online-userinfo", is_flag=True,
              help="An opaque --bearer token: ask the userinfo endpoint of the SaaS apps APP trusts (online; "
                   "Cloudflare does not document SaaS access tokens, and the verdict says so).")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="json: {allowed, from, to, reason, identity, policy} (and via, with --assertion).")
@click.option("--json", "as_json", is_flag=True, help="Same as --format json.")
def verify_command(state_file: str | None, stack: str | None, project_dir: Path | None, to: str,
                   assertion: str | None, cf_access_token: str | None, bearer: str | None, team_domain: str | None,
                   access_url: str | None, online_userinfo: bool, output_format: str, as_json: bool) -> None:
    """Decide whether a linked-app token reaches APP, from deployed state, the way Access would.

    \b
    Exit codes: 0 allowed, 1 denied (malformed tokens included), 2 usage or config error
    (unknown app, unreadable state, an app without an AUD tag for --assertion).
    """
    from ..errors import LinkedAppsError
    from ..state import read_state

    if (state_file is None) == (stack is None):
        fail("give exactly one of --state FILE or --stack NAME")
    if assertion is None and (cf_access_token is None) == (bearer is None):
        fail("give exactly one of --cf-access-token TOKEN or --bearer TOKEN (or --assertion TOKEN)")
    if cf_access_token is not None and bearer is not None:
        fail("give at most one of --cf-access-token TOKEN or --bearer TOKEN")
    tokens = (assertion, cf_access_token, bearer)
    if state_file == "-" and "-" in tokens:
        fail("standard input can carry the state or the token, not both")
    if tokens.count("-") > 1:
        fail("standard input can carry one token; give the others as values")
    try:
        if stack is not None:
            from ..state import read_stack
            from ._common import project_dir as default_project_dir

            graph = read_stack(stack, default_project_dir(project_dir))
        else:
            graph = read_state(state_file)  # type: ignore[arg-type]
        from ..verifier import Verifier

        verifier = Verifier(graph, team_domain=team_domain, access_url=access_url, online_userinfo=online_userinfo)
        if assertion is not None:
            from ..verifier._origin import origin_target

            origin_target(verifier, to)
        else:
            verifier.target(to)
    except LinkedAppsError as exc:
        fail(str(exc))
    token_cf = _token(cf_access_token, "--cf-access-token")
    token_bearer = _token(bearer, "--bearer")
    if assertion is not None:
        verdict = verifier.decide_origin(to, assertion=_token(assertion, "--assertion"), cf_access_token=token_cf,
                                         bearer=token_bearer)
    else:
        verdict = verifier.decide(to, cf_access_token=token_cf, bearer=token_bearer)
    if as_json or output_format == "json":
        click.echo(json.dumps(verdict.as_dict()))
    elif verdict.allowed and assertion is not None:
        who = ", ".join(f"{k}={v}" for k, v in verdict.identity.items()) or "no identity claims"
        source = f" from {verdict.source}" if verdict.source else ""
        click.echo(f"allowed: {verdict.via}{source} -> {verdict.target} as {who}\n  {verdict.reason}")
    elif verdict.allowed:
        who = ", ".join(f"{k}={v}" for k, v in verdict.identity.items()) or "no identity claims"
        click.echo(f"allowed: {verdict.source} -> {verdict.target} as {who}\n  {verdict.reason}")
    else:
        click.echo(f"denied: {verdict.reason}")
    raise SystemExit(0 if verdict.allowed else 1)
