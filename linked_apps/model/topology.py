"""The stack config contract: which Access apps exist and which app may call which.

Pure module (pydantic only): no Pulumi, no I/O. `__main__.py`, `linked-apps plan` and the tests all parse
config through `topology_from_config`, so the contract has one home. Errors name the key path
(`linked-apps:apps.payroll.domain`) and say what to write instead.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from ..errors import ConfigError
from ._spec import Spec as _Spec
from .assertions import ASSERTION_MODELS, AssertionSpec, check_assertions, unknown_app_problems
from .graph import App, Link, TrustGraph
from .rules import (
    GRANT_TYPES,
    SCOPES,
    UUID,
    AppFacts,
    LinkRef,
    Violation,
    app_name_problem,
    check_access_domain,
    check_access_token_lifetime,
    check_account_id,
    check_app_uid,
    check_aud_tag,
    check_choices,
    check_email_domain,
    check_links,
    check_session_duration,
    check_team_domain,
    identity_problems,
    deferred_links,
    linked_policy_name,
    look_alike_problems,
    redirect_uri_problem,
    self_hosted_place_problem,
)

NAMESPACE = "linked-apps"

# Wire values of an Access application's `type` (CLOUDFLARE.md, "Applications").
AppType = Literal[
    "self_hosted", "saas", "ssh", "vnc", "app_launcher", "warp", "biso", "bookmark", "dash_sso",
    "infrastructure", "rdp", "mcp", "mcp_portal", "proxy_endpoint",
]

class _ManagedApp(_Spec):
    """Fields shared by the apps this stack creates."""

    allow_email_domains: list[str] = Field(default_factory=list, alias="allowEmailDomains")
    """The app's own `allow` policy for people: users whose email is in these domains."""
    policy_ids: list[str] = Field(default_factory=list, alias="policyIds")
    """Existing reusable policies to attach first, in this order (precedence 1, 2, ...)."""
    session_duration: str | None = Field(default=None, alias="sessionDuration")
    import_id: str | None = Field(default=None, alias="importId")
    """The uid of an existing application this entry adopts on the next `pulumi up` (Pulumi's `import`
    resource option) instead of creating a new one; `linked-apps import` writes it."""

    managed: Literal[True] = Field(default=True, exclude=True)

    @field_validator("import_id")
    @classmethod
    def _import_uid(cls, value: str | None) -> str | None:
        return None if value is None else check_app_uid(value)

    @field_validator("policy_ids")
    @classmethod
    def _policy_uuids(cls, ids: list[str]) -> list[str]:
        for pid in ids:
            if not UUID.match(pid.lower()):
                raise ValueError(f"{pid!r} is not a policy id; expected the UUID of an existing reusable policy")
        if len(set(ids)) != len(ids):
            raise ValueError("a policy id is listed twice; each policy is attached once")
        return [p.lower() for p in ids]

    @field_validator("allow_email_domains")
    @classmethod
    def _email_domains(cls, domains: list[str]) -> list[str]:
        return [check_email_domain(d) for d in domains]

    @field_validator("session_duration")
    @classmethod
    def _session_duration(cls, value: str | None) -> str | None:
        return None if value is None else check_session_duration(value)


class SelfHostedAppSpec(_ManagedApp):
    """A self-hosted Access app created by this stack: the only kind that can receive linked-app trust."""

    type: Literal["self_hosted"]
    domain: str | None = None
    destinations: list[str] = Field(default_factory=list)

    @field_validator("domain")
    @classmethod
    def _domain(cls, value: str | None) -> str | None:
        return None if value is None else check_access_domain(value)

    @field_validator("destinations")
    @classmethod
    def _destinations(cls, uris: list[str]) -> list[str]:
        return [check_access_domain(u) for u in uris]

    @model_validator(mode="after")
    def _needs_a_place(self) -> SelfHostedAppSpec:
        problem = self_hosted_place_problem(self.domain, self.destinations)
        if problem:
            raise ValueError(f"a self_hosted app needs {problem}")
        return self


