"""Shared fixtures: stack configs as the engine would see them, the dev stack's outputs, and config helpers."""

from __future__ import annotations

import copy
from typing import Any

import hypothesis  # noqa: F401  - imported before any program run; a late import trips a CPython 3.11 AST bug
import pytest

from linked_apps.errors import ConfigError
from linked_apps.model.topology import topology_from_config
from linked_apps.review.plan import read_config_file, stack_file
from tests._project import PROJECT_ROOT

ACCOUNT = "0123456789abcdef0123456789abcdef"
TEAM = "acme.cloudflareaccess.com"
EXISTING_UID = "7c9e6679-7425-40de-944b-e07fc1f90ae7"


def config(apps: dict[str, Any], links: list[dict[str, Any]] | None = None, **extra: Any) -> dict[str, Any]:
    """A `linked-apps:*` config map for a test topology."""
    values: dict[str, Any] = {
        "linked-apps:accountId": ACCOUNT,
        "linked-apps:teamDomain": TEAM,
        "linked-apps:apps": apps,
        "linked-apps:links": links or [],
    }
    values.update({f"linked-apps:{k}": v for k, v in extra.items()})
    return values


def self_hosted(domain: str, **kw: Any) -> dict[str, Any]:
    return {"type": "self_hosted", "domain": domain, **kw}


def saas(*uris: str, **kw: Any) -> dict[str, Any]:
    return {"type": "saas", "redirectUris": list(uris) or ["https://mcp.acme.com/callback"], **kw}


def link(a: str, b: str, **kw: Any) -> dict[str, Any]:
    return {"from": a, "to": b, **kw}


def problems(values: dict[str, Any]) -> list[str]:
    """The problems ConfigError lists for a config that must not parse."""
    with pytest.raises(ConfigError) as info:
        topology_from_config(values)
    return info.value.problems


@pytest.fixture(scope="session")
def _dev_config() -> dict[str, Any]:
    return read_config_file(stack_file("dev", PROJECT_ROOT))


@pytest.fixture
def dev_config(_dev_config: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(_dev_config)


@pytest.fixture
def dev_outputs() -> dict[str, Any]:
    """`pulumi stack output --json` of the dev stack from the real program (one run per test process, shared
    with the review and verifier fixtures); a copy, so a test may edit it."""
    from tests._review_export import dev_config as fresh_dev_config
    from tests._review_export import planned

    result = planned(fresh_dev_config(), "dev")
    assert result.violations == []
    return copy.deepcopy(result.outputs)
