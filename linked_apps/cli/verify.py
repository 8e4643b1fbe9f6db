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

from ._common import API_URL_HELP, STATE_FILES, echo, fail, format_option, one_app


def _token(value: str | None, what: str) -> str | None:
    if value != "-":
        return value
    text = sys.stdin.read().strip()  # a trailing newline from `echo` or a file is not part of the token
    if not text:
        fail(f"{what} -: standard input is empty; pipe the token in")
    return text


@click.command("verify")
@click.argument("app", metavar="[APP]", required=False)
@click.option("--state", "--against", "state_file", metavar="FILE", default=None,
              help=f"The deployed stack: {STATE_FILES}. --against is an alias.")
@click.option("--api-url", metavar="URL", default=None, help=API_URL_HELP)
@click.option("--stack", default=None, metavar="NAME",
              help="Read the live state of this stack instead (needs the Pulumi CLI on PATH).")
@click.option("--project-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Pulumi project of --stack (default: the current directory if it holds Pulumi.yaml).")
@click.option("--to", "to", metavar="APP", default=None,
              help="The receiving app: Cloudflare name, uid or domain (or give it as the APP argument).")
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
@format_option(["text", "json"], "text for people; json prints {allowed, from, to, reason, identity, policy} "
                                 "(and via, with --assertion).")
@click.option("--json", "as_json", is_flag=True, help="The same as --format json.")
def verify_command(app: str | None, state_file: str | None, api_url: str | None, stack: str | None,
                   project_dir: Path | None, to: str | None, assertion: str | None, cf_access_token: str | None,
                   bearer: str | None, team_domain: str | None, access_url: str | None, online_userinfo: bool,
                   fmt: str, as_json: bool) -> None:
    """Decide whether a linked-app token reaches APP (--to), from deployed state, the way Access would; with
    --assertion, whether App B's origin should accept the request as Access delivered it.

    \b
    Exit codes: 0 allowed, 1 denied (malformed tokens included), 2 the input cannot be used
    (unknown app, unreadable state, usage, an app without an AUD tag for --assertion).
    """
    to = one_app(app, to, "APP", "--to")
    from ..errors import LinkedAppsError
    from ..state import read_deployed

    if (state_file is None) == (stack is None):
        fail("--state/--stack: give exactly one of --state FILE or --stack NAME")
    if assertion is None and (cf_access_token is None) == (bearer is None):
        fail("--cf-access-token/--bearer: give exactly one of --cf-access-token TOKEN or --bearer TOKEN "
             "(or --assertion TOKEN)")
    if cf_access_token is not None and bearer is not None:
        fail("--cf-access-token/--bearer: give at most one of --cf-access-token TOKEN or --bearer TOKEN")
    tokens = (assertion, cf_access_token, bearer)
    if state_file == "-" and "-" in tokens:
        fail("-: standard input can carry the state or the token, not both; put one in a file")
    if tokens.count("-") > 1:
        fail("-: standard input can carry one token; give the others as values")
    try:
        if stack is not None:
            from ..state import read_stack
            from ._common import project_dir as default_project_dir

            graph = read_stack(stack, default_project_dir(project_dir))
        else:
            graph = read_deployed(state_file, api_url=api_url)  # type: ignore[arg-type]
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
    if as_json or fmt == "json":
        click.echo(json.dumps(verdict.as_dict()))
    elif verdict.allowed and assertion is not None:
        who = ", ".join(f"{k}={v}" for k, v in verdict.identity.items()) or "no identity claims"
        source = f" from {verdict.source}" if verdict.source else ""
        echo(f"allowed: {verdict.via}{source} -> {verdict.target} as {who}\n  {verdict.reason}")
    elif verdict.allowed:
        who = ", ".join(f"{k}={v}" for k, v in verdict.identity.items()) or "no identity claims"
        echo(f"allowed: {verdict.source} -> {verdict.target} as {who}\n  {verdict.reason}")
    else:
        echo(f"denied: {verdict.reason}")
    raise SystemExit(0 if verdict.allowed else 1)