class SaasAppSpec(_ManagedApp):
    """An Access-for-SaaS OIDC app created by this stack (e.g. an MCP server); it can call self-hosted apps."""

    type: Literal["saas"]
    redirect_uris: list[str] = Field(alias="redirectUris", min_length=1)
    scopes: list[str] | None = None
    """OIDC scopes; unset: the SaasApp component's default."""
    grant_types: list[str] | None = Field(default=None, alias="grantTypes")
    """OIDC grant types; unset: the SaasApp component's default."""
    access_token_lifetime: str | None = Field(default=None, alias="accessTokenLifetime")

    @field_validator("redirect_uris")
    @classmethod
    def _absolute_uris(cls, uris: list[str]) -> list[str]:
        problem = redirect_uri_problem(uris)
        if problem:
            raise ValueError(problem)
        return uris

    @field_validator("scopes")
    @classmethod
    def _scopes(cls, values: list[str] | None) -> list[str] | None:
        return None if values is None else check_choices(values, SCOPES, "OIDC scope")

    @field_validator("grant_types")
    @classmethod
    def _grant_types(cls, values: list[str] | None) -> list[str] | None:
        return None if values is None else check_choices(values, GRANT_TYPES, "OIDC grant type")

    @field_validator("access_token_lifetime")
    @classmethod
    def _lifetime(cls, value: str | None) -> str | None:
        return None if value is None else check_access_token_lifetime(value)


class _ExternalApp(_Spec):
    """An app this stack does not manage; its type must be declared so rules can run before the API."""

    type: AppType
    managed: Literal[False] = Field(default=False, exclude=True)


class ExistingAppSpec(_ExternalApp):
    """An app that already exists, named by its uid."""

    uid: str
    aud: str | None = None
    """Its AUD tag (optional): lets `verify` recognise the app's tokens, which carry the tag in `aud`."""

    @field_validator("uid")
    @classmethod
    def _uid(cls, value: str) -> str:
        return check_app_uid(value)

    @field_validator("aud")
    @classmethod
    def _aud(cls, value: str | None) -> str | None:
        return None if value is None else check_aud_tag(value)


class LookupAppSpec(_ExternalApp):
    """An existing app found at deploy time by its Cloudflare name."""

    lookup: str = Field(min_length=1)


class StackAppSpec(_ExternalApp):
    """An app another Pulumi stack manages, read through a StackReference."""

    stack: str = Field(min_length=1)
    """The other stack, `org/project/stack` (or `project/stack` on a self-managed backend)."""
    output: str | None = None
    """A stack output holding the app's uid as a string."""
    app: str | None = None
    """An app in the other stack's `apps` output (as this project exports it): its `uid` is used."""

    @model_validator(mode="after")
    def _one_way_in(self) -> StackAppSpec:
        if (self.output is None) == (self.app is None):
            raise ValueError("give exactly one of `output` (an output holding the uid) or `app` (a name in its `apps` output)")
        return self


def _app_kind(raw: Any) -> str | None:
    if isinstance(raw, BaseModel):
        return {SelfHostedAppSpec: "self_hosted", SaasAppSpec: "saas", ExistingAppSpec: "existing",
                LookupAppSpec: "lookup", StackAppSpec: "stack"}.get(type(raw))
    if not isinstance(raw, Mapping):
        return None
    for key in ("uid", "lookup", "stack"):
        if key in raw:
            return {"uid": "existing"}.get(key, key)
    if raw.get("type") in ("self_hosted", "saas"):
        return raw["type"]
    return None


_KIND_TAGS = frozenset({"self_hosted", "saas", "existing", "lookup", "stack"})

AppSpec = Annotated[
    Union[
        Annotated[SelfHostedAppSpec, Tag("self_hosted")],
        Annotated[SaasAppSpec, Tag("saas")],
        Annotated[ExistingAppSpec, Tag("existing")],
        Annotated[LookupAppSpec, Tag("lookup")],
        Annotated[StackAppSpec, Tag("stack")],
    ],
    Discriminator(
        _app_kind,
        custom_error_type="app_kind",
        custom_error_message=(
            "cannot tell what app this is: a managed app has `type: self_hosted` or `type: saas`; "
            "an app managed elsewhere has `type` plus one of `uid`, `lookup` or `stack`"
        ),
    ),
]


class LinkSpec(_Spec):
    """`from` may call `to` on behalf of its user: `to` gets a linked_app_token policy naming `from`."""

    source: str = Field(alias="from", min_length=1)
    target: str = Field(alias="to", min_length=1)
    description: str | None = None


