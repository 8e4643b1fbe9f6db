"""`pulumi install` makes a working virtualenv: Pulumi's pip toolchain installs the root requirements.txt.

The toolchain runs `python -m pip install -r requirements.txt` in the project root and skips the install when the
file is absent (pulumi/pulumi sdk/python/toolchain/pip.go), so the file must pull in everything the program and the
policy pack import.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def test_pulumi_yaml_uses_the_pip_toolchain_and_the_dev_virtualenv():
    runtime = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["runtime"]
    assert runtime["name"] == "python"
    assert runtime["options"] == {"toolchain": "pip", "virtualenv": ".venv"}
    pack = yaml.safe_load((ROOT / "policy" / "PulumiPolicy.yaml").read_text())["runtime"]
    assert pack["options"]["virtualenv"] == "../.venv"  # the pack runs in the same venv


def test_root_requirements_install_this_project_with_what_the_program_and_pack_import():
    lines = [l.strip() for l in (ROOT / "requirements.txt").read_text().splitlines()
             if l.strip() and not l.lstrip().startswith("#")]
    [line] = lines
    match = re.fullmatch(r"-e \.\[([a-z,]+)\]", line)
    assert match, line
    extras = set(match.group(1).split(","))
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert extras <= set(declared)
    names = {re.split(r"[<>=!~ ;\[]", req, maxsplit=1)[0].lower() for extra in extras for req in declared[extra]}
    assert {"pulumi", "pulumi-cloudflare", "pulumi-policy"} <= names
