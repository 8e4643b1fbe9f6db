"""Access applications as Pulumi components: a self-hosted app (the only kind that receives linked-app trust)
and an Access-for-SaaS OIDC app (e.g. an MCP server) that can call one.

Pulumi edge: imports pulumi_cloudflare. Arguments are checked before the component registers, so a bad
call fails the preview with a message, not a half-built component.

The component provider (provider/) serves these classes to other languages and infers its schema from their
annotations and field docstrings at runtime: hence no `from __future__ import annotations`, and Args TypedDicts
that spell out their shared fields (the schema reads only fields written in a class's own body).
"""

from collections.abc import Sequence
from typing import Optional, TypedDict, Union

import pulumi
import pulumi_cloudflare as cloudflare
from typing_extensions import NotRequired

from linked_apps.model.rules import (
    GRANT_TYPES,
    SCOPES,
    check_access_domain,
    check_access_token_lifetime,
    check_choices,
    check_email_domain,
    check_session_duration,
    policy_attachments,
    redirect_uri_problem,
    self_hosted_place_problem,
)

_PKG = "linked-apps:index"
DEFAULT_SCOPES = ("openid", "email", "profile")
DEFAULT_GRANT_TYPES = ("authorization_code",)


class SelfHostedAppArgs(TypedDict):
    account_id: pulumi.Input[str]
    """The Cloudflare account id."""
    domain: NotRequired[pulumi.Input[str]]
    """The app's primary domain, e.g. `payroll.acme.com`. Give this or `destinations`."""
    destinations: NotRequired[Sequence[str]]
    """Public hostnames/paths the app covers, e.g. `payroll.acme.com/api`. Give this or `domain`."""
    allow_email_domains: NotRequired[Sequence[str]]
    """The app's own `allow` policy for people: users whose email is in these domains (e.g. `acme.com`)."""
    policy_ids: NotRequired[Sequence[pulumi.Input[str]]]
    """Existing reusable policies to attach first, in this order; the app's own policies are never displaced."""
    linked_app_policy_ids: NotRequired[Sequence[pulumi.Input[str]]]
    """LinkedAppTrust policy ids, one per app whose user tokens this app accepts; attached after the app's own."""
    found_linked_app_policy_ids: NotRequired[pulumi.Input[Sequence[str]]]
    """LinkedAppTrust policy ids found at deploy time by a lookup, for links that close a cycle; attached last."""
    session_duration: NotRequired[str]
    """How long an Access session to this app lasts, e.g. `24h`."""
    import_id: NotRequired[str]
    """The uid of an existing Access application to adopt (Pulumi's `import` option) instead of creating one."""


class SaasAppArgs(TypedDict):
    account_id: pulumi.Input[str]
    """The Cloudflare account id."""
    redirect_uris: Sequence[str]
    """OIDC redirect URIs of the SaaS app (absolute https URLs)."""
    scopes: NotRequired[Sequence[str]]
    """OIDC scopes; default `openid`, `email`, `profile`."""
    grant_types: NotRequired[Sequence[str]]
    """OIDC grant types; default `authorization_code`."""
    access_token_lifetime: NotRequired[str]
    """Lifetime of the OIDC access token, `1m` to `24h`."""
    allow_email_domains: NotRequired[Sequence[str]]
    """The app's own `allow` policy for people: users whose email is in these domains (e.g. `acme.com`)."""
    policy_ids: NotRequired[Sequence[pulumi.Input[str]]]
    """Existing reusable policies to attach first, in this order; the app's own policies are never displaced."""
    session_duration: NotRequired[str]
    """How long an Access session to this app lasts, e.g. `24h`."""
    import_id: NotRequired[str]
    """The uid of an existing Access application to adopt (Pulumi's `import` option) instead of creating one."""


def _fail(component: str, name: str, problem: str) -> None:
    raise pulumi.RunError(f"{component} {name!r}: {problem}")


def _adopting(opts: pulumi.ResourceOptions, args: Union[SelfHostedAppArgs, SaasAppArgs]) -> pulumi.ResourceOptions:
    """The application's options: with `import_id`, Pulumi adopts that existing app instead of creating one."""
    import_id = args.get("import_id")
    return pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(import_=import_id)) if import_id else opts


_VALUE_CHECKS = {
    "domain": check_access_domain,
    "session_duration": check_session_duration,
    "access_token_lifetime": check_access_token_lifetime,
}
_LIST_CHECKS = {
    "destinations": lambda values: [check_access_domain(v) for v in values],
    "allow_email_domains": lambda values: [check_email_domain(v) for v in values],
    "scopes": lambda values: check_choices(values, SCOPES, "OIDC scope"),
    "grant_types": lambda values: check_choices(values, GRANT_TYPES, "OIDC grant type"),
}


def _value_problem(args: Union["SelfHostedAppArgs", "SaasAppArgs"]) -> Optional[str]:
    """The provider's value rules (linked_apps.model.rules), on every plain value given; deploy-time values
    (Outputs) are the provider's to judge."""
    for key, check in _VALUE_CHECKS.items():
        value = args.get(key)
        if isinstance(value, str):
            try:
                check(value)
            except ValueError as exc:
                return f"{key}: {exc}"
    for key, check_all in _LIST_CHECKS.items():
        values = args.get(key)
        if isinstance(values, (list, tuple)) and all(isinstance(v, str) for v in values):
            try:
                check_all(list(values))
            except ValueError as exc:
                return f"{key}: {exc}"
    return None


