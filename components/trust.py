"""Linked-app trust as a Pulumi component: the reusable `non_identity` policy that accepts tokens of one app.

One LinkedAppTrust per *source* app: every self-hosted app that trusts the source attaches the same reusable
policy (`SelfHostedAppArgs.linked_app_policy_ids`), because Cloudflare attaches a policy to an app only
through the app's own `policies` list. The component resolves the source's uid from whichever handle the
caller has: a uid (a managed app's `uid` output or an existing app's), a lookup by Cloudflare name, or an
output of another stack.

The component provider (provider/) infers its schema from the annotations and field docstrings at runtime: hence
no `from __future__ import annotations`.
"""

from typing import Any, Optional, TypedDict

import pulumi
import pulumi_cloudflare as cloudflare
from typing_extensions import NotRequired

from linked_apps.model.rules import (
    LINKED_APP_TOKEN,
    NON_IDENTITY,
    SENDER_TYPES,
    can_send_linked_token,
    check_app_uid,
    linked_policy_name,
)


class LinkedAppTrustArgs(TypedDict):
    account_id: pulumi.Input[str]
    """The Cloudflare account id."""
    source_name: str
    """The source app's Cloudflare name (names the policy, and is what a lookup searches for)."""
    source_uid: NotRequired[pulumi.Input[str]]
    """The source app's uid: a managed app's `uid` output, or an existing app's UUID."""
    lookup: NotRequired[bool]
    """Find the source at deploy time by its Cloudflare name (an existing app this program does not manage)."""
    source_stack: NotRequired[str]
    """Another stack (`org/project/stack`) that manages the source app."""
    source_stack_output: NotRequired[str]
    """With a source stack: the output of that stack that holds the uid."""
    source_stack_app: NotRequired[str]
    """With a source stack: the app's name in that stack's `apps` output (as linked-apps exports it)."""
    source_type: NotRequired[str]
    """The source app's declared type (`self_hosted` or `saas`); checked against the looked-up app."""


def _problem(name: str, args: LinkedAppTrustArgs) -> str | None:
    required = {"account_id": "the Cloudflare account id", "source_name": "the source app's Cloudflare name"}
    missing = [f"`{key}` ({what})" for key, what in required.items() if not args.get(key)]
    if missing:
        return f"give {' and '.join(missing)}"
    ways = [k for k in ("source_uid", "lookup", "source_stack") if args.get(k)]
    if len(ways) != 1:
        return "give exactly one of `source_uid`, `lookup=True` or `source_stack` to say where the source app's uid comes from"
    if args.get("source_stack") and bool(args.get("source_stack_output")) == bool(args.get("source_stack_app")):
        return "with `source_stack`, give exactly one of `source_stack_output` or `source_stack_app`"
    declared = args.get("source_type")
    if declared is not None and not can_send_linked_token(declared):
        return (f"the source {args['source_name']!r} is a {declared} app, which carries no user token a linked app can "
                f"accept; the source must be one of {sorted(SENDER_TYPES)}")
    uid = args.get("source_uid")
    if isinstance(uid, str):
        try:
            check_app_uid(uid)
        except ValueError as exc:
            return f"source_uid: {exc}"
    return None


class LinkedAppTrust(pulumi.ComponentResource):
    """A reusable `non_identity` policy whose include names one source app: `linked_app_token.app_uid`."""

    policy_id: pulumi.Output[str]
    """The reusable policy's id: list it in the linked app policy ids of every SelfHostedApp that trusts the source."""
    source_uid: pulumi.Output[str]
    """The resolved uid of the source app."""

    def __init__(self, name: str, args: LinkedAppTrustArgs, opts: Optional[pulumi.ResourceOptions] = None) -> None:
        problem = _problem(name, args)
        if problem:
            raise pulumi.RunError(f"LinkedAppTrust {name!r}: {problem}")
        super().__init__("linked-apps:index:LinkedAppTrust", name, {}, opts)
        child = pulumi.ResourceOptions(parent=self)
        source = args["source_name"]
        declared = args.get("source_type")
        if args.get("lookup"):
            uid = _lookup_uid(args["account_id"], source, declared, child)
        elif args.get("source_stack"):
            uid = _stack_uid(f"{name}-stack", args, child)
        else:
            uid = pulumi.Output.from_input(args["source_uid"])
        policy = cloudflare.ZeroTrustAccessPolicy(
            f"{name}-policy",
            account_id=args["account_id"],
            name=linked_policy_name(source),
            decision=NON_IDENTITY,
            includes=[{LINKED_APP_TOKEN: {"app_uid": uid}}],
            opts=child,
        )
        self.policy_id = policy.id
        self.source_uid = uid
        self.register_outputs({"policy_id": self.policy_id, "source_uid": self.source_uid})


