"""linked-apps: Cloudflare Access app-to-app trust (Linked App Token policies) as code.

    from linked_apps import topology_from_config, TrustGraph   # the config contract and the trust graph
    from linked_apps import read_state, Verifier               # deployed state and request verification

The public surface is `__all__`. Every name is imported on first use, so `import linked_apps` costs nothing and
a caller pays only for what it touches. Nothing here imports Pulumi: the Pulumi components live in the
repository's `components/` package and `linked-apps plan` loads the SDK only when it runs.

Layers, read downward only: cli -> review | verifier | state -> model -> errors.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_HOMES = {
    "Topology": "model.topology",
    "topology_from_config": "model.topology",
    "TrustGraph": "model.graph",
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
        raise AttributeError(f"module 'linked_apps' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


if TYPE_CHECKING:
    from .errors import ConfigError, LinkedAppsError, RuleViolationError, StateError, TokenRejected, UnknownAppError
    from .model.graph import TrustGraph
    from .model.topology import Topology, topology_from_config
    from .state import read_state
    from .verifier import AccessMiddleware, Verdict, Verifier
