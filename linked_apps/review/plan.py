"""`linked-apps plan`: run the project's real `__main__.py` under the Pulumi SDK's mock runtime.

No CLI, no credentials: the mocks answer the engine and Cloudflare with made-up ids of the documented shapes,
secure config values become placeholders. What the program registers is what `pulumi up` would create.
"""

from __future__ import annotations

import contextvars
import gc
import hashlib
import json
import logging
import sys
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError, LinkedAppsError, RuleViolationError
from ..model.graph import TrustGraph
from ..model.rules import Violation
from ..model.topology import NAMESPACE, Topology, topology_from_config

SECRET_PLACEHOLDER = "[secret]"
"""How the CLI prints a secret without --show-secrets (`display.MassageSecrets` in pulumi/pulumi)."""
SECRET_SIG_KEY = "4dabf18193072939515e22adb298388d"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
"""The wire signature of a secret value (`_special_sig_key`/`_special_secret_sig` in the SDK's rpc.py)."""
_NS = uuid.UUID("6f1c1e2a-7d4b-4b8e-9a51-0c2d3e4f5a6b")


def fake_uid(kind: str, name: str) -> str:
    """A stable made-up UUID, so plans of the same config are identical run to run."""
    return str(uuid.uuid5(_NS, f"{kind}/{name}"))


def fake_aud(name: str) -> str:
    return hashlib.sha256(f"aud/{name}".encode()).hexdigest()


@dataclass
class Plan:
    """What a program run produced: the desired trust, the resources, and every rule it broke."""

    topology: Topology
    violations: list[Violation] = field(default_factory=list)
    resources: list[dict[str, Any]] = field(default_factory=list)
    """Registered Cloudflare resources: `type`, `name`, `id`, the `inputs` the engine received (camelCase), the
    `outputs` the provider would return (computed fields included, secrets in their wire form), and the mock
    runtime's `urn`, `parent` and `dependencies`."""
    components: list[dict[str, Any]] = field(default_factory=list)
    """Registered component resources: `type`, `name`, `urn`, `parent` and the `outputs` they registered."""
    outputs: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    """What the program warned about (`pulumi.log.warn`), e.g. links of a cycle still to attach."""

    @property
    def deferred(self) -> list[tuple[str, str]]:
        """Links of a cycle that attach on the next `pulumi up` (their source's trust policy is found by lookup)."""
        return self.topology.deferred_links()

    @property
    def graph(self) -> TrustGraph:
        return self.topology.trust_graph()

    def as_dict(self) -> dict[str, Any]:
        return {
            "apps": [{"name": n, "type": s.type, "managed": s.managed} for n, s in self.topology.apps.items()],
            "links": [{"from": l.source, "to": l.target} for l in self.topology.links],
            "deferred": [{"from": a, "to": b} for a, b in self.deferred],
            "violations": [v.as_dict() for v in self.violations],
            "resources": [{"type": r["type"], "name": r["name"], **({"import_id": r["import_id"]}
                                                                  if r.get("import_id") else {})}
                          for r in self.resources],
        }


def stack_file(stack: str, root: Path) -> Path:
    return root / "stacks" / f"Pulumi.{stack}.yaml"


def read_config_file(path: Path) -> dict[str, Any]:
    """The `config:` map of a `Pulumi.<stack>.yaml` file (or a bare map of `linked-apps:*` keys)."""
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        hint = ""
        if path.parent.is_dir():
            stacks = sorted(p.name[len("Pulumi."):-len(".yaml")] for p in path.parent.glob("Pulumi.*.yaml"))
            hint = f"; stacks here: {', '.join(stacks)}" if stacks else ""
        raise ConfigError([f"{path}: no such file{hint}"], str(path)) from None
    except OSError as exc:
        raise ConfigError([f"{path}: cannot be read ({exc.strerror})"], str(path)) from None
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{path}: not UTF-8 text (byte {exc.start}); give a Pulumi.<stack>.yaml file"],
                          str(path)) from None
    duplicates: list[str] = []
    try:
        doc = yaml.load(text, Loader=_duplicate_checking_loader(yaml, duplicates))  # noqa: S506 - a SafeLoader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError([f"{path}: not valid YAML{where}: {getattr(exc, 'problem', exc)}"], str(path)) from None
    if duplicates:
        raise ConfigError([f"{path}: {d}" for d in duplicates], str(path))
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise ConfigError([f"{path}: expected a mapping with a `config:` key"], str(path))
    config = doc.get("config", doc)
    if not isinstance(config, dict):
        raise ConfigError([f"{path}: `config:` must be a mapping"], str(path))
    return config


