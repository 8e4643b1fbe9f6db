"""linked-apps: Cloudflare Access app-to-app trust (Linked App Token policies) as code, on Pulumi.

    from components import SelfHostedApp, LinkedAppTrust     # Pulumi components (import pulumi_cloudflare)
    from components import topology_from_config, TrustGraph  # the config contract and the trust graph
    from components import read_state, Verifier              # deployed state and token verification

The public surface is `__all__`. Every name is imported on first use, so `import components` costs nothing
and a caller pays only for what it touches: the verifier never loads Pulumi, the components load
pulumi_cloudflare (1.4 s) only when asked for.
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
    "Topology": "topology",
    "topology_from_config": "topology",
    "TrustGraph": "graph",
    "read_state": "state",
    "Verifier": "verifier",
    "Verdict": "verifier",
    "AccessMiddleware": "verifier",
    "LinkedAppsError": "errors",
    "ConfigError": "errors",
    "StateError": "errors",
    "UnknownAppError": "errors",
    "RuleViolationError": "errors",
    "TokenRejected": "errors",
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
    from .errors import ConfigError, LinkedAppsError, RuleViolationError, StateError, TokenRejected, UnknownAppError
    from .graph import TrustGraph
    from .state import read_state
    from .topology import Topology, topology_from_config
    from .trust import LinkedAppTrust, LinkedAppTrustArgs
    from .verifier import AccessMiddleware, Verdict, Verifier
