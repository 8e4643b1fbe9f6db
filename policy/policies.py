"""CrossGuard policies for Cloudflare Access Linked App Token rules, for any Pulumi program.

They hold programs that never use the linked-apps components to the same rules: every judgement asks
`linked_apps.model.rules`, every graph comes from `linked_apps.state`, as the components and `diff` do.

Values unknown during preview (ids of apps and policies not created yet) never crash a policy: they read as
absent and a policy judges what is known. Where an unknown value is one a rule needs (a policy's decision, a
whole rule list, an app's type), the advisory `linked-app-value-unknown` says what could not be judged, rather
than silence passing for a verdict. Props of the wrong shape (None, a string where a list belongs) read as empty.
"""

from __future__ import annotations

import re
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
from linked_apps.state import APP_TYPE, POLICY_TYPE, STACK_TYPE, UNKNOWN_TYPE, graph_from_export, graph_from_resources

_UNKNOWN = frozenset({UNKNOWN_ARCHIVE_VALUE, UNKNOWN_ARRAY_VALUE, UNKNOWN_ASSET_VALUE, UNKNOWN_BOOLEAN_VALUE,
                      UNKNOWN_NUMBER_VALUE, UNKNOWN_OBJECT_VALUE, UNKNOWN_STRING_VALUE})


_SELECTOR_KEYS = frozenset({"linkedAppToken", "linked_app_token"})
"""A rule under this key is a linked_app_token rule even when its body (the app uid) is unknown."""


def known(value: Any) -> Any:
    """Plain data with every value unknown during preview as None; reading never raises UnknownValueError.

    A wholly unknown `linkedAppToken` body becomes `{}`: the rule is still a linked_app_token rule, its uid unknown,
    so the decision it sits under is still judged.
    """
    if isinstance(value, str):
        return None if value in _UNKNOWN else value
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key in list(value):
            try:
                out[key] = known(value[key])
            except UnknownValueError:
                out[key] = None
            if out[key] is None and key in _SELECTOR_KEYS and _is_unknown(value, key):
                out[key] = {}
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


def _is_unknown(container: Any, key: Any) -> bool:
    try:
        item = container[key]
    except UnknownValueError:
        return True
    return isinstance(item, str) and item in _UNKNOWN


def unknown_paths(value: Any, path: str = "") -> list[str]:
    """Where `value` (props as the engine hands them) holds values unknown during preview: `.decision`,
    `.policies[0].includes`, ... (a wholly unknown list or object is one path; nothing inside it is listed)."""
    if isinstance(value, str):
        return [path] if value in _UNKNOWN else []
    found: list[str] = []
    if isinstance(value, Mapping):
        items = [(f"{path}.{key}", key) for key in list(value)]
    elif isinstance(value, Sequence) and not isinstance(value, (bytes, bytearray)):
        items = [(f"{path}[{i}]", i) for i in range(len(value))]
    else:
        return []
    for where, key in items:
        try:
            found += unknown_paths(value[key], where)
        except UnknownValueError:
            found.append(where)
    return found


def _text(value: Any) -> str | None:
    """A non-empty string, or None for anything else (unknown during preview, or not what the schema says)."""
    return value if isinstance(value, str) and value else None


def has_linked_rule(policy: Policy) -> bool:
    """The policy carries a linked_app_token rule (in include, require or exclude), whatever uid it names."""
    return any(selector == LINKED_APP_TOKEN for selector, _ in (*policy.include, *policy.require, *policy.exclude))


def _known_props(raw: Any) -> dict[str, Any]:
    """Props as plain data; anything but an object (None, a string, a list) reads as no props at all."""
    props = known(raw) if isinstance(raw, Mapping) else None
    return props if isinstance(props, dict) else {}