def _duplicate_checking_loader(yaml: Any, found: list[str]) -> type:
    """A SafeLoader that records every key given twice in one mapping, naming both lines.

    PyYAML keeps the last value silently; Pulumi's Go YAML (gopkg.in/yaml.v3) refuses the file ("mapping key
    ... already defined at line N"), so a duplicate must fail here too, or plan would show a config pulumi rejects.
    """

    class Loader(yaml.SafeLoader):
        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                try:
                    key = self.construct_object(key_node, deep=True)
                    hash(key)
                except Exception:  # noqa: BLE001 - an unhashable key is the base loader's error to report
                    continue
                line = key_node.start_mark.line + 1
                if key in seen:
                    found.append(f"line {line}: key {key!r} is given twice (first at line {seen[key]}); "
                                 "keep one, or the later one would silently win")
                else:
                    seen[key] = line
            return super().construct_mapping(node, deep=deep)

    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, Loader.construct_mapping)
    return Loader


def _engine_values(config: Mapping[str, Any]) -> tuple[dict[str, str], list[str]]:
    """Config as the engine hands it to a program: strings, JSON for structures, placeholders for secrets."""
    values: dict[str, str] = {}
    secret_keys: list[str] = []
    for key, value in config.items():
        if isinstance(value, dict) and set(value) == {"secure"}:
            values[key] = SECRET_PLACEHOLDER
            secret_keys.append(key)
        elif isinstance(value, str):
            values[key] = value
        else:
            values[key] = json.dumps(value)
    return values, secret_keys


_APP_DEFAULTS = {"appLauncherVisible": True, "autoRedirectToIdentity": False, "enableBindingCookie": False,
                 "httpOnlyCookieAttribute": True, "pathCookieAttribute": False, "sessionDuration": "24h",
                 "skipAppLauncherLoginPage": False}
"""Computed attributes with a `Default` in the provider's application schema (schema.go): the provider returns
them whether or not the program set them."""


