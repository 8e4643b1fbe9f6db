"""The stack program: stack config -> topology -> rules -> components -> outputs.

Pulumi edge. `__main__.py` calls `run()`; `linked-apps plan` runs that same `__main__.py` under the SDK's mock
runtime, so what plan shows is what `pulumi up` would build.
"""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi.runtime import config as runtime_config

from components.apps import SaasApp, SelfHostedApp
from components.trust import LinkedAppTrust, LinkedAppTrustArgs, account_policies, find_trust_policy
from linked_apps.errors import LinkedAppsError, RuleViolationError
from linked_apps.model.rules import creation_order
from linked_apps.model.topology import (
    NAMESPACE,
    ExistingAppSpec,
    LookupAppSpec,
    SaasAppSpec,
    SelfHostedAppSpec,
    StackAppSpec,
    Topology,
    stack_reference,
    topology_from_config,
)


def stack_config() -> dict[str, Any]:
    """Every `linked-apps:*` value the engine handed this program (typos included, so they can be named)."""
    values = {k: v for k, v in runtime_config.get_config_env().items() if k.startswith(f"{NAMESPACE}:")}
    values.update({k: v for k, v in runtime_config.CONFIG.get().items() if k.startswith(f"{NAMESPACE}:")})
    return values


def run() -> None:
    """Entry point of `__main__.py`: any config or rule problem ends the preview with one message, no traceback."""
    try:
        topology = topology_from_config(stack_config(), source=f"stack {pulumi.get_stack()!r} config")
        check(topology)
    except LinkedAppsError as exc:
        raise pulumi.RunError(str(exc)) from exc
    deploy(topology)


def check(topology: Topology) -> None:
    """Raise RuleViolationError listing every broken rule; nothing is registered before this passes."""
    violations = topology.violations()
    if violations:
        raise RuleViolationError(violations)


def deploy(topology: Topology) -> None:
    """Create the components for a checked topology and export the stack outputs."""
    account = topology.account_id
    deferred = set(topology.deferred_links())
    incoming: dict[str, list[str]] = {}
    found_incoming: dict[str, list[str]] = {}
    for link in topology.links:
        into = found_incoming if (link.source, link.target) in deferred else incoming
        into.setdefault(link.target, []).append(link.source)
    policies = account_policies(account) if deferred else None
    found: dict[tuple[str, str], pulumi.Output[str | None]] = {}
    by_source: dict[str, pulumi.Output[str | None]] = {}

    built: dict[str, SelfHostedApp | SaasApp] = {}
    trusts: dict[str, LinkedAppTrust] = {}

    def trust_for(source: str) -> LinkedAppTrust:
        # One reusable policy per source app, shared by every app that trusts it.
        if source not in trusts:
            trusts[source] = LinkedAppTrust(f"{source}-trust", _trust_args(topology, source, built))
        return trusts[source]

    edges = [(l.source, l.target) for l in topology.links if (l.source, l.target) not in deferred]
    for name in creation_order(topology.apps, edges):
        spec = topology.apps[name]
        if isinstance(spec, SelfHostedAppSpec):
            linked = [trust_for(src).policy_id for src in sorted(incoming.get(name, ()))]
            for src in sorted(found_incoming.get(name, ())):
                if src not in by_source:  # one lookup per source, shared by every link it closes
                    by_source[src] = find_trust_policy(account, src, topology.apps[src].type, policies)  # type: ignore[arg-type]
                found[(src, name)] = by_source[src]
            lookups = [found[(src, name)] for src in sorted(found_incoming.get(name, ()))]
            built[name] = SelfHostedApp(name, {
                "account_id": account,
                **_common(spec),
                **({"domain": spec.domain} if spec.domain else {}),
                **({"destinations": spec.destinations} if spec.destinations else {}),
                **({"linked_app_policy_ids": linked} if linked else {}),
                **({"found_linked_app_policy_ids": pulumi.Output.all(*lookups).apply(
                    lambda ids: [i for i in ids if i])} if lookups else {}),
            })
        elif isinstance(spec, SaasAppSpec):
            built[name] = SaasApp(name, {
                "account_id": account,
                **_common(spec),
                "redirect_uris": spec.redirect_uris,
                **({"scopes": spec.scopes} if spec.scopes is not None else {}),
                **({"grant_types": spec.grant_types} if spec.grant_types is not None else {}),
                **({"access_token_lifetime": spec.access_token_lifetime} if spec.access_token_lifetime else {}),
            })

    for source, _ in sorted(deferred):
        trust_for(source)  # created now, so the next run's lookup finds it
    if found:
        _warn_unattached(found)
    _export(topology, built, trusts, found)


