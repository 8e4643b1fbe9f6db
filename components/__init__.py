"""The Pulumi edge of linked-apps: Access applications and linked-app trust as ComponentResources, and the
stack program that builds them from config. Importing a component loads pulumi_cloudflare (about 1.4 s), so
names are imported on first use.

    from components import SelfHostedApp, SaasApp, LinkedAppTrust

The model they are built on (topology, rules, trust graph) is the `linked_apps` package.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_HOMES = {
    "SelfHostedApp": "apps",
    "SelfHostedAppArgs": "apps",
    "SaasApp": "apps",
    "SaasAppArgs": "apps",
    "LinkedAppTrust": "trust",
    "LinkedAppTrustArgs": "trust",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'components' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


if TYPE_CHECKING:
    from .apps import SaasApp, SaasAppArgs, SelfHostedApp, SelfHostedAppArgs
    from .trust import LinkedAppTrust, LinkedAppTrustArgs
