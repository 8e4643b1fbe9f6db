"""Deployed-state fixtures built from the real program: a plan turned into what users hand the tools.

`export_document(plan)` is a `pulumi stack export` (version 3) of what `pulumi up` would leave behind;
`output_document(plan)` is `pulumi stack output --json`. Regenerate the committed example state with
    .venv/bin/python tests/_review_export.py examples/dev-before.yaml > examples/dev-state.json
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

from linked_apps.review.plan import SECRET_PLACEHOLDER, Plan, plan, read_config_file  # noqa: E402

PROGRAM = ROOT / "__main__.py"

SECRET_SIG = "4dabf18193072939515e22adb298388d"
_COMPUTED = ("aud",)
_COMPUTED_SAAS = ("clientId", "clientSecret")


def secret(tag: str) -> dict[str, str]:
    """A secret as `pulumi stack export` shows it without --show-secrets (ciphertext, never the value)."""
    return {SECRET_SIG: "1b47061264138c4ac30d75fd1eb44270", "ciphertext": f"v1:ZmFrZQ==:{tag}"}


def _ints(value: Any) -> Any:
    # The engine hands numbers to mocks as floats; state files written by the CLI hold precedences as ints.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _ints(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_ints(v) for v in value]
    return value


def export_document(result: Plan, stack: str = "dev", project: str = "linked-apps") -> dict[str, Any]:
    prefix = f"urn:pulumi:{stack}::{project}::"
    stack_urn = f"{prefix}pulumi:pulumi:Stack::{project}-{stack}"
    outputs = {k: (secret(k) if v == SECRET_PLACEHOLDER else copy.deepcopy(v)) for k, v in result.outputs.items()}
    resources: list[dict[str, Any]] = [
        {"urn": stack_urn, "custom": False, "type": "pulumi:pulumi:Stack", "outputs": outputs},
    ]
    for res in result.resources:
        state = _ints(copy.deepcopy(res["inputs"]))
        inputs = {k: v for k, v in state.items() if k not in _COMPUTED}
        if isinstance(state.get("saasApp"), dict):
            inputs["saasApp"] = {k: v for k, v in state["saasApp"].items() if k not in _COMPUTED_SAAS}
            if state["saasApp"].get("clientSecret") == SECRET_PLACEHOLDER:
                state["saasApp"]["clientSecret"] = secret(res["name"])
        resources.append({
            "urn": f"{prefix}{res['type']}::{res['name']}",
            "custom": True,
            "id": res["id"],
            "type": res["type"],
            "inputs": inputs,
            "outputs": {**state, "id": res["id"]},
            "parent": stack_urn,
            "provider": f"{prefix}pulumi:providers:cloudflare::default_6_5_0::0c1e8a7e-1111-4c1e-8a7e-000000000000",
            "dependencies": [],
        })
    return {
        "version": 3,
        "deployment": {
            "manifest": {"time": "2026-01-01T00:00:00Z", "magic": "", "version": "v3.200.0"},
            "secrets_providers": {"type": "passphrase", "state": {"salt": "v1:c2FsdA==:ZmFrZQ=="}},
            "resources": resources,
        },
    }


def output_document(result: Plan) -> dict[str, Any]:
    """`pulumi stack output --json`: secrets print as "[secret]", as the CLI does without --show-secrets."""
    return copy.deepcopy(result.outputs)


_PLANS: dict[str, Plan] = {}


def planned(config: dict[str, Any], key: str) -> Plan:
    """One program run per distinct config per test process (each run costs about a second)."""
    if key not in _PLANS:
        _PLANS[key] = plan(config, program=PROGRAM, source=key)
    return _PLANS[key]


def dev_config() -> dict[str, Any]:
    return copy.deepcopy(read_config_file(ROOT / "stacks" / "Pulumi.dev.yaml"))


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    path = Path(argv[1])
    print(json.dumps(export_document(plan(read_config_file(path), program=PROGRAM, source=str(path))), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
