"""What a real `pulumi preview` sees: one RunError listing every broken rule, before anything registers."""

from __future__ import annotations

import json
import runpy
import shutil
import subprocess
from pathlib import Path

import pulumi
import pytest
from pulumi.runtime import mocks

from ._mock_engine import run_program
from .conftest import config, link, saas, self_hosted

ROOT = Path(__file__).resolve().parent.parent


class Recorder(mocks.Mocks):
    def __init__(self) -> None:
        self.names: list[str] = []

    def new_resource(self, args):
        self.names.append(args.name)
        return f"{args.name}-id", dict(args.inputs)

    def call(self, args):
        return {}, []


def engine_run(program, values: dict) -> tuple[BaseException | None, list[str]]:
    """Run a program as the engine would (preview), with config as the engine passes it: JSON strings."""
    rec = Recorder()
    engine_values = {k: v if isinstance(v, str) else json.dumps(v) for k, v in values.items()}

    def body() -> None:
        program()  # what runpy returns is the module's globals: nothing to resolve

    try:
        run_program(body, rec, config=engine_values, preview=True)
    except BaseException as exc:  # noqa: BLE001 - the test inspects it
        return exc, rec.names
    return None, rec.names


def main_py():
    return runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")


def test_broken_rules_end_the_preview_with_one_run_error_and_register_nothing():
    values = config({"a": self_hosted("a.acme.com"), "mcp": saas()}, [link("a", "mcp"), link("a", "a")])
    exc, registered = engine_run(main_py, values)
    assert isinstance(exc, pulumi.RunError)  # the engine prints a RunError's message alone, no traceback
    message = str(exc)
    assert "2 rule violation(s)" in message
    assert "[target-not-self-hosted]" in message and "[self-link]" in message
    assert [n for n in registered if n != "linked-apps-dev"] == []


def test_config_errors_end_the_preview_naming_the_key_path():
    exc, _ = engine_run(main_py, config({"a": {"type": "self_hosted", "domian": "a.acme.com"}}))
    assert isinstance(exc, pulumi.RunError)
    assert "linked-apps:apps.a.domian: unknown key; did you mean `domain`?" in str(exc)


def test_component_arguments_are_checked_before_the_component_registers():
    from components.apps import SaasApp, SelfHostedApp
    from components.trust import LinkedAppTrust

    cases = [
        (lambda: SelfHostedApp("pay", {"account_id": "acc"}), "give `domain`"),
        (lambda: SelfHostedApp("pay", {"domain": "pay.acme.com"}), "give `account_id`"),
        (lambda: SaasApp("mcp", {"redirect_uris": ["https://mcp.acme.com/cb"]}), "give `account_id`"),
        (lambda: LinkedAppTrust("t", {"account_id": "acc", "source_uid": "7c9e6679-7425-40de-944b-e07fc1f90ae7"}),
         "give `source_name`"),
        (lambda: SaasApp("mcp", {"account_id": "acc", "redirect_uris": []}), "redirect_uris"),
        (lambda: LinkedAppTrust("t", {"account_id": "acc", "source_name": "x"}), "give exactly one of"),
        (lambda: LinkedAppTrust("t", {"account_id": "acc", "source_name": "x", "source_uid": "f" * 64}),
         "AUD tag"),
        (lambda: LinkedAppTrust("t", {"account_id": "acc", "source_name": "box", "source_uid":
                                      "7c9e6679-7425-40de-944b-e07fc1f90ae7", "source_type": "ssh"}),
         "carries no user token"),
    ]
    for build, expected in cases:
        exc, registered = engine_run(build, {})
        assert isinstance(exc, pulumi.RunError) and expected in str(exc), (expected, exc)
        assert [n for n in registered if n != "linked-apps-dev"] == []


def test_lookup_that_finds_another_type_fails_with_the_fix():
    class WrongType(Recorder):
        def call(self, args):
            return {"results": [{"id": "7c9e6679-7425-40de-944b-e07fc1f90ae7", "name": "Box", "type": "ssh"}]}, []

    def program():
        from components.trust import LinkedAppTrust

        LinkedAppTrust("t", {"account_id": "acc", "source_name": "Box", "lookup": True, "source_type": "self_hosted"})

    with pytest.raises(Exception) as info:
        run_program(program, WrongType())
    exc = info.value
    assert "lookup 'Box': the app is ssh, but the config declares self_hosted" in str(exc)


@pytest.mark.cli
@pytest.mark.skipif(shutil.which("pulumi") is None, reason="needs the Pulumi CLI on PATH (not installable here)")
def test_real_preview_fails_on_a_broken_rule(tmp_path):
    import yaml

    stacks = tmp_path / "stacks"
    stacks.mkdir()
    for name in ("Pulumi.yaml", "__main__.py"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "components", tmp_path / "components")
    values = config({"a": self_hosted("a.acme.com"), "mcp": saas()}, [link("a", "mcp")])
    (stacks / "Pulumi.ci.yaml").write_text(yaml.safe_dump({"config": values}))
    env = {"PULUMI_BACKEND_URL": f"file://{tmp_path}", "PULUMI_CONFIG_PASSPHRASE": "ci",
           "PATH": f"{ROOT / '.venv' / 'bin'}:" + __import__("os").environ["PATH"]}
    subprocess.run(["pulumi", "stack", "init", "ci"], cwd=tmp_path, env=env, check=True, capture_output=True)
    out = subprocess.run(["pulumi", "preview", "--non-interactive"], cwd=tmp_path, env=env,
                         capture_output=True, text=True)
    assert out.returncode != 0
    assert "target-not-self-hosted" in out.stdout + out.stderr
    assert "Traceback" not in out.stdout + out.stderr