class Topology(_Spec):
    """Everything under the `linked-apps:` config namespace."""

    account_id: str = Field(alias="accountId", min_length=1)
    team_domain: str = Field(alias="teamDomain")
    apps: dict[str, AppSpec] = Field(default_factory=dict)
    links: list[LinkSpec] = Field(default_factory=list)
    assertions: list[AssertionSpec] = Field(default_factory=list)
    """Invariants of the trust graph, checked with the rules (see components/assertions.py)."""

    @field_validator("team_domain")
    @classmethod
    def _bare_host(cls, value: str) -> str:
        return check_team_domain(value)

    @field_validator("account_id")
    @classmethod
    def _account(cls, value: str) -> str:
        return check_account_id(value)

    @field_validator("apps")
    @classmethod
    def _names(cls, apps: dict[str, Any]) -> dict[str, Any]:
        # Printable, unmistakable names, and one name per Cloudflare app (rules.py says why).
        problems = [p for p in map(app_name_problem, apps) if p] or look_alike_problems(apps)
        problems += identity_problems({name: _identities(name, spec) for name, spec in apps.items()})
        if problems:
            raise ValueError("; ".join(problems))
        return apps

    def is_managed(self, name: str) -> bool:
        return name in self.apps and self.apps[name].managed

    def _facts(self) -> dict[str, AppFacts]:
        return {name: AppFacts(spec.type, spec.managed) for name, spec in self.apps.items()}

    def deferred_links(self) -> list[tuple[str, str]]:
        """Links of cycles among managed apps that attach on the next `pulumi up` (see rules.deferred_links)."""
        return deferred_links(self._facts(), [(l.source, l.target) for l in self.links])

    def violations(self) -> list[Violation]:
        """Every rule this topology breaks, all at once (empty when it can be deployed)."""
        facts = self._facts()
        refs = [LinkRef(l.source, l.target, f"{NAMESPACE}:links[{i}]") for i, l in enumerate(self.links)]
        return check_links(facts, refs) + self.assertion_violations(self.trust_graph())

    def assertion_violations(self, graph: TrustGraph) -> list[Violation]:
        """The assertions that fail on `graph`: the desired one, or one read from deployed state.

        UnknownAppError when an assertion names an app not declared under `apps`; a declared app missing from
        `graph` (not deployed yet) has no links there.
        """
        if not self.assertions:
            return []
        return check_assertions(self.assertions, graph, f"{NAMESPACE}:assertions", declared=self.apps)

    def trust_graph(self) -> TrustGraph:
        """The desired trust: uids and AUD tags of apps managed here are unknown until they are created."""
        apps = []
        for name, spec in self.apps.items():
            apps.append(App(
                name=name,
                type=spec.type,
                uid=getattr(spec, "uid", None),
                aud=getattr(spec, "aud", None),
                domain=getattr(spec, "domain", None),
                managed=spec.managed,
                lookup=getattr(spec, "lookup", None),
                stack=stack_reference(spec) if isinstance(spec, StackAppSpec) else None,
            ))
        links = [Link(l.source, l.target, policy_name=linked_policy_name(l.source), description=l.description)
                 for l in self.links]
        return TrustGraph(apps, links, team_domain=self.team_domain)


def _identities(name: str, spec: Any) -> list[tuple[str, str]]:
    """What names this app in Cloudflare: a managed app is found by its name, the others by what they give."""
    if spec.managed:
        return [("name", name)]
    if isinstance(spec, ExistingAppSpec):
        return [("uid", spec.uid)] + ([("aud", spec.aud)] if spec.aud else [])
    if isinstance(spec, LookupAppSpec):
        return [("name", spec.lookup)]
    return [("stack", stack_reference(spec))]


def stack_reference(spec: StackAppSpec) -> str:
    """Where another stack's app uid is read: `<stack> <output>` or `<stack> apps.<app>` (also exported)."""
    return f"{spec.stack} {spec.output}" if spec.output is not None else f"{spec.stack} apps.{spec.app}"


_TOP_KEYS = frozenset(f.alias or n for n, f in Topology.model_fields.items())


def _decode(value: Any) -> Any:
    # Pulumi hands structured config to programs as JSON strings; a stack file holds them as YAML.
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _format_loc(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc]
    path = ""
    for part in parts:
        path += f"[{part}]" if part.isdigit() else (f".{part}" if path else part)
    return f"{NAMESPACE}:{path}" if path else f"{NAMESPACE}:"


_HANDLES = ("uid", "lookup", "stack")
"""The keys that say where an app managed elsewhere comes from: exactly one per app."""


def _app_entry(raw: Mapping[str, Any], loc: tuple[Any, ...]) -> Mapping[str, Any]:
    apps = raw.get("apps")
    entry = apps.get(loc[1]) if isinstance(apps, Mapping) and len(loc) > 1 else None
    return entry if isinstance(entry, Mapping) else {}