def _own_policies(
    parent: pulumi.Resource, name: str, args: Union[SelfHostedAppArgs, SaasAppArgs]
) -> list[pulumi.Input[str]]:
    """The app's own policies: the optional email-domain allow policy, then the listed existing ones."""
    own: list[pulumi.Input[str]] = []
    domains = list(args.get("allow_email_domains") or [])
    if domains:
        allow = cloudflare.ZeroTrustAccessPolicy(
            f"{name}-allow",
            account_id=args["account_id"],
            name=f"{name}: people",
            decision="allow",
            includes=[{"email_domain": {"domain": d}} for d in domains],
            opts=pulumi.ResourceOptions(parent=parent),
        )
        own.append(allow.id)
    own.extend(args.get("policy_ids") or [])
    return own


class SelfHostedApp(pulumi.ComponentResource):
    """A self-hosted Access application; it can accept user tokens of linked apps (LinkedAppTrust)."""

    uid: pulumi.Output[str]
    """The application's uid (UUID): what a linked_app_token rule names."""
    aud: pulumi.Output[str]
    """The AUD tag: the `aud` claim of the app's Access JWTs."""
    domain: pulumi.Output[str]
    """The app's primary domain."""

    def __init__(self, name: str, args: SelfHostedAppArgs, opts: Optional[pulumi.ResourceOptions] = None) -> None:
        if not args.get("account_id"):
            _fail("SelfHostedApp", name, "give `account_id` (the Cloudflare account id)")
        place_problem = self_hosted_place_problem(args.get("domain"), args.get("destinations"))
        if place_problem:
            _fail("SelfHostedApp", name, f"give {place_problem}")
        value_problem = _value_problem(args)
        if value_problem:
            _fail("SelfHostedApp", name, value_problem)
        super().__init__(f"{_PKG}:SelfHostedApp", name, {}, opts)
        child = pulumi.ResourceOptions(parent=self)
        own = _own_policies(self, name, args)
        linked = list(args.get("linked_app_policy_ids") or [])
        found = args.get("found_linked_app_policy_ids")
        destinations = [{"type": "public", "uri": uri} for uri in args.get("destinations") or []]
        policies: pulumi.Input[Sequence[dict]] | None = policy_attachments(own, linked) if own or linked else None
        if found is not None:
            # Ids from a lookup: the list is known only once the lookup answers (an invoke, not a dependency).
            policies = pulumi.Output.all(pulumi.Output.from_input(found), *own, *linked).apply(
                lambda values: policy_attachments(values[1:1 + len(own)], [*values[1 + len(own):], *values[0]])
                or None)
        app = cloudflare.ZeroTrustAccessApplication(
            f"{name}-app",
            account_id=args["account_id"],
            name=name,
            type="self_hosted",
            domain=args.get("domain"),
            destinations=destinations or None,
            session_duration=args.get("session_duration"),
            # Ids go in as they are (strings or Outputs): no apply per app keeps large stacks near the SDK's floor.
            policies=policies,
            opts=_adopting(child, args),
        )
        self.uid = app.id
        self.aud = app.aud
        self.domain = app.domain
        self.register_outputs({"uid": self.uid, "aud": self.aud, "domain": self.domain})


class SaasApp(pulumi.ComponentResource):
    """An Access-for-SaaS OIDC application (e.g. an MCP server); its OAuth tokens can call self-hosted apps."""

    uid: pulumi.Output[str]
    """The application's uid (UUID): what a linked_app_token rule names."""
    aud: pulumi.Output[str]
    """The AUD tag of the application."""
    client_id: pulumi.Output[str]
    """The OIDC client id; the app's tokens are issued by `https://<team>/cdn-cgi/access/sso/oidc/<client_id>`."""
    client_secret: pulumi.Output[str]
    """The OIDC client secret (a Pulumi secret)."""

    def __init__(self, name: str, args: SaasAppArgs, opts: Optional[pulumi.ResourceOptions] = None) -> None:
        if not args.get("account_id"):
            _fail("SaasApp", name, "give `account_id` (the Cloudflare account id)")
        uris = list(args.get("redirect_uris") or [])
        uri_problem = redirect_uri_problem(uris, field="redirect_uris")
        if uri_problem:
            _fail("SaasApp", name, uri_problem)
        value_problem = _value_problem(args)
        if value_problem:
            _fail("SaasApp", name, value_problem)
        super().__init__(f"{_PKG}:SaasApp", name, {}, opts)
        child = pulumi.ResourceOptions(parent=self)
        own = _own_policies(self, name, args)
        app = cloudflare.ZeroTrustAccessApplication(
            f"{name}-app",
            account_id=args["account_id"],
            name=name,
            type="saas",
            session_duration=args.get("session_duration"),
            saas_app={
                "auth_type": "oidc",
                "redirect_uris": uris,
                "grant_types": list(args.get("grant_types") or DEFAULT_GRANT_TYPES),
                "scopes": list(args.get("scopes") or DEFAULT_SCOPES),
                "access_token_lifetime": args.get("access_token_lifetime"),
            },
            policies=policy_attachments(own, []) if own else None,
            opts=_adopting(child, args),
        )
        self.uid = app.id
        self.aud = app.aud
        saas = app.saas_app
        # The provider marks saas_app.client_secret sensitive, which makes the whole `saas_app` output secret; the
        # client id is public (it is in the issuer URL of every token), so it alone is unwrapped: outputs that
        # carry it (the stack's `apps`) stay readable, and `pulumi stack output --json` does not print "[secret]".
        self.client_id = pulumi.Output.unsecret(saas.apply(lambda s: (s.client_id if s else None) or ""))
        # The provider marks the secret sensitive; wrapping it again keeps it secret whatever the provider does.
        self.client_secret = pulumi.Output.secret(saas.apply(lambda s: (s.client_secret if s else None) or ""))
        self.register_outputs({"uid": self.uid, "aud": self.aud, "client_id": self.client_id,
                               "client_secret": self.client_secret})
