"""CrossGuard policies for Cloudflare Access Linked App Token rules, for any Pulumi program.

They hold programs that never use the linked-apps components to the same rules: every judgement asks
`linked_apps.model.rules`, every graph comes from `linked_apps.state`, as the components and `diff` do.

Values unknown during preview (ids of apps and policies not created yet) never crash a policy: they read as
absent, a policy judges what is known, and an advisory that cannot be decided stays silent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import (
    UNKNOWN_ARCHIVE_VALUE,
    UNKNOWN_ARRAY_VALUE,
    UNKNOWN_ASSET_VALUE,
    UNKNOWN_BOOLEAN_VALUE,
    UNKNOWN_NUMBER_VALUE,
    UNKNOWN_OBJECT_VALUE,
    UNKNOWN_STRING_VALUE,
    UnknownValueError,
)

from linked_apps.model.graph import App, Policy, TrustGraph
from linked_apps.model.rules import LINKED_APP_TOKEN, NON_IDENTITY, can_receive_linked_trust, linked_policy_name
from linked_apps.state import APP_TYPE, POLICY_TYPE, STACK_TYPE, graph_from_export, graph_from_resources

_UNKNOWN = frozenset({UNKNOWN_ARCHIVE_VALUE, UNKNOWN_ARRAY_VALUE, UNKNOWN_ASSET_VALUE, UNKNOWN_BOOLEAN_VALUE,
                      UNKNOWN_NUMBER_VALUE, UNKNOWN_OBJECT_VALUE, UNKNOWN_STRING_VALUE})


def known(value: Any) -> Any:
    """Plain data with every value unknown during preview as None; reading never raises UnknownValueError."""
    if isinstance(value, str):
        return None if value in _UNKNOWN else value
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key in list(value):
            try:
                out[key] = known(value[key])
            except UnknownValueError:
                out[key] = None
        return out
    if isinstance(value, Sequence) and not isinstance(value, (bytes, bytearray)):
        items: list[Any] = []
        for i in range(len(value)):
            try:
                items.append(known(value[i]))
            except UnknownValueError:
                items.append(None)
        return items
    return value


def _text(value: Any) -> str | None:
    """A non-empty string, or None for anything else (unknown during preview, or not what the schema says)."""
    return value if isinstance(value, str) and value else None


def has_linked_rule(policy: Policy) -> bool:
    """The policy carries a linked_app_token rule (in include, require or exclude), whatever uid it names."""
    return any(selector == LINKED_APP_TOKEN for selector, _ in (*policy.include, *policy.require, *policy.exclude))


def _props(args: ResourceValidationArgs) -> dict[str, Any]:
    props = known(args.props)
    return props if isinstance(props, dict) else {}


def _one_app(args: ResourceValidationArgs) -> tuple[App, TrustGraph] | None:
    props = _props(args)
    if props.get("type") is None:
        return None  # unknown during preview (or left to the provider's default): nothing to judge yet
    graph = graph_from_resources([{"type": APP_TYPE, "id": None, "props": props, "name": args.name}])
    return next(iter(graph.apps.values())), graph


# -- resource policies ------------------------------------------------------------------------------------------
def _validate_inline_on_self_hosted(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != APP_TYPE:
        return
    found = _one_app(args)
    if found is None:
        return
    app, graph = found
    if can_receive_linked_trust(app.type):
        return
    for policy in graph.attached_policies(app.name):
        if policy.inline and has_linked_rule(policy):
            report(f"Access application `{app.name}` is a {app.type} app with an inline policy "
                   f"`{policy.name}` holding a linked_app_token rule; Cloudflare accepts that rule only on "
                   "self-hosted apps. Attach it to the self-hosted app this app calls instead.", None)


def _validate_non_identity(args: ResourceValidationArgs, report: ReportViolation) -> None:
    props = _props(args)
    if args.resource_type == POLICY_TYPE:
        graph = graph_from_resources([{"type": POLICY_TYPE, "id": args.urn, "props": props}])
        candidates = [(graph.policies[args.urn], props.get("decision"))]
        where = f"Access policy `{graph.policies[args.urn].name}`"
    elif args.resource_type == APP_TYPE:
        graph = graph_from_resources([{"type": APP_TYPE, "id": None, "props": props, "name": args.name}])
        app = next(iter(graph.apps.values()))
        candidates = [(p, p.decision or None) for p in graph.attached_policies(app.name) if p.inline]
        where = f"An inline policy of Access application `{app.name}`"
    else:
        return
    for policy, decision in candidates:
        if decision is not None and decision != NON_IDENTITY and has_linked_rule(policy):
            report(f"{where} holds a linked_app_token rule under decision `{decision}`; that rule grants only in "
                   f"a `{NON_IDENTITY}` policy (the dashboard's Service Auth). Move the rule into a "
                   f"`{NON_IDENTITY}` policy.", None)


# -- stack policies ---------------------------------------------------------------------------------------------
class _StackView:
    """The stack's trust graph, built by linked_apps.state, plus where each app and policy lives (URNs)."""

    def __init__(self, resources: Iterable[PolicyResource]) -> None:
        rows: list[dict[str, Any]] = []
        self.app_urns: dict[str, str] = {}
        self.policy_urns: dict[str, str] = {}
        self.unresolved_apps: set[str] = set()
        """Apps whose policies list names ids unknown during preview that no dependency explains."""
        self.deferred_policies: set[str] = set()
        """Names of the trust policies of links that close a cycle (the stack's `deferred` output): attached by the
        next `pulumi up`, so not attached yet is expected."""
        pending: list[tuple[PolicyResource, dict[str, Any]]] = []
        for res in resources:
            if res.resource_type not in (APP_TYPE, POLICY_TYPE, STACK_TYPE):
                continue
            props = known(res.props)
            props = props if isinstance(props, dict) else {}
            if res.resource_type == STACK_TYPE and isinstance(props.get("deferred"), list):
                self.deferred_policies |= {linked_policy_name(d["from"]) for d in props["deferred"]
                                           if isinstance(d, dict) and isinstance(d.get("from"), str)}
            rid = _text(props.get("id"))
            if res.resource_type == POLICY_TYPE:
                rid = rid or self._placeholder(res)  # not created yet: stand in for the id it will get
                self.policy_urns[rid] = res.urn
            elif res.resource_type == APP_TYPE:
                pending.append((res, props))
            rows.append({"urn": f"{res.urn}", "type": res.resource_type, "id": rid, "outputs": props})
        for res, props in pending:
            props["policies"] = self._resolve(res, props)
        self.graph = graph_from_export({"deployment": {"resources": rows}})
        for res, props in pending:
            name = _text(props.get("name")) or res.urn.rsplit("::", 1)[-1]
            self.app_urns[name] = res.urn

    @staticmethod
    def _placeholder(res: PolicyResource) -> str:
        return f"(id of {res.urn})"

    def _resolve(self, res: PolicyResource, props: dict[str, Any]) -> list[Any]:
        """The app's policies list, with ids unknown during preview replaced by the policies it depends on."""
        name = _text(props.get("name")) or res.urn
        deps = [d for d in res.property_dependencies.get("policies", ()) if d.resource_type == POLICY_TYPE
                and not known(d.props).get("id")]
        placeholders = [{"id": self._placeholder(d)} for d in deps]
        if not isinstance(props.get("policies"), list):
            if "policies" in list(res.props):  # the whole list is unknown: only its dependencies can tell
                if "policies" not in res.property_dependencies:
                    self.unresolved_apps.add(name)
                return placeholders
            return []
        entries = [e for e in props["policies"] if isinstance(e, dict)]
        known_entries = [e for e in entries if e.get("id") or e.get("decision") or e.get("includes")]
        unknown = len(props["policies"]) - len(known_entries)
        if not unknown:
            return entries
        if len(deps) < unknown:
            self.unresolved_apps.add(name)
        return known_entries + placeholders