def _props(args: ResourceValidationArgs) -> dict[str, Any]:
    return _known_props(args.props)


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
        for res in resources or ():
            if res.resource_type not in (APP_TYPE, POLICY_TYPE, STACK_TYPE):
                continue
            props = _known_props(res.props)
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
        by_prop = res.property_dependencies if isinstance(res.property_dependencies, Mapping) else {}
        deps = [d for d in by_prop.get("policies") or () if getattr(d, "resource_type", None) == POLICY_TYPE
                and not _known_props(d.props).get("id")]
        placeholders = [{"id": self._placeholder(d)} for d in deps]
        if not isinstance(props.get("policies"), list):
            if isinstance(res.props, Mapping) and "policies" in list(res.props):
                # the whole list is unknown: only its dependencies can tell
                if "policies" not in by_prop:
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
        # A type the preview does not give (unknown, or left to the provider) is nothing to judge yet.
        if not app.managed or app.type == UNKNOWN_TYPE or can_receive_linked_trust(app.type):
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


_RULE_LISTS = ("includes", "requires", "excludes")


def _has_linked_selector(policy: Mapping[str, Any]) -> bool:
    lists = [policy.get(k) for k in (*_RULE_LISTS, "include", "require", "exclude")]
    return any(isinstance(rule, Mapping) and _SELECTOR_KEYS & set(rule) for rules in lists
               if isinstance(rules, list) for rule in rules)


def _policy_unknowns(policy: Mapping[str, Any], unknown: set[str], prefix: str) -> list[str]:
    """What keeps the linked-app rules of one policy (reusable, or an inline entry at `prefix`) from being judged."""
    rule_paths = sorted(u for u in unknown if re.fullmatch(re.escape(prefix) + r"\.(includes|requires|excludes)(\[\d+\])?", u))
    found = []
    if f"{prefix}.decision" in unknown and (_has_linked_selector(policy) or rule_paths):
        found.append(f"{prefix}.decision")
    if rule_paths and policy.get("decision") != NON_IDENTITY:
        found += rule_paths  # a rule we cannot see may be a linked_app_token rule under a decision it has no place in
    return found


def _validate_judgeable(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type not in (APP_TYPE, POLICY_TYPE) or not isinstance(args.props, Mapping):
        return
    unknown = set(unknown_paths(args.props))
    if not unknown:
        return
    props = _props(args)
    if args.resource_type == POLICY_TYPE:
        what, where = _policy_unknowns(props, unknown, ""), f"Access policy `{_text(props.get('name')) or args.name}`"
    else:
        where = f"Access application `{_text(props.get('name')) or args.name}`"
        entries = props.get("policies") if isinstance(props.get("policies"), list) else []
        what = [w for i, entry in enumerate(entries) if isinstance(entry, Mapping)
                for w in _policy_unknowns(entry, unknown, f".policies[{i}]")]
        if ".type" in unknown and any(isinstance(e, Mapping) and _has_linked_selector(e) for e in entries):
            what.insert(0, ".type")
    if what:
        report(f"{where}: cannot judge its linked_app_token rules yet: {', '.join(f'`{w[1:]}`' for w in what)} "
               "unknown until the resources it depends on exist. The mandatory rules judged everything known; run "
               "the preview again after `pulumi up` to have these judged too.", None)


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

LINKED_VALUE_UNKNOWN = ResourceValidationPolicy(
    name="linked-app-value-unknown",
    description="Says which values a linked-app rule needs are unknown during preview, so they were not judged.",
    validate=_validate_judgeable,
    enforcement_level=EnforcementLevel.ADVISORY,
)

POLICIES = [
    LINKED_RULE_SELF_HOSTED_ONLY,
    LINKED_POLICY_SELF_HOSTED_ONLY,
    LINKED_RULE_NON_IDENTITY_ONLY,
    LINKED_POLICY_ATTACHED,
    LINKED_UID_KNOWN,
    LINKED_VALUE_UNKNOWN,
]
"""Every policy of the pack, for `__main__.py`, tests and other packs."""