class _PlanMocks:
    """Answers for the mock engine, shaped like Cloudflare's documented responses.

    `existing` are resources an earlier run registered (`Plan.resources`): what the account holds now, as the
    lookups (invokes) of this run see it.
    """

    def __init__(self, topology: Topology, existing: Sequence[Mapping[str, Any]] = ()) -> None:
        self.topology = topology
        self.existing = list(existing)
        self.registered: list[dict[str, Any]] = []
        self.components: list[dict[str, Any]] = []
        self._by_urn: dict[str, dict[str, Any]] = {}

    def record(self, urn: str, request: Any) -> None:
        """What the engine knows beyond the mock's answer: the URN, the parent and the dependencies."""
        if request.custom:
            # Registrations run on worker threads and may interleave: find the entry by its (type, name).
            entry = next((r for r in reversed(self.registered)
                          if r["name"] == request.name and r["type"] == request.type), None)
            if entry is None:
                return  # a resource the mocks do not record (a StackReference)
        else:
            entry = {"type": request.type, "name": request.name, "outputs": {}}
            self.components.append(entry)
        entry.update(urn=urn, parent=request.parent, dependencies=list(request.dependencies))
        self._by_urn[urn] = entry

    def record_outputs(self, urn: str, outputs: dict[str, Any]) -> None:
        if urn in self._by_urn and not self._by_urn[urn].get("id"):
            self._by_urn[urn]["outputs"] = outputs

    def new_resource(self, args: Any) -> tuple[str | None, dict[str, Any]]:
        inputs = dict(args.inputs)
        if args.typ == "pulumi:pulumi:StackReference":
            return args.name, {"outputs": self._stack_outputs(inputs.get("name", ""))}
        if not args.custom:
            return None, {}
        # Adopted (Pulumi's `import` option, `resource_id` here): the engine keeps the existing object's id.
        rid = args.resource_id or fake_uid(args.typ, args.name)
        if args.typ.endswith(":ZeroTrustAccessApplication"):
            inputs.setdefault("aud", fake_aud(inputs.get("name", args.name)))
            for key, default in _APP_DEFAULTS.items():
                inputs.setdefault(key, default)
            if inputs.get("type") == "saas":
                saas = dict(inputs.get("saasApp") or {})
                saas.setdefault("clientId", hashlib.sha256(f"client/{args.name}".encode()).hexdigest()[:32])
                saas.setdefault("clientSecret", hashlib.sha256(f"secret/{args.name}".encode()).hexdigest())
                # The provider marks saas_app.client_secret Sensitive (its schema.go), and a sensitive value makes
                # the whole enclosing output secret: the SDK sees `saasApp` as one secret, as under the engine.
                inputs["saasApp"] = {SECRET_SIG_KEY: SECRET_SIG, "value": saas}
        self.registered.append({"type": args.typ, "name": args.name, "id": rid, "inputs": dict(args.inputs),
                                "outputs": {**inputs, "id": rid}, "import_id": args.resource_id or None})
        return rid, inputs

    def _stack_outputs(self, stack: str) -> dict[str, Any]:
        apps: dict[str, Any] = {}
        outputs: dict[str, Any] = {"apps": apps}
        for name, spec in self.topology.apps.items():
            if getattr(spec, "stack", None) == stack:
                if spec.output:  # type: ignore[union-attr]
                    outputs[spec.output] = fake_uid("stack", f"{stack}/{spec.output}")  # type: ignore[union-attr]
                else:
                    app = spec.app  # type: ignore[union-attr]
                    apps[app] = {"uid": fake_uid("stack", f"{stack}/{app}"), "type": spec.type}
        return outputs

    def call(self, args: Any) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        if args.token.endswith(":getZeroTrustAccessApplications"):
            name = args.args.get("name")
            found = [{"id": r["id"], "name": name, "type": r["inputs"].get("type"), "aud": fake_aud(name)}
                     for r in self._existing(":ZeroTrustAccessApplication") if r["inputs"].get("name") == name]
            declared = next((s.type for s in self.topology.apps.values() if getattr(s, "lookup", None) == name), None)
            if declared is not None:
                found.append({"id": fake_uid("lookup", name), "name": name, "type": declared, "aud": fake_aud(name)})
            return {"results": found}, []
        if args.token.endswith(":getZeroTrustAccessPolicies"):
            # The list endpoint's fields the lookup reads (GET /accounts/{id}/access/policies).
            return {"results": [{"id": r["id"], "name": r["inputs"].get("name"), "decision": r["inputs"].get("decision"),
                                 "includes": r["inputs"].get("includes") or [], "excludes": [], "requires": [],
                                 "reusable": True}
                                for r in self._existing(":ZeroTrustAccessPolicy")]}, []
        return {}, []

    def _existing(self, suffix: str) -> list[Mapping[str, Any]]:
        return [r for r in self.existing if str(r.get("type", "")).endswith(suffix)]


def plan(config: Mapping[str, Any], *, program: Path, source: str = "stack config", stack: str = "dev",
         resolve_outputs: bool = True, existing: Sequence[Mapping[str, Any]] = ()) -> Plan:
    """Parse the config (ConfigError), then run the program under mocks and collect what it registers.

    `program` is the project's `__main__.py`; its folder is put first on `sys.path` for the run, as Pulumi's
    Python language host does, so the program imports the project's own packages (`components`).
    `existing`: the resources of an earlier run (its `Plan.resources`), which this run's lookups find, as a
    second `pulumi up` finds what the first created. Default: an account with nothing of this stack in it.
    """
    topology = topology_from_config(config, source=source)
    # A fresh context and event loop per run: the SDK keeps its settings in context variables and the loop.
    return contextvars.Context().run(_run, topology, config, stack, program, resolve_outputs, existing)


