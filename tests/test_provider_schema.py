"""The component provider (provider/): a schema that documents itself and stays in step with the Python API.

The schema is inferred exactly as the plugin infers it (the SDK's analyzer, no CLI). Components are constructed
through the provider's own `construct` under the mock runtime, as the engine would for a YAML or TypeScript
program, and the README's YAML, TypeScript and Python examples are checked against the schema and each other.
"""

import importlib.util
import inspect
import json
import re
import subprocess
import sys
import typing
from importlib.metadata import version
from pathlib import Path
from typing import Any, Callable

import pulumi
import pytest
import yaml
from pulumi.errors import InputPropertyError
from pulumi.provider.experimental.analyzer import Analyzer
from pulumi.provider.experimental.component import ComponentProvider
from pulumi.provider.experimental.util import camel_case
from pulumi.provider.server import ComponentInitError

from linked_apps.review.plan import fake_aud, fake_uid

from ._mock_engine import run_program
from .conftest import ACCOUNT, EXISTING_UID

ROOT = Path(__file__).resolve().parent.parent
ENTRY = ROOT / "provider" / "__main__.py"
README = ROOT / "README.md"
SECTION = "## Any Pulumi language: the component provider"
APP = "cloudflare:index/zeroTrustAccessApplication:ZeroTrustAccessApplication"


# --- the entry point and the schema it serves ---------------------------------------------------------------


