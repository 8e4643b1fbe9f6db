"""linked-apps as a Pulumi component provider: the same components, rules and preview-time errors in any language.

The Pulumi CLI runs this file when a program adds the package (`pulumi package add .../provider`) and whenever
that program declares one of the components. The provider infers its schema (`linked-apps:index:<Component>`)
from the components' Args TypedDicts and annotated outputs; there is no second implementation to keep in step.
"""

import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pulumi
from pulumi.provider.experimental import component as _component
from pulumi.provider.experimental import component_provider_host
from pulumi.provider.experimental import host as _host

# The components live in the repository, not in the installed `linked_apps` wheel: the host runs this folder,
# so the repository root is its parent.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from components.apps import SaasApp, SelfHostedApp  # noqa: E402
from components.trust import LinkedAppTrust  # noqa: E402

PACKAGE = "linked-apps"
"""The package name: it prefixes every type token, and must be the one the components register with."""

COMPONENTS = [SelfHostedApp, SaasApp, LinkedAppTrust]
"""Every component served to other languages."""


class _ProviderWithCleanErrors(_component.ComponentProvider):
    """The SDK's component provider, except that a component's own RunError reaches the engine as a bad-input
    error: one line naming the component and the fix, as in a Python program, instead of a Python traceback."""

    def construct(self, name: str, resource_type: str, inputs: Any, options: Any = None) -> Any:
        try:
            return super().construct(name, resource_type, inputs, options)
        except _component.ComponentInitError as exc:
            if isinstance(exc.inner, pulumi.RunError):
                # errors=[] rather than None: the SDK builds the gRPC status's trailers only for a list.
                raise pulumi.InputPropertiesError(str(exc.inner), errors=[]) from None
            raise


if __name__ == "__main__":
    # component_provider_host builds its provider from this name; the subclass changes only error reporting.
    _host.ComponentProvider = _ProviderWithCleanErrors
    component_provider_host(COMPONENTS, name=PACKAGE, version=version("linked-apps"))
