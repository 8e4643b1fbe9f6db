"""The Pulumi edge of linked-apps: Access applications and linked-app trust as ComponentResources, and the
stack program that builds them from config (`program.py`).

    from components import SelfHostedApp, SaasApp, LinkedAppTrust

Importing this package loads pulumi_cloudflare: it is for Pulumi programs. The model the components are built
on (topology, rules, trust graph) is the `linked_apps` package, which never imports Pulumi.
"""

from .apps import SaasApp, SaasAppArgs, SelfHostedApp, SelfHostedAppArgs
from .trust import LinkedAppTrust, LinkedAppTrustArgs

__all__ = ["LinkedAppTrust", "LinkedAppTrustArgs", "SaasApp", "SaasAppArgs", "SelfHostedApp", "SelfHostedAppArgs"]
