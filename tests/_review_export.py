"""Deployed-state fixtures built from the real program: a plan turned into what users hand the tools.

`export_document(plan)` is a `pulumi stack export` (version 3) of what `pulumi up` would leave behind;
`output_document(plan)` is `pulumi stack output --json`. Regenerate the committed examples with
    .venv/bin/python tests/_review_export.py examples/dev-before.yaml examples/dev-state.json examples/dev-outputs.json
    .venv/bin/python tests/_review_export.py --refreshed examples/dev-refreshed-state.json
The second is the dev stack's export after someone attached legacy-crm's trust policy to payroll-api in the
dashboard and `pulumi refresh` recorded it: refresh rewrites a resource's `outputs` with what the provider reads
back (the app's `policies` as Cloudflare has them) and leaves its `inputs`, the program's, as they were.

Where each part of the shape comes from (read in the upstream sources, not guessed):
- URNs `urn:pulumi:<stack>::<project>::<parent type chain>$<type>::<name>`, the root stack's type never in a
  chain: `resource.NewURN` in pulumi/pulumi sdk/go/common/resource/urn.go. Children of a component name it as
  `parent`; components are `custom: false` with the outputs they registered.
- The default provider `pulumi:providers:cloudflare::default_<version>` is a resource of its own; every custom
  resource names it as `provider: "<provider urn>::<provider id>"` (deploy.providers in the engine). Its inputs
  carry the stack's `cloudflare:apiToken`, a secret.
- Outputs are what the provider returns: inputs plus computed fields (`id`, `aud`, `saasApp.clientId`) and the
  schema's defaults (terraform-provider-cloudflare zero_trust_access_application/schema.go).
- `saas_app.client_secret` is Sensitive in that schema, so the whole `saasApp` output is a secret; an export
  without --show-secrets holds every secret as `{"4dabf18193072939515e22adb298388d":
  "1b47061264138c4ac30d75fd1eb44270", "ciphertext": ...}` (stack export in pulumi/pulumi pkg/resource/stack).
- `pulumi stack output --json` prints every secret, nested ones included, as "[secret]"
  (`display.MassageSecrets` in pkg/cmd/pulumi/stack/stack_output.go).
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script
    sys.path.insert(0, str(ROOT))

from linked_apps.model.rules import creation_order  # noqa: E402
from linked_apps.review.plan import (  # noqa: E402
    SECRET_PLACEHOLDER,
    SECRET_SIG_KEY,
    Plan,
    plan,
    read_config_file,
)

PROGRAM = ROOT / "__main__.py"

SECRET_SIG = SECRET_SIG_KEY
PROVIDER_VERSION = "6.23.1"
"""pulumi-cloudflare as the project pins it (pyproject); fixed here so the committed examples do not follow the venv."""
PROVIDER_ID = "0c1e8a7e-1111-4c1e-8a7e-000000000000"
TIME = "2026-01-01T00:00:00Z"
STACK_TYPE = "pulumi:pulumi:Stack"


def secret(tag: str) -> dict[str, str]:
    """A secret as `pulumi stack export` shows it without --show-secrets (ciphertext, never the value)."""
    return {SECRET_SIG: "1b47061264138c4ac30d75fd1eb44270", "ciphertext": f"v1:ZmFrZQ==:{tag}"}


def _stored(value: Any, tag: str) -> Any:
    """A value as engine state stores it: secrets (wire form `{sig, value}`) as ciphertext, numbers as the CLI
    writes them (the engine hands mocks floats; state holds precedences as integers)."""
    if isinstance(value, dict):
        if value.get(SECRET_SIG) and "value" in value:
            return secret(tag)
        return {k: _stored(v, f"{tag}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_stored(v, f"{tag}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _engine_urns(result: Plan, prefix: str, stack_urn: str) -> dict[str, str]:
    """Mock URN -> the engine's URN. The mock runtime prefixes a child with its parent's last type only and puts
    the root stack's type in; the engine chains every ancestor's type below the stack (resource.NewURN)."""
    entries = {e["urn"]: e for e in [*result.components, *result.resources] if e.get("urn")}
    types: dict[str, str] = {}

    def chain(urn: str) -> str:
        if urn not in types:
            entry = entries[urn]
            parent = entry.get("parent") or ""
            up = chain(parent) if parent in entries and entries[parent]["type"] != STACK_TYPE else ""
            types[urn] = f"{up}${entry['type']}" if up else entry["type"]
        return types[urn]

    out = {urn: f"{prefix}{chain(urn)}::{e['name']}" for urn, e in entries.items() if e["type"] != STACK_TYPE}
    out.update({urn: stack_urn for urn, e in entries.items() if e["type"] == STACK_TYPE})
    return out


def export_document(result: Plan, stack: str = "dev", project: str = "linked-apps") -> dict[str, Any]:
    prefix = f"urn:pulumi:{stack}::{project}::"
    stack_urn = f"{prefix}{STACK_TYPE}::{project}-{stack}"
    provider_urn = f"{prefix}pulumi:providers:cloudflare::default_{PROVIDER_VERSION.replace('.', '_')}"
    urns = _engine_urns(result, prefix, stack_urn)
    outputs = {k: (secret(k) if v == SECRET_PLACEHOLDER else copy.deepcopy(v)) for k, v in result.outputs.items()}
    provider_props = {"apiToken": secret("cloudflare:apiToken"), "version": PROVIDER_VERSION}
    resources: list[dict[str, Any]] = [
        {"urn": stack_urn, "custom": False, "type": STACK_TYPE, "outputs": outputs, "created": TIME, "modified": TIME},
        {"urn": provider_urn, "custom": True, "id": PROVIDER_ID, "type": "pulumi:providers:cloudflare",
         "inputs": provider_props, "outputs": copy.deepcopy(provider_props), "created": TIME, "modified": TIME},
    ]
    children: dict[str, list[dict[str, Any]]] = {}
    for res in result.resources:
        children.setdefault(res.get("parent") or "", []).append(res)
    # The engine writes dependencies before dependents; the mock runtime registers on threads, in no fixed order.
    group_of = {r["urn"]: r.get("parent") or "" for r in result.resources}
    components = {c["urn"]: c for c in result.components if c["type"] != STACK_TYPE}
    group_edges = {(group_of[d], c) for c in components for r in children.get(c, []) for d in r["dependencies"]
                   if group_of.get(d, c) != c}
    for key in creation_order(components, group_edges):
        component = components[key]
        urn = urns[component["urn"]]
        resources.append({"urn": urn, "custom": False, "type": component["type"],
                          "outputs": _stored(component["outputs"], component["name"]), "parent": stack_urn,
                          "created": TIME, "modified": TIME})
        own = {r["urn"]: r for r in children.get(component["urn"], [])}
        inner = {(d, u) for u, r in own.items() for d in r["dependencies"] if d in own}
        for res in (own[u] for u in creation_order(own, inner)):
            resources.append({
                "urn": urns[res["urn"]],
                "custom": True,
                "id": res["id"],
                "type": res["type"],
                "inputs": _stored(res["inputs"], res["name"]),
                "outputs": _stored(res["outputs"], res["name"]),
                "parent": urn,
                **({"dependencies": sorted(urns[d] for d in res["dependencies"] if d in urns)}
                   if res["dependencies"] else {}),
                "provider": f"{provider_urn}::{PROVIDER_ID}",
                "created": TIME,
                "modified": TIME,
            })
    return {
        "version": 3,
        "deployment": {
            "manifest": {"time": TIME, "magic": "", "version": "v3.272.0"},
            "secrets_providers": {"type": "passphrase", "state": {"salt": "v1:c2FsdA==:ZmFrZQ=="}},
            "resources": resources,
        },
    }


def output_document(result: Plan) -> dict[str, Any]:
    """`pulumi stack output --json`: every secret prints as "[secret]", as the CLI does without --show-secrets."""
    return copy.deepcopy(result.outputs)


_PLANS: dict[str, Plan] = {}


def planned(config: dict[str, Any], key: str) -> Plan:
    """One program run per distinct config per test process (each run costs about a second)."""
    if key not in _PLANS:
        _PLANS[key] = plan(config, program=PROGRAM, source=key)
    return _PLANS[key]


def dev_config() -> dict[str, Any]:
    return copy.deepcopy(read_config_file(ROOT / "stacks" / "Pulumi.dev.yaml"))


def refreshed_with_link(doc: dict[str, Any], source: str, target: str) -> dict[str, Any]:
    """`doc` after `pulumi refresh` read back a hand-made attachment: `source`'s trust policy on `target`."""
    doc = copy.deepcopy(doc)
    resources = doc["deployment"]["resources"]
    policy = next(r for r in resources if r["type"].endswith(":ZeroTrustAccessPolicy")
                  and r["outputs"].get("name") == f"Linked app token: {source}")
    app = next(r for r in resources if r["type"].endswith(":ZeroTrustAccessApplication")
               and r["outputs"].get("name") == target)
    attached = app["outputs"].setdefault("policies", [])
    attached.append({"id": policy["id"], "precedence": len(attached) + 1})
    return doc


def refreshed_example() -> dict[str, Any]:
    return refreshed_with_link(export_document(planned(dev_config(), "dev")), "legacy-crm", "payroll-api")


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[1] == "--refreshed":
        Path(argv[2]).write_text(json.dumps(refreshed_example(), indent=2) + "\n")
        return 0
    if len(argv) not in (2, 4):
        print(__doc__, file=sys.stderr)
        return 2
    path = Path(argv[1])
    result = plan(read_config_file(path), program=PROGRAM, source=str(path))
    export = json.dumps(export_document(result), indent=2) + "\n"
    if len(argv) == 2:
        print(export, end="")
        return 0
    Path(argv[2]).write_text(export)
    Path(argv[3]).write_text(json.dumps(output_document(result), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
