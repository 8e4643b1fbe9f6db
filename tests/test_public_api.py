"""The package's public surface: small, explicit, and lazy (importing it loads nothing heavy)."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import components
from components.plan import PROJECT_ROOT


def _loaded_after(code: str) -> list[str]:
    probe = (f"import sys\n{code}\n"
             "heavy = ('pulumi', 'pulumi_cloudflare', 'pydantic', 'httpx', 'cryptography', 'yaml')\n"
             "print(sorted({m.split('.')[0] for m in sys.modules} & set(heavy)))\n")
    out = subprocess.run([sys.executable, "-c", probe], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return eval(out.stdout.strip().splitlines()[-1])  # noqa: S307 - our own probe's printed list


def test_every_public_name_is_the_object_of_its_home_module() -> None:
    for name in components.__all__:
        value = getattr(components, name)
        home = importlib.import_module(value.__module__)
        assert getattr(home, name) is value, name
    assert set(components.__all__) <= set(dir(components))


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        components.Nope  # noqa: B018


def test_importing_the_package_loads_nothing_heavy() -> None:
    assert _loaded_after("import components") == []


def test_the_verifier_side_of_the_api_never_loads_pulumi() -> None:
    loaded = _loaded_after("from components import Verifier, read_state, TrustGraph, StateError")
    assert "pulumi" not in loaded and "pulumi_cloudflare" not in loaded and "pydantic" not in loaded