def _validate_attached_on_self_hosted(args: StackValidationArgs, report: ReportViolation) -> None:
    view = _StackView(args.resources)
    for app in view.graph.apps.values():
        if not app.managed or can_receive_linked_trust(app.type):
            continue
        for policy in view.graph.attached_policies(app.name):
            if not policy.inline and has_linked_rule(policy):
                report(f"Access application `{app.name}` is a {app.type} app, and reusable policy "
                       f"`{policy.name}` attached to it holds a linked_app_token rule; Cloudflare accepts that "
                       "rule only on self-hosted apps. Attach the policy to the self-hosted app this app calls.",
                       view.app_urns.get(app.name))


def _validate_policy_attached(args: StackValidationArgs, report: ReportViolation) -> None:
    view = _StackView(args.resources)
    if view.unresolved_apps:
        return  # some attachments are unknown until the apps are created: cannot say a policy is unused
    attached = {pid for entries in view.graph.attachments.values() for pid, _ in entries}
    for pid, policy in sorted(view.graph.policies.items()):
        if (not policy.inline and has_linked_rule(policy) and pid not in attached
                and policy.name not in view.deferred_policies):
            report(f"Reusable policy `{policy.name}` holds a linked_app_token rule but no application in this "
                   "stack lists it in its `policies`, so it grants nothing; attach it to the receiving "
                   "self-hosted app, or remove it (ignore this if another stack attaches it).",
                   view.policy_urns.get(pid))