def _extra_key_message(loc: tuple[Any, ...], raw_loc: tuple[Any, ...], raw: Mapping[str, Any]) -> str:
    key = str(loc[-1])
    if loc[:1] == ("apps",) and len(loc) == 3:
        entry = _app_entry(raw, loc)
        given = [h for h in _HANDLES if h in entry]
        if key in _HANDLES and len(given) > 1:
            return (f"{' and '.join(f'`{h}`' for h in given)} cannot be combined: an app managed elsewhere is "
                    "found by exactly one of `uid`, `lookup` or `stack`; keep one")
        kinds = [tag for tag, model in _APP_MODELS.items() if key in _fields(model)]
        if kinds:
            return f"`{key}` does not apply to this app; it belongs to {' or '.join(_KIND_WORDS[k] for k in kinds)}"
    known = _known_fields(raw_loc)
    hint = difflib.get_close_matches(key, known, n=1)
    return "unknown key" + (f"; did you mean `{hint[0]}`?" if hint else f"; known keys: {', '.join(sorted(known))}")


def _number_message(value: Any, loc: tuple[Any, ...]) -> str:
    # YAML reads unquoted digits as a number, and a number loses what made it an id (leading zeros, length).
    if loc == ("accountId",):
        return (f"{value!r} was read as a number (unquoted digits in the YAML); quote the account id exactly as "
                "the dashboard shows it, e.g. accountId: '0123456789abcdef0123456789abcdef'")
    return f"{value!r} was read as a number; quote it in the YAML" + (
        ", with its unit (e.g. '24h')" if str(loc[-1]) in ("sessionDuration", "accessTokenLifetime") else "")


def _friendly(err: dict[str, Any], raw: Mapping[str, Any] | None = None) -> str:
    loc = tuple(err["loc"])
    # Drop discriminator tags pydantic puts after the app name (apps.<name>.<tag>.field).
    if len(loc) >= 3 and loc[0] == "apps" and loc[2] in _KIND_TAGS:
        loc = loc[:2] + loc[3:]
    if len(loc) >= 3 and loc[0] == "assertions" and loc[2] in ASSERTION_MODELS:
        loc = loc[:2] + loc[3:]
    kind, msg = err["type"], err["msg"]
    if kind == "extra_forbidden":
        msg = _extra_key_message(loc, tuple(err["loc"]), raw or {})
    elif kind == "missing":
        msg = "required key is missing"
    elif loc[-1:] == ("[key]",):
        loc = loc[:-1]
        msg = "this name is not a string; quote it in the YAML"
    elif kind == "string_type" and isinstance(err.get("input"), (int, float)) and not isinstance(err["input"], bool):
        msg = _number_message(err["input"], loc)
    elif kind == "assertion_kind" and isinstance(err.get("input"), Mapping):
        kinds = [k for k in ASSERTION_MODELS if k in err["input"]]
        if len(kinds) > 1:
            msg += f"; it has {' and '.join(f'`{k}`' for k in kinds)}: write one assertion for each"
        known = _known_fields(loc)
        typos = [(k, hint[0]) for k in err["input"] if k not in known
                 for hint in [difflib.get_close_matches(str(k), list(ASSERTION_MODELS), n=1)] if hint]
        msg += "".join(f"; `{k}`: did you mean `{h}`?" for k, h in typos)
    elif msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    else:
        msg = _expected_form(kind, err, msg)
    return f"{_format_loc(loc)}: {msg}"


def _expected_form(kind: str, err: dict[str, Any], stock: str) -> str:
    """pydantic's stock phrases for the common shapes, said as what to write instead."""
    value = err.get("input")
    if kind == "literal_error":
        allowed = re.findall(r"'([^']*)'", str(err.get("ctx", {}).get("expected", "")))
        hint = difflib.get_close_matches(str(value), allowed, n=1)
        return (f"{value!r} is not one of {', '.join(allowed)}" + (f"; did you mean `{hint[0]}`?" if hint else "")
                if allowed else stock)
    if kind == "list_type":
        return (f"{value!r} is a single value; write a list, e.g. [{value}]" if isinstance(value, str)
                else "expected a list, e.g. [a, b] or one `- item` per line")
    if kind == "dict_type":
        return "expected a mapping of keys to values (`key: value` lines), not a list or a single value"
    if kind == "string_too_short":
        return "must not be empty"
    return stock


_APP_MODELS: dict[str, type[BaseModel]] = {"self_hosted": SelfHostedAppSpec, "saas": SaasAppSpec,
                                            "existing": ExistingAppSpec, "lookup": LookupAppSpec,
                                            "stack": StackAppSpec}