def _lookup_uid(account_id: pulumi.Input[str], source: str, declared: str | None,
                opts: pulumi.ResourceOptions) -> pulumi.Output[str]:
    found = cloudflare.get_zero_trust_access_applications_output(
        account_id=account_id, name=source, exact=True, opts=pulumi.InvokeOptions(parent=opts.parent))

    def pick(result: Any) -> str:
        matches = [r for r in (result.results or []) if r.name == source]
        if len(matches) != 1:
            how = "no Access app" if not matches else f"{len(matches)} Access apps"
            raise pulumi.RunError(f"lookup {source!r}: {how} with that exact name in the account; "
                                  "declare the app with its `uid` instead")
        app = matches[0]
        if declared and app.type != declared:
            raise pulumi.RunError(f"lookup {source!r}: the app is {app.type}, but the config declares {declared}; "
                                  "fix the declared `type`")
        if not can_send_linked_token(app.type):
            raise pulumi.RunError(f"lookup {source!r}: the app is {app.type}, which carries no user token a "
                                  f"linked app can accept; the source must be one of {sorted(SENDER_TYPES)}")
        return app.id

    return found.apply(pick)


def _stack_uid(name: str, args: LinkedAppTrustArgs, opts: pulumi.ResourceOptions) -> pulumi.Output[str]:
    ref = pulumi.StackReference(name, stack_name=args["source_stack"], opts=opts)
    stack = args["source_stack"]
    if args.get("source_stack_output"):
        key = args["source_stack_output"]
        return ref.require_output(key).apply(lambda v: _uid_from(stack, f"output {key!r}", v))
    app = args["source_stack_app"]

    def from_apps(apps: Any) -> str:
        entry = apps.get(app) if isinstance(apps, dict) else None
        if not isinstance(entry, dict):
            raise pulumi.RunError(f"stack {stack!r}: its `apps` output has no app {app!r}")
        if entry.get("type") and not can_send_linked_token(entry["type"]):
            raise pulumi.RunError(f"stack {stack!r}: app {app!r} is {entry['type']}, which carries no user token a "
                                  f"linked app can accept; the source must be one of {sorted(SENDER_TYPES)}")
        return _uid_from(stack, f"apps.{app}.uid", entry.get("uid"))

    return ref.require_output("apps").apply(from_apps)


def _uid_from(stack: str, where: str, value: Any) -> str:
    try:
        return check_app_uid(str(value))
    except ValueError as exc:
        raise pulumi.RunError(f"stack {stack!r} {where}: {exc}") from None


def account_policies(account_id: pulumi.Input[str], opts: Optional[pulumi.InvokeOptions] = None) -> pulumi.Output[Any]:
    """Every Access policy of the account, read once per run by an invoke (no resource dependency)."""
    return cloudflare.get_zero_trust_access_policies_output(account_id=account_id, opts=opts)


def find_trust_policy(account_id: pulumi.Input[str], source: str, declared: Optional[str], policies: pulumi.Output[Any],
                      opts: Optional[pulumi.InvokeOptions] = None) -> pulumi.Output[Optional[str]]:
    """The id of the deployed LinkedAppTrust policy for `source`, found by lookups; None while it does not exist.

    Breaks a cycle of links: the receiving app attaches the policy by what the account holds now, not by a
    dependency on the source app (which depends on the receiver). Fail closed: the policy counts only when the
    account holds exactly one app named `source` (of the declared type) and exactly one reusable policy of the
    trust's name whose sole rule is a non_identity include naming that app's uid; anything else attaches nothing.
    """
    apps = cloudflare.get_zero_trust_access_applications_output(account_id=account_id, name=source, exact=True,
                                                                opts=opts)
    name = linked_policy_name(source)

    def pick(found: list[Any]) -> Optional[str]:
        app_result, policy_result = found
        matches = [a for a in (app_result.results or []) if a.name == source]
        if len(matches) != 1 or (declared and matches[0].type != declared):
            return None
        uid = matches[0].id
        candidates = [p for p in (policy_result.results or []) if p.name == name and _only_names(p, uid)]
        return candidates[0].id if len(candidates) == 1 else None

    return pulumi.Output.all(apps, policies).apply(pick)


def _only_names(policy: Any, uid: str) -> bool:
    includes = list(policy.includes or [])
    token = getattr(includes[0], LINKED_APP_TOKEN, None) if len(includes) == 1 else None
    return (policy.decision == NON_IDENTITY and not policy.excludes and not policy.requires
            and token is not None and token.app_uid == uid)