def _validate_uid_known(args: StackValidationArgs, report: ReportViolation) -> None:
    view = _StackView(args.resources)
    for target, uid in view.graph.unknown_uids:
        report(f"Access application `{target}` accepts linked app tokens of app uid `{uid}`, which is no "
               "application known to this stack; check the uid (an app's `id`, not its AUD tag or a client_id), "
               "or, for an app managed elsewhere, confirm it exists.", view.app_urns.get(target))


LINKED_RULE_SELF_HOSTED_ONLY = ResourceValidationPolicy(
    name="linked-app-rule-self-hosted-only",
    description="An inline policy with a linked_app_token rule sits only on a self-hosted Access application.",
    validate=_validate_inline_on_self_hosted,
    enforcement_level=EnforcementLevel.MANDATORY,
)
LINKED_POLICY_SELF_HOSTED_ONLY = StackValidationPolicy(
    name="linked-app-policy-self-hosted-only",
    description="A reusable policy with a linked_app_token rule is attached only to self-hosted applications.",
    validate=_validate_attached_on_self_hosted,
    enforcement_level=EnforcementLevel.MANDATORY,
)
LINKED_RULE_NON_IDENTITY_ONLY = ResourceValidationPolicy(
    name="linked-app-rule-non-identity-only",
    description="A linked_app_token rule appears only in a policy whose decision is non_identity.",
    validate=_validate_non_identity,
    enforcement_level=EnforcementLevel.MANDATORY,
)
LINKED_POLICY_ATTACHED = StackValidationPolicy(
    name="linked-app-policy-attached",
    description="A reusable policy with a linked_app_token rule is attached to some application.",
    validate=_validate_policy_attached,
    enforcement_level=EnforcementLevel.ADVISORY,
)
LINKED_UID_KNOWN = StackValidationPolicy(
    name="linked-app-uid-known",
    description="A linked_app_token rule names the uid of an application known to the stack.",
    validate=_validate_uid_known,
    enforcement_level=EnforcementLevel.ADVISORY,
)

POLICIES = [
    LINKED_RULE_SELF_HOSTED_ONLY,
    LINKED_POLICY_SELF_HOSTED_ONLY,
    LINKED_RULE_NON_IDENTITY_ONLY,
    LINKED_POLICY_ATTACHED,
    LINKED_UID_KNOWN,
]
"""Every policy of the pack, for `__main__.py`, tests and other packs."""
