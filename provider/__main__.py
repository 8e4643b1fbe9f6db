"""linked-apps as a Pulumi component provider: the same components, rules and preview-time errors in any language.

The Pulumi CLI runs this file when a program adds the package (`pulumi package add .../provider`) and whenever
that program declares one of the components. The provider infers its schema (`linked-apps:index:<Component>`)
from the components' Args TypedDicts and annotated outputs; there is no second implementation to keep in step.
"""

from importlib.metadata import version

from pulumi.provider.experimental import component_provider_host

from components.apps import SaasApp, SelfHostedApp
from components.trust import LinkedAppTrust

PACKAGE = "linked-apps"
"""The package name: it prefixes every type token, and must be the one the components register with."""

COMPONENTS = [SelfHostedApp, SaasApp, LinkedAppTrust]
"""Every component served to other languages."""

if __name__ == "__main__":
    component_provider_host(COMPONENTS, name=PACKAGE, version=version("linked-apps"))
