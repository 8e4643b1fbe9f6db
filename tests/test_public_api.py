"""The public surfaces: `linked_apps` (small, explicit, lazy: importing it loads nothing heavy) and the
repository's `components` (the Pulumi edge)."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import components
import linked_apps
from tests._project import PROJECT_ROOT


def _loaded_after(code: str) -> list[str]:
    probe = (f"import sys\n{code}\n"
             "heavy = ('pulumi', 'pulumi_cloudflare', 'pydantic', 'httpx', 'cryptography', 'yaml')\n"
             "print(sorted({m.split('.')[0] for m in sys.modules} & set(heavy)))\n")
    out = subprocess.run([sys.executable, "-c", probe], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return eval(out.stdout.strip().splitlines()[-1])  # noqa: S307 - our own probe's printed list


@pytest.mark.parametrize("package", [linked_apps, components], ids=lambda p: p.__name__)
def test_every_public_name_is_the_object_of_its_home_module(package) -> None:
    for name in package.__all__:
        value = getattr(package, name)
        home = importlib.import_module(value.__module__)
        assert getattr(home, name) is value, name
    assert set(package.__all__) <= set(dir(package))


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        linked_apps.Nope  # noqa: B018


def test_importing_the_package_loads_nothing_heavy() -> None:
    assert _loaded_after("import linked_apps") == []


def test_the_components_are_the_pulumi_edge() -> None:
    assert "pulumi_cloudflare" in _loaded_after("import components")


def test_the_verifier_side_of_the_api_never_loads_pulumi() -> None:
    loaded = _loaded_after("from linked_apps import Verifier, read_state, TrustGraph, StateError")
    assert "pulumi" not in loaded and "pulumi_cloudflare" not in loaded and "pydantic" not in loaded