def _warn_unattached(found: dict[tuple[str, str], pulumi.Output[str | None]]) -> None:
    """One warning naming every link of a cycle whose trust policy the account does not hold yet."""
    keys = sorted(found)

    def warn(ids: list[str | None]) -> None:
        waiting = [f"{a} -> {b}" for (a, b), pid in zip(keys, ids) if not pid]
        if waiting:
            pulumi.log.warn(f"links still to attach: {', '.join(waiting)}. They close a cycle of trust, so each "
                            "attaches once its source's trust policy exists: run `pulumi up` again")

    pulumi.Output.all(*(found[k] for k in keys)).apply(warn)


def _common(spec: SelfHostedAppSpec | SaasAppSpec) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if spec.allow_email_domains:
        out["allow_email_domains"] = spec.allow_email_domains
    if spec.policy_ids:
        out["policy_ids"] = spec.policy_ids
    if spec.session_duration:
        out["session_duration"] = spec.session_duration
    if spec.import_id:
        out["import_id"] = spec.import_id
    return out


def _trust_args(topology: Topology, source: str, built: dict[str, Any]) -> LinkedAppTrustArgs:
    spec = topology.apps[source]
    args: LinkedAppTrustArgs = {"account_id": topology.account_id, "source_name": source, "source_type": spec.type}
    if source in built:
        args["source_uid"] = built[source].uid
    elif isinstance(spec, LookupAppSpec):
        args["lookup"] = True
        args["source_name"] = spec.lookup
    elif isinstance(spec, StackAppSpec):
        args["source_stack"] = spec.stack
        if spec.output:
            args["source_stack_output"] = spec.output
        else:
            args["source_stack_app"] = spec.app or source
    else:
        args["source_uid"] = spec.uid  # type: ignore[union-attr]  # ExistingAppSpec
    return args


def _export(topology: Topology, built: dict[str, Any], trusts: dict[str, LinkedAppTrust],
            found: dict[tuple[str, str], pulumi.Output[str | None]]) -> None:
    apps: dict[str, Any] = {}
    secrets: dict[str, Any] = {}
    for name, spec in topology.apps.items():
        entry: dict[str, Any] = {"type": spec.type, "managed": spec.managed}
        component = built.get(name)
        if component is not None:
            entry.update(uid=component.uid, aud=component.aud)
            if isinstance(component, SelfHostedApp):
                entry["domain"] = component.domain
            else:
                entry["client_id"] = component.client_id
                secrets[name] = component.client_secret
        else:
            if name in trusts:  # resolved at deploy time (lookup, other stack) or given
                entry["uid"] = trusts[name].source_uid
            elif isinstance(spec, ExistingAppSpec):
                entry["uid"] = spec.uid
            if isinstance(spec, ExistingAppSpec) and spec.aud:
                entry["aud"] = spec.aud
            # How the app was found, so `diff` sees a switch of identity behind an unchanged name.
            if isinstance(spec, LookupAppSpec):
                entry["lookup"] = spec.lookup
            elif isinstance(spec, StackAppSpec):
                entry["stack"] = stack_reference(spec)
        apps[name] = entry
    links: Any = [{"from": l.source, "to": l.target,
                   "policy_id": found.get((l.source, l.target), trusts[l.source].policy_id)} for l in topology.links]
    if found:
        # A link of a cycle whose policy is not attached yet grants nothing: it is no deployed link.
        links = pulumi.Output.all(*links).apply(lambda rows: [r for r in rows if r["policy_id"]])
    pulumi.export("team_domain", topology.team_domain)
    pulumi.export("apps", apps)
    pulumi.export("links", links)
    pulumi.export("deferred", [{"from": a, "to": b} for a, b in sorted(found)])
    if secrets:
        pulumi.export("saas_client_secrets", pulumi.Output.secret(secrets))