class _Warnings(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _run(topology: Topology, config: Mapping[str, Any], stack: str, program: Path, resolve_outputs: bool,
         existing: Sequence[Mapping[str, Any]]) -> Plan:
    # Imported here, not at the top: who-calls, graph and check read config through this module and never run.
    import asyncio
    import runpy

    import pulumi
    from pulumi.runtime import mocks, rpc, settings
    from pulumi.runtime.config import set_all_config
    from pulumi.runtime.stack import run_pulumi_func

    class Mocks(_PlanMocks, mocks.Mocks):
        pass

    class Monitor(mocks.MockMonitor):
        def RegisterResource(self, request: Any) -> Any:  # noqa: N802 - the gRPC method's name
            response = super().RegisterResource(request)
            self.mocks.record(response.urn, request)
            return response

        def RegisterResourceOutputs(self, request: Any) -> Any:  # noqa: N802
            self.mocks.record_outputs(request.urn, rpc.deserialize_properties(request.outputs))
            return super().RegisterResourceOutputs(request)

    _freeze_import_heap()
    # A run allocates its futures and Outputs in bulk and keeps them until the end: with the default gen-0
    # threshold (700) the collector rescans them thousands of times and plan time grows faster than the program.
    gc_thresholds = gc.get_threshold()
    gc.set_threshold(20_000, 20, 100)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        settings.ROOT.set(None)
        fakes = Mocks(topology, existing)
        warnings = _Warnings()
        logger = logging.getLogger(f"linked-apps.plan.{id(warnings)}")
        logger.propagate = False
        logger.addHandler(warnings)
        mocks.set_mocks(fakes, project=NAMESPACE, stack=stack, preview=False, logger=logger, monitor=Monitor(fakes))
        settings.SETTINGS.outputs = set()  # MockSettings leaves the shared default set in place
        values, secret_keys = _engine_values(config)
        set_all_config(values, secret_keys)
        result = Plan(topology)
        project = str(program.resolve().parent)
        sys.path.insert(0, project)
        try:
            loop.run_until_complete(run_pulumi_func(lambda: runpy.run_path(str(program), run_name="__main__")))
        except BaseException as exc:  # noqa: BLE001 - sorted below; anything unexpected is re-raised
            cause = _our_error(exc)
            if isinstance(cause, RuleViolationError):
                result.violations = cause.violations
            elif isinstance(cause, LinkedAppsError):
                raise cause from None
            elif isinstance(exc, pulumi.RunError):
                raise ConfigError([str(exc)], source="program") from None
            else:
                raise
        finally:
            sys.path.remove(project)
        result.resources = sorted(fakes.registered, key=lambda r: (r["name"], r["type"]))
        result.components = fakes.components
        logger.removeHandler(warnings)
        result.warnings = warnings.messages
        root = settings.get_root_resource()
        # Resolving every exported Output is a third of a large plan's time; commands that only show
        # apps, links and resources skip it.
        if resolve_outputs and root is not None and not result.violations:
            result.outputs = loop.run_until_complete(_resolve(getattr(root, "outputs", {})))
        return result
    finally:
        asyncio.set_event_loop(None)
        loop.close()
        gc.set_threshold(*gc_thresholds)


_FROZEN = False


def _freeze_import_heap() -> None:
    """Move pulumi_cloudflare's import-time objects (hundreds of thousands) out of the collector's sight.

    Otherwise every full collection during a run rescans them: 0.2 s a time, which dominates small plans and
    makes their timing a lottery. Done once per process; the objects live as long as the module anyway.
    """
    global _FROZEN
    if not _FROZEN:
        import pulumi_cloudflare  # noqa: F401  - the program imports it next; load it before freezing

        gc.freeze()
        _FROZEN = True


def _our_error(exc: BaseException | None) -> BaseException | None:
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, LinkedAppsError):
            return exc
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None


async def _resolve(outputs: Mapping[str, Any]) -> dict[str, Any]:
    import pulumi

    resolved: dict[str, Any] = {}
    for key, value in outputs.items():
        out = pulumi.Output.from_input(value)
        secret = await out.is_secret()
        resolved[key] = SECRET_PLACEHOLDER if secret else await out.future()
    return resolved