_KIND_WORDS = {"self_hosted": "self_hosted apps managed here", "saas": "saas apps managed here",
               "existing": "apps named by `uid`", "lookup": "apps found by `lookup`", "stack": "apps of another `stack`"}


def _fields(model: type[BaseModel]) -> set[str]:
    return {f.alias or n for n, f in model.model_fields.items() if n != "managed"}


def _known_fields(loc: tuple[Any, ...]) -> list[str]:
    model: type[BaseModel] | None = None
    if loc[:1] == ("links",):
        model = LinkSpec
    elif loc[:1] == ("assertions",):
        # Inside an assertion of a known kind, only that kind's keys; otherwise any assertion key.
        tagged = len(loc) > 2 and loc[2] in ASSERTION_MODELS
        kinds = [ASSERTION_MODELS[loc[2]]] if tagged else ASSERTION_MODELS.values()
        return sorted({f.alias or n for m in kinds for n, f in m.model_fields.items()})
    elif loc[:1] == ("apps",):
        tagged = len(loc) > 2 and loc[2] in _APP_MODELS
        return sorted(set().union(*(_fields(m) for m in ([_APP_MODELS[loc[2]]] if tagged else _APP_MODELS.values()))))
    if model is None:
        return sorted(_TOP_KEYS)
    return sorted(f.alias or n for n, f in model.model_fields.items())


def _assertion_problems_of_invalid(raw: Mapping[str, Any], exc: ValidationError) -> list[str]:
    """Assertions naming undeclared apps, reported in the same round as the config's other errors.

    Only when the assertions themselves parsed: their own errors are already among the others.
    """
    if any(e["loc"][:1] == ("assertions",) for e in exc.errors()) or not raw.get("assertions"):
        return []
    apps = raw.get("apps")
    if not isinstance(apps, Mapping):
        return []
    try:
        assertions = TypeAdapter(list[AssertionSpec]).validate_python(raw["assertions"])
    except ValidationError:
        return []
    return unknown_app_problems(assertions, [str(n) for n in apps], f"under {NAMESPACE}:apps", f"{NAMESPACE}:assertions")


def _link_problems_of_invalid(raw: Mapping[str, Any]) -> list[str]:
    """The link rules, judged on what of an invalid config can be read, so they come in the same round."""
    apps, links = raw.get("apps"), raw.get("links")
    if not isinstance(apps, Mapping) or not isinstance(links, list):
        return []
    facts = {str(name): AppFacts(spec["type"], not any(h in spec for h in _HANDLES))
             for name, spec in apps.items() if isinstance(spec, Mapping) and isinstance(spec.get("type"), str)}
    if len(facts) != len(apps):
        return []  # an app whose kind cannot be read: its rules would be guesses
    refs = [LinkRef(l["from"], l["to"], f"{NAMESPACE}:links[{i}]") for i, l in enumerate(links)
            if isinstance(l, Mapping) and isinstance(l.get("from"), str) and isinstance(l.get("to"), str)]
    return [f"{v.message} [{v.rule}]" for v in check_links(facts, refs)]


def topology_from_config(values: Mapping[str, Any], source: str = "stack config") -> Topology:
    """Build the topology from `linked-apps:*` config values (YAML-structured or Pulumi's JSON strings).

    Keys of other namespaces (`cloudflare:apiToken`, ...) are ignored. Raises ConfigError listing every problem.
    """
    raw: dict[str, Any] = {}
    problems: list[str] = []
    prefix = f"{NAMESPACE}:"
    for key, value in values.items():
        if not isinstance(key, str) or not key.startswith(prefix):
            continue
        short = key[len(prefix):]
        if short not in _TOP_KEYS:
            hint = difflib.get_close_matches(short, sorted(_TOP_KEYS), n=1)
            problems.append(f"{key}: unknown key" + (f"; did you mean `{prefix}{hint[0]}`?" if hint else ""))
            continue
        raw[short] = _decode(value)
    try:
        topology = Topology.model_validate(raw)
    except ValidationError as exc:
        problems.extend(_friendly(e, raw) for e in exc.errors())
        topology = None
        problems.extend(_assertion_problems_of_invalid(raw, exc))
        problems.extend(_link_problems_of_invalid(raw))
    if topology is not None:
        problems.extend(unknown_app_problems(topology.assertions, topology.apps, f"under {NAMESPACE}:apps",
                                             f"{NAMESPACE}:assertions"))
    if problems:
        raise ConfigError(problems, source)
    assert topology is not None
    return topology
