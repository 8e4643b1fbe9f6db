"""`linked-apps who-calls | reach | explain`: questions of the trust graph, desired or deployed.

The desired graph comes from the stack config alone (parsed, not run: the questions never import Pulumi);
deployed trust from a `pulumi stack export` or `pulumi stack output --json` file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from ..errors import LinkedAppsError
from ..model.graph import Link, TrustGraph
from ..model.paths import Explanation, Reach, callers, explain, reach, render_path
from ._common import (app_operand, echo, fail, format_option, load_state, load_topology, one_app, stack_options,
                      state_option)


def load_graph(
    stack: str | None, config: Path | None, project: Path | None, state: str | None, api_url: str | None = None
) -> tuple[TrustGraph, str]:
    """The trust graph to question, and a label for it: desired (`--stack`/`--config`) or deployed (`--state`)."""
    if sum(x is not None for x in (stack, config, state)) != 1:
        fail("--stack/--config/--state: give exactly one of --stack NAME, --config FILE (desired trust) or "
             "--state FILE (deployed trust)")
    if state is not None:
        return load_state(state, api_url), f"deployed trust in {state}"
    topology, where = load_topology(stack, config, project)
    return topology.trust_graph(), f"desired trust, {where}"


def question_options(fn: Any) -> Any:
    fn = format_option(["text", "json"], "text for people, json for scripts.")(fn)
    fn = state_option("Ask deployed trust instead")(fn)
    return stack_options(fn)


def _ask(fn: Any, *args: str) -> Any:
    try:
        return fn(*args)
    except (LinkedAppsError, ValueError) as exc:
        fail(str(exc))


def _entries(found: Reach) -> list[dict[str, object]]:
    out = []
    for app in sorted(found, key=lambda a: (found.hops[a], a)):
        links = found.path(app)
        out.append({"app": app, "hops": found.hops[app], "path": [links[0].source, *(l.target for l in links)],
                    "links": [link.as_dict() for link in links]})
    return out


def _policy(link: Link) -> str:
    if link.policy_name and link.policy_id:
        return f"{link.policy_name!r} ({link.policy_id})"
    return repr(link.policy_name) if link.policy_name else (link.policy_id or "no policy known")


def _table(found: Reach, *, policy_into_origin: bool = False) -> list[str]:
    """One row per app: hops and shortest path; for callers, the policy on the origin that lets the chain in."""
    rows = []
    for app in sorted(found, key=lambda a: (found.hops[a], a)):
        links = found.path(app)
        hops = found.hops[app]
        rows.append((app, f"{hops} hop{'s' if hops != 1 else ' '}", render_path(links),
                     f"by policy {_policy(links[-1])}" if policy_into_origin else ""))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    return [f"  {a:<{widths[0]}}  {h:<{widths[1]}}  {p:<{widths[2]}}  {x}".rstrip() for a, h, p, x in rows]


@click.command("reach")
@app_operand("app", "--from", "APP")
@question_options
def reach_command(app: str | None, app_option: str | None, stack: str | None, config: Path | None,
                  project_dir: Path | None, state: str | None, api_url: str | None, fmt: str) -> None:
    """Every app APP's user identity can get to along links, with the shortest path to each.

    Identities flow along chains: B receives its own Access JWT for the user and can forward it to C if C
    trusts B. This is the blast radius if APP were compromised. APP is a Cloudflare name, uid or domain.
    JSON: {"app", "reaches": [{"app", "hops", "path", "links": [{"from", "to", "policy_id", "policy_name"}]}]}.

    \b
    Exit codes: 0 answered, 2 the input cannot be used (e.g. an unknown app).
    """
    app = one_app(app, app_option, "APP", "--from")
    graph, label = load_graph(stack, config, project_dir, state, api_url)
    found: Reach = _ask(reach, graph, app)
    if fmt == "json":
        click.echo(json.dumps({"app": found.origin, "reaches": _entries(found)}, indent=2))
        return
    if not found:
        echo(f"{found.origin}'s user identity reaches no other app ({label}): no app trusts it.")
        return
    echo(f"{found.origin}'s user identity reaches {len(found)} app{'s' if len(found) != 1 else ''} ({label}):")
    echo("\n".join(_table(found)))


@click.command("who-calls")
@app_operand("app", "--to", "APP")
@question_options
def who_calls_command(app: str | None, app_option: str | None, stack: str | None, config: Path | None,
                      project_dir: Path | None, state: str | None, api_url: str | None, fmt: str) -> None:
    """Every app whose user identity can get to APP: direct callers (1 hop) and chains, shortest path each.

    APP is a Cloudflare name, uid or domain. JSON: {"app", "callers": [...]}, entries as in `reach`.

    \b
    Exit codes: 0 answered, 2 the input cannot be used (e.g. an unknown app).
    """
    app = one_app(app, app_option, "APP", "--to")
    graph, label = load_graph(stack, config, project_dir, state, api_url)
    found: Reach = _ask(callers, graph, app)
    if fmt == "json":
        click.echo(json.dumps({"app": found.origin, "callers": _entries(found)}, indent=2))
        return
    if not found:
        echo(f"no app calls {found.origin} ({label}): no policy on it admits a linked app token.")
        return
    direct = sum(1 for a in found if found.hops[a] == 1)
    echo(f"{len(found)} app{'s' if len(found) != 1 else ''} can reach {found.origin}, {direct} directly "
               f"({label}):")
    echo("\n".join(_table(found, policy_into_origin=True)))


def render_explanation(ex: Explanation, label: str) -> str:
    if ex.reachable:
        path = render_path([h.link for h in ex.hops])
        n = len(ex.hops)
        out = [f"{ex.source} can reach {ex.target} in {n} hop{'s' if n != 1 else ''} ({label}): {path}"]
        for i, hop in enumerate(ex.hops, 1):
            link = hop.link
            where = f", precedence {hop.precedence}" if hop.precedence is not None else ""
            out.append(f"  {i}. {link.source} -> {link.target}: {link.source} sends the user's token as "
                       f"{hop.header}; {link.target} admits it by policy {_policy(link)}{where}")
            if hop.grants is False:
                out.append(f"     but that policy would not grant: {hop.reason}")
            if link.description:
                out.append(f"     ({link.description})")
        return "\n".join(out)
    out = [f"{ex.source} cannot reach {ex.target} ({label}): no chain of links leads there."]
    out.append(f"  {ex.source}'s user identity reaches: {', '.join(ex.reached) or 'no app'}")
    out.append(f"  {ex.target} is reached from: {', '.join(ex.callers) or 'no app'}")
    if ex.reverse:
        out.append(f"  (the other way, {render_path(list(ex.reverse))}: links are one-way)")
    out.append(f"  missing link: {{from: {ex.source}, to: {ex.target}}} under linked-apps:links")
    out.extend(f"  but Cloudflare would refuse it [{v.rule}]: {v.message}" for v in ex.blocked)
    return "\n".join(out)


@click.command("explain")
@app_operand("source", "--from", "FROM")
@app_operand("target", "--to", "TO")
@question_options
def explain_command(source: str | None, source_option: str | None, target: str | None, target_option: str | None,
                    stack: str | None, config: Path | None, project_dir: Path | None, state: str | None,
                    api_url: str | None, fmt: str) -> None:
    """Can FROM's user identity reach TO? The shortest path and the policy that grants each hop, or the missing link.

    FROM and TO are Cloudflare names, uids or domains. JSON: {"from", "to", "reachable", "path", "hops",
    "missing"}; each hop names its policy (id, name, precedence on deployed state); `missing` (when there is
    no path) holds the link to add, what each side reaches, and the rules such a link would break.

    \b
    Exit codes: 0 a path exists, 1 none does, 2 the input cannot be used.
    """
    source = one_app(source, source_option, "FROM", "--from")
    target = one_app(target, target_option, "TO", "--to")
    graph, label = load_graph(stack, config, project_dir, state, api_url)
    ex: Explanation = _ask(explain, graph, source, target)
    echo(json.dumps(ex.as_dict(), indent=2) if fmt == "json" else render_explanation(ex, label))
    raise SystemExit(0 if ex.reachable else 1)