@pytest.fixture(scope="module")
def entry():
    """provider/__main__.py, imported (not run): its component list and package name are what the plugin serves."""
    spec = importlib.util.spec_from_file_location("linked_apps_provider_entry", ENTRY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def analysis(entry):
    return Analyzer(entry.PACKAGE).analyze(entry.COMPONENTS)


@pytest.fixture(scope="module")
def provider(entry):
    return ComponentProvider(entry.COMPONENTS, entry.PACKAGE, None, version("linked-apps"))


@pytest.fixture(scope="module")
def schema(provider):
    return json.loads(provider.schema)


def token(entry, component: type) -> str:
    return f"{entry.PACKAGE}:index:{component.__name__}"


def args_type(component: type) -> type:
    return inspect.get_annotations(component.__init__)["args"]


def output_attributes(component: type) -> dict[str, Any]:
    """The `name: pulumi.Output[T]` class attributes: what Python callers read off the component."""
    return {k: v for k, v in inspect.get_annotations(component).items() if typing.get_origin(v) is pulumi.Output}


def test_entry_serves_every_component_of_the_python_api(entry):
    import components.apps
    import components.trust

    defined = {obj for mod in (components.apps, components.trust) for obj in vars(mod).values()
               if inspect.isclass(obj) and issubclass(obj, pulumi.ComponentResource) and obj.__module__ == mod.__name__}
    assert set(entry.COMPONENTS) == defined == {components.apps.SelfHostedApp, components.apps.SaasApp,
                                                 components.trust.LinkedAppTrust}
    assert entry.PACKAGE == "linked-apps"


def test_schema_names_each_component_by_its_token_and_describes_it(entry, schema):
    assert schema["name"] == entry.PACKAGE
    assert schema["version"] == version("linked-apps")
    assert set(schema["resources"]) == {token(entry, c) for c in entry.COMPONENTS}
    assert schema["types"] == {}  # inputs and outputs are strings, booleans and lists: nothing else to document
    for component in entry.COMPONENTS:
        resource = schema["resources"][token(entry, component)]
        assert resource["isComponent"] is True
        assert resource["description"] == inspect.cleandoc(component.__doc__)


@pytest.mark.parametrize("name", ["SelfHostedApp", "SaasApp", "LinkedAppTrust"])
def test_inputs_are_the_args_typeddict(entry, analysis, schema, name):
    component = next(c for c in entry.COMPONENTS if c.__name__ == name)
    args = args_type(component)
    assert typing.is_typeddict(args), f"{name}.__init__ must take `args` as a TypedDict"
    definition = analysis["component_definitions"][name]
    resource = schema["resources"][token(entry, component)]

    assert definition.inputs_mapping == {camel_case(k): k for k in args.__annotations__}
    assert set(resource["inputProperties"]) == set(definition.inputs_mapping)
    assert sorted(resource["requiredInputs"]) == sorted(camel_case(k) for k in args.__required_keys__)
    optional = {camel_case(k) for k in args.__optional_keys__}
    assert {n for n, p in definition.inputs.items() if p.optional} == optional
    assert optional.isdisjoint(resource["requiredInputs"])


@pytest.mark.parametrize("name", ["SelfHostedApp", "SaasApp", "LinkedAppTrust"])
def test_outputs_are_the_annotated_output_attributes(entry, analysis, schema, name):
    component = next(c for c in entry.COMPONENTS if c.__name__ == name)
    attributes = output_attributes(component)
    assert attributes, f"{name} declares no `pulumi.Output[...]` attributes"
    definition = analysis["component_definitions"][name]
    resource = schema["resources"][token(entry, component)]
    assert definition.outputs_mapping == {camel_case(k): k for k in attributes}
    assert set(resource["properties"]) == set(resource["required"]) == set(definition.outputs_mapping)
    for prop in resource["properties"].values():
        assert prop["type"] == "string"


def test_every_input_and_output_has_a_language_neutral_description(entry, schema):
    """Descriptions reach TypeScript, Go and YAML users: no Python-only names, no docstring indentation."""
    python_only = {k for c in entry.COMPONENTS for k in [*args_type(c).__annotations__, *output_attributes(c)]
                   if camel_case(k) != k}
    missing, pythonic = [], []
    for tok, resource in schema["resources"].items():
        props = {**{f"input {k}": v for k, v in resource["inputProperties"].items()},
                 **{f"output {k}": v for k, v in resource["properties"].items()}}
        for where, prop in props.items():
            text = prop.get("description") or ""
            if not text.strip() or text != text.strip() or "\n " in text:
                missing.append(f"{tok} {where}: {text!r}")
            named = set(re.findall(r"`([^`]+)`", text)) & python_only
            if named:
                pythonic.append(f"{tok} {where} names {sorted(named)}")
    assert missing == []
    assert pythonic == []


def test_list_inputs_take_inputs_as_items_where_python_accepts_outputs(entry, schema):
    """`Sequence[pulumi.Input[str]]` (e.g. another component's policy id) must not be plain in other languages."""
    self_hosted = schema["resources"][f"{entry.PACKAGE}:index:SelfHostedApp"]["inputProperties"]
    assert "plain" not in self_hosted["linkedAppPolicyIds"]["items"]
    assert "plain" not in self_hosted["accountId"]
    assert self_hosted["allowEmailDomains"]["items"].get("plain") is True  # read while the component is built


@pytest.fixture(scope="module")
def plugin(tmp_path_factory):
    """provider/ started as the Python language host starts it (`python provider/ <engine>`), and a gRPC stub.

    A stand-in resource monitor answers the one call a construct makes before the component runs.
    """
    from concurrent import futures

    import grpc
    from pulumi.runtime.proto import provider_pb2_grpc, resource_pb2, resource_pb2_grpc

    class Monitor(resource_pb2_grpc.ResourceMonitorServicer):
        def SupportsFeature(self, request, context):
            return resource_pb2.SupportsFeatureResponse(hasSupport=True)

    monitor = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    resource_pb2_grpc.add_ResourceMonitorServicer_to_server(Monitor(), monitor)
    monitor_port = monitor.add_insecure_port("127.0.0.1:0")
    monitor.start()
    log = tmp_path_factory.mktemp("plugin") / "stderr.txt"
    with open(log, "wb") as stderr:
        proc = subprocess.Popen([sys.executable, str(ENTRY.parent), "127.0.0.1:1"], cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=stderr)
    try:
        port = proc.stdout.readline().decode().strip()
        assert port.isdigit(), f"the plugin did not print its port: {log.read_text()[-2000:]}"
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield provider_pb2_grpc.ResourceProviderStub(channel), f"127.0.0.1:{monitor_port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        proc.stdout.close()
        monitor.stop(None)


def test_the_real_plugin_serves_the_same_schema(plugin, provider):
    from pulumi.runtime.proto import provider_pb2

    stub, _ = plugin
    served = stub.GetSchema(provider_pb2.GetSchemaRequest(version=0), timeout=30)
    assert json.loads(served.schema) == json.loads(provider.schema)


@pytest.mark.parametrize("inputs, code, message", [
    ({"domain": "payroll.acme.com"}, "INVALID_ARGUMENT", "Missing required input 'accountId' on 'SelfHostedApp'"),
    ({"accountId": ACCOUNT}, "INVALID_ARGUMENT", "SelfHostedApp 'payroll-api': give `domain` (e.g. payroll.acme.com) or"),
])
def test_the_real_plugin_reports_bad_inputs_with_the_components_message(entry, plugin, inputs, code, message):
    """What the engine receives when a YAML or TypeScript program gets an argument wrong."""
    import grpc
    from google.protobuf import struct_pb2
    from pulumi.runtime.proto import provider_pb2

    stub, monitor = plugin
    struct = struct_pb2.Struct()
    struct.update(inputs)
    request = provider_pb2.ConstructRequest(project="hr-trust", stack="dev", name="payroll-api", dryRun=True,
                                            type=f"{entry.PACKAGE}:index:SelfHostedApp", inputs=struct,
                                            monitorEndpoint=monitor)
    with pytest.raises(grpc.RpcError) as caught:
        stub.Construct(request, timeout=30)
    assert caught.value.code().name == code, caught.value.details()
    trailers = caught.value.trailing_metadata() or ()
    details = caught.value.details() + "".join(v.decode(errors="replace") for _, v in trailers if isinstance(v, bytes))
    assert message in details
    assert "File \"" not in details and "Traceback" not in details  # one clean line, as in a Python program


# --- constructing through the provider, as the engine does for other languages ------------------------------


class _Recorder(pulumi.runtime.Mocks):
    """Mock engine: records every registration; Cloudflare resources get stable made-up ids."""

    def __init__(self) -> None:
        self.components: list[tuple[str, str]] = []
        self.resources: list[dict[str, Any]] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        if not args.custom:
            self.components.append((args.typ, args.name))
            return None, {}
        rid = fake_uid(args.typ, args.name)
        self.resources.append({"type": args.typ, "name": args.name, "id": rid, "inputs": dict(args.inputs)})
        state = dict(args.inputs)
        if args.typ == APP:
            state.setdefault("aud", fake_aud(args.name))
            if state.get("type") == "saas":
                state["saasApp"] = {**state["saasApp"], "clientId": f"client-{args.name}", "clientSecret": "s3cret"}
        return rid, state

    def call(self, args: pulumi.runtime.MockCallArgs):
        return {}, []


def in_mock_runtime(body: Callable[[], Any], config: dict[str, str] | None = None,
                    project: str = "hr-trust") -> tuple[_Recorder, Any]:
    """Run `body` as a program; return the recorder and body's result, resolved."""
    recorder = _Recorder()
    result = run_program(body, recorder, config={f"{project}:{k}": v for k, v in (config or {}).items()},
                         project=project)
    return recorder, result


def construct(provider: ComponentProvider, type_token: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    return provider.construct(name, type_token, inputs, None).state


@pytest.mark.parametrize("name, inputs", [
    ("SelfHostedApp", {"accountId": ACCOUNT, "domain": "payroll.acme.com", "allowEmailDomains": ["acme.com"]}),
    ("SaasApp", {"accountId": ACCOUNT, "redirectUris": ["https://mcp.acme.com/oauth/callback"]}),
    ("LinkedAppTrust", {"accountId": ACCOUNT, "sourceName": "legacy-crm", "sourceUid": EXISTING_UID}),
])
def test_each_token_constructs_its_component_with_schema_names(entry, provider, schema, name, inputs):
    type_token = f"{entry.PACKAGE}:index:{name}"
    recorder, state = in_mock_runtime(lambda: construct(provider, type_token, f"my-{name.lower()}", inputs))
    # The component registers under exactly the token the schema publishes (the engine matches on it).
    assert [c for c in recorder.components if c[0] != "pulumi:pulumi:Stack"] == [(type_token, f"my-{name.lower()}")]
    # Every schema output comes back, under its schema name, resolved.
    assert set(state) == set(schema["resources"][type_token]["properties"])
    assert all(isinstance(v, str) and v for v in state.values())
    assert recorder.resources, "the component built no Cloudflare resources"


def test_the_saas_client_secret_stays_secret_through_the_provider(entry, provider):
    def body():
        state = construct(provider, f"{entry.PACKAGE}:index:SaasApp", "mcp",
                          {"accountId": ACCOUNT, "redirectUris": ["https://mcp.acme.com/oauth/callback"]})
        return {"secret": state["clientSecret"].is_secret(), "client": state["clientId"].is_secret()}

    _, flags = in_mock_runtime(body)
    assert flags == {"secret": True, "client": False}


def test_constructed_inputs_reach_cloudflare_as_the_python_api_sends_them(entry, provider):
    def body():
        # A policy id from another resource arrives as an Output, as the engine delivers it.
        policy = pulumi.Output.from_input("4b0f9e52-3d1a-4c8e-9f27-6a5b4c3d2e1f")
        inputs = {"accountId": ACCOUNT, "destinations": ["payroll.acme.com/api"], "sessionDuration": "8h",
                  "policyIds": ["5f0a3c2e-1b4d-4e6f-8a9b-0c1d2e3f4a5b"], "linkedAppPolicyIds": [policy]}
        return construct(provider, f"{entry.PACKAGE}:index:SelfHostedApp", "pay", inputs)

    recorder, _ = in_mock_runtime(body)
    app = next(r for r in recorder.resources if r["type"] == APP)["inputs"]
    assert app["destinations"] == [{"type": "public", "uri": "payroll.acme.com/api"}]
    assert app["sessionDuration"] == "8h"
    assert app["policies"] == [{"id": "5f0a3c2e-1b4d-4e6f-8a9b-0c1d2e3f4a5b", "precedence": 1},
                               {"id": "4b0f9e52-3d1a-4c8e-9f27-6a5b4c3d2e1f", "precedence": 2}]


@pytest.mark.parametrize("name, inputs, message", [
    ("SelfHostedApp", {"accountId": ACCOUNT}, "SelfHostedApp 'x': give `domain`"),
    ("SaasApp", {"accountId": ACCOUNT, "redirectUris": []}, "SaasApp 'x': give at least one `redirect_uris`"),
    ("LinkedAppTrust", {"accountId": ACCOUNT, "sourceName": "a", "sourceUid": EXISTING_UID, "lookup": True},
     "LinkedAppTrust 'x': give exactly one of"),
    ("LinkedAppTrust", {"accountId": ACCOUNT, "sourceName": "a", "sourceUid": "not-a-uid"},
     "LinkedAppTrust 'x': source_uid:"),
    # The provider's value rules hold for other languages too (linked_apps.model.rules, one home).
    ("SelfHostedApp", {"accountId": ACCOUNT, "domain": "a.acme.com", "sessionDuration": "1d"},
     "SelfHostedApp 'x': session_duration: '1d' is not a duration; write e.g. 24h or 2h45m"),
    ("SelfHostedApp", {"accountId": ACCOUNT, "domain": "https://a.acme.com/"},
     "SelfHostedApp 'x': domain: 'https://a.acme.com/' is not an Access domain"),
    ("SaasApp", {"accountId": ACCOUNT, "redirectUris": ["https://m.acme.com/cb"], "grantTypes": ["password"]},
     "SaasApp 'x': grant_types: 'password' is not an OIDC grant type"),
])
def test_other_languages_get_the_components_own_errors(entry, provider, name, inputs, message):
    with pytest.raises(ComponentInitError) as caught:
        in_mock_runtime(lambda: construct(provider, f"{entry.PACKAGE}:index:{name}", "x", inputs))
    assert isinstance(caught.value.inner, pulumi.RunError)
    assert str(caught.value.inner).startswith(message)


def test_a_missing_required_input_is_named(entry, provider):
    with pytest.raises(InputPropertyError, match="Missing required input 'accountId' on 'SelfHostedApp'"):
        in_mock_runtime(lambda: construct(provider, f"{entry.PACKAGE}:index:SelfHostedApp", "x",
                                          {"domain": "a.acme.com"}))


# --- the README's examples -----------------------------------------------------------------------------------


def readme_example(language: str) -> str:
    text = README.read_text(encoding="utf-8")
    assert SECTION in text, f"README.md has no {SECTION!r} section"
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(rf"```{language}\n(.*?)```", section, re.DOTALL)
    assert len(blocks) == 1, f"expected one {language} example in the provider section, found {len(blocks)}"
    return blocks[0]


REF = re.compile(r"\$\{([A-Za-z0-9_-]+)(?:\.([A-Za-z0-9_]+))?\}")


def yaml_references(value: Any) -> list[tuple[str, str | None]]:
    if isinstance(value, str):
        return [(source, attr or None) for source, attr in REF.findall(value)]
    if isinstance(value, list):
        return [r for v in value for r in yaml_references(v)]
    if isinstance(value, dict):
        return [r for v in value.values() for r in yaml_references(v)]
    return []


def test_readme_yaml_example_uses_the_schemas_types_and_names(entry, schema):
    program = yaml.safe_load(readme_example("yaml"))
    assert entry.PACKAGE in program["packages"]
    resources = program["resources"]
    problems = []
    for name, resource in resources.items():
        spec = schema["resources"].get(resource["type"])
        if spec is None:
            problems.append(f"{name}: unknown type {resource['type']}")
            continue
        props = resource.get("properties", {})
        problems += [f"{name}: no input {p!r}" for p in props if p not in spec["inputProperties"]]
        problems += [f"{name}: required input {p!r} missing" for p in spec["requiredInputs"] if p not in props]
    for source, attr in yaml_references([r.get("properties", {}) for r in resources.values()] + [program["outputs"]]):
        if attr is None:
            if source not in program["config"]:
                problems.append(f"${{{source}}}: no such config key")
        elif source not in resources:
            problems.append(f"${{{source}.{attr}}}: no such resource")
        elif attr not in schema["resources"][resources[source]["type"]]["properties"]:
            problems.append(f"${{{source}.{attr}}}: {resources[source]['type']} has no output {attr!r}")
    assert problems == []


def typescript_components(code: str, package_alias: str) -> list[tuple[str, str, str, set[str]]]:
    """(variable, component, name, property names) of each `new <alias>.<Component>("<name>", {...})`."""
    found = []
    pattern = rf"const (\w+) = new {package_alias}\.(\w+)\(\"([^\"]+)\",\s*\{{(.*?)\}}\);"
    for var, component, name, body in re.findall(pattern, code, re.DOTALL):
        keys = set(re.findall(r"(?:^|[{,])\s*([A-Za-z_$][\w$]*)\s*(?=[:,}]|$)", body.strip()))
        found.append((var, component, name, keys))
    return found


def test_readme_typescript_example_uses_the_schemas_names(entry, schema):
    code = readme_example("typescript")
    # The name `pulumi package add` gives the generated npm package (Pulumi's nodejs codegen rule).
    npm = f"@{schema['namespace']}/{schema['name']}" if schema.get("namespace") else f"@pulumi/{schema['name']}"
    match = re.search(rf'import \* as (\w+) from "{re.escape(npm)}";', code)
    assert match, f"import the SDK generated for the package: {npm}"
    alias = match.group(1)
    declared = typescript_components(code, alias)
    assert len(declared) == len(re.findall(rf"new {alias}\.", code)) == 3
    problems, kinds = [], {}
    for var, component, name, keys in declared:
        spec = schema["resources"].get(f"{entry.PACKAGE}:index:{component}")
        if spec is None:
            problems.append(f"{name}: unknown component {component}")
            continue
        kinds[var] = spec
        problems += [f"{name}: no input {k!r}" for k in keys - set(spec["inputProperties"])]
        problems += [f"{name}: required input {k!r} missing" for k in set(spec["requiredInputs"]) - keys]
    for var, attr in re.findall(r"\b(\w+)\.(\w+)\b", re.sub(r'"[^"]*"', '""', code)):
        if var in kinds and attr not in kinds[var]["properties"]:
            problems.append(f"{var}.{attr}: no such output")
    assert problems == []


def python_components(code: str) -> list[tuple[str, str, set[str]]]:
    """(component, name, schema names of the args keys) of each `Component("name", {...})` call."""
    import ast

    found = []
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and len(node.args) == 2 \
                and isinstance(node.args[1], ast.Dict):
            keys = {camel_case(k.value) for k in node.args[1].keys}
            found.append((node.func.id, node.args[0].value, keys))
    return found


def test_readme_examples_declare_the_same_components_in_all_three_languages(entry):
    program = yaml.safe_load(readme_example("yaml"))
    in_yaml = [(r["type"].rsplit(":", 1)[1], n, set(r["properties"])) for n, r in program["resources"].items()]
    in_ts = [(c, n, keys) for _, c, n, keys in typescript_components(readme_example("typescript"), "linkedApps")]
    in_python = python_components(readme_example("python"))
    assert in_yaml == in_ts == in_python
    assert [(c, n) for c, n, _ in in_yaml] == [("SelfHostedApp", "hr-portal"), ("LinkedAppTrust", "hr-portal-trust"),
                                                ("SelfHostedApp", "payroll-api")]
    assert "linkedAppPolicyIds" in in_yaml[2][2] and "sourceUid" in in_yaml[1][2]


def by_name(resource: dict[str, Any]) -> str:
    return resource["name"]


def run_yaml_through_provider(provider: ComponentProvider, program: dict[str, Any], config: dict[str, str]):
    """A minimal Pulumi YAML evaluator: `${config}` and `${resource.output}`, resources in declaration order."""
    states: dict[str, dict[str, Any]] = {}

    def evaluate(value: Any) -> Any:
        if isinstance(value, list):
            return [evaluate(v) for v in value]
        if isinstance(value, dict):
            return {k: evaluate(v) for k, v in value.items()}
        if isinstance(value, str):
            whole = REF.fullmatch(value)
            if whole:
                source, attr = whole.groups()
                return states[source][attr] if attr else config[source]
        return value

    def body():
        for name, resource in program["resources"].items():
            states[name] = construct(provider, resource["type"], name, evaluate(resource.get("properties", {})))
        return evaluate(program["outputs"])

    return in_mock_runtime(body, config)


def test_readme_yaml_through_the_provider_builds_what_the_python_example_builds(provider):
    config = {"accountId": ACCOUNT}
    via_provider, yaml_outputs = run_yaml_through_provider(provider, yaml.safe_load(readme_example("yaml")), config)

    code = compile(readme_example("python"), "README.md (python example)", "exec")

    def python_program():
        exec(code, {"__name__": "__main__"})
        from pulumi.runtime import settings

        return dict(settings.get_root_resource().outputs)

    direct, python_outputs = in_mock_runtime(python_program, config)

    assert sorted(via_provider.resources, key=by_name) == sorted(direct.resources, key=by_name)
    assert yaml_outputs == python_outputs == {"payrollAud": fake_aud("payroll-api-app")}
    res = {r["name"]: r for r in direct.resources}
    hr_uid = res["hr-portal-app"]["id"]
    assert res["hr-portal-trust-policy"]["inputs"]["includes"] == [{"linkedAppToken": {"appUid": hr_uid}}]
    assert res["payroll-api-app"]["inputs"]["policies"] == [
        {"id": res["payroll-api-allow"]["id"], "precedence": 1},
        {"id": res["hr-portal-trust-policy"]["id"], "precedence": 2},
    ]
