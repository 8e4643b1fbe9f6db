"""The wheel as a user gets it: one top-level package, and the plain install (no extras) verifies tokens and
serves the middleware with no Pulumi (and no Cloudflare SDK) anywhere in the environment.

Builds and installs into a fresh virtualenv from the package registry (dependencies only; the wheel is ours),
so it takes a while; it is one test, run once per suite.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests._project import PROJECT_ROOT
from tests._verifier_support import app_claims, dev_app, dev_export, dev_jwks_server, signing_key


def _run(*args: Any, **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=600, **kw)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Built from a copy: setuptools writes build/ and *.egg-info next to the sources, and two test workers
    # building in one tree at once would trip over each other.
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(PROJECT_ROOT / name, source / name)
    shutil.copytree(PROJECT_ROOT / "linked_apps", source / "linked_apps",
                    ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path_factory.mktemp("wheel")
    built = _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "--disable-pip-version-check",
                 "-w", out, source)
    assert built.returncode == 0, built.stderr
    [path] = out.glob("linked_apps-*.whl")
    return path


def test_the_only_top_level_package_is_linked_apps(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert top == {"linked_apps"}
    meta = next(n for n in names if n.endswith(".dist-info/METADATA"))
    assert "License-Expression: Apache-2.0" in zipfile.ZipFile(wheel).read(meta).decode()
    assert any(n.endswith("licenses/LICENSE") for n in names)


def test_the_plain_install_verifies_a_token_without_pulumi(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    assert _run(sys.executable, "-m", "venv", venv).returncode == 0
    python, command = venv / "bin" / "python", venv / "bin" / "linked-apps"
    installed = _run(python, "-m", "pip", "install", "-q", "--disable-pip-version-check", wheel)
    assert installed.returncode == 0, installed.stderr

    probe = ("import importlib.util as u, linked_apps.verifier as v\n"
             "print(v.AccessMiddleware.__name__, [m for m in ('pulumi', 'pulumi_cloudflare', 'grpc', 'cloudflare') if u.find_spec(m)])")
    imported = _run(python, "-c", probe, cwd=tmp_path)
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.split() == ["AccessMiddleware", "[]"]

    state = tmp_path / "state.json"
    state.write_text(json.dumps(dev_export()))
    key = signing_key("wheel")
    token = key.mint(app_claims(dev_app("hr-portal")["aud"]))
    with dev_jwks_server(key) as server:
        verdict = _run(command, "verify", "--state", state, "--to", "payroll-api", "--cf-access-token", token,
                       "--access-url", server.url, "--format", "json", cwd=tmp_path)
    assert verdict.returncode == 0, verdict.stderr + verdict.stdout
    doc = json.loads(verdict.stdout)
    assert (doc["allowed"], doc["from"], doc["to"]) == (True, "hr-portal", "payroll-api")

    planned = _run(command, "plan", "--stack", "dev", cwd=PROJECT_ROOT)
    assert planned.returncode == 2
    assert planned.stderr.strip().splitlines() == [
        "linked-apps: plan: needs pulumi and pulumi_cloudflare; install them with: pip install 'linked-apps[pulumi]'"]
