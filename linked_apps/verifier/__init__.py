"""Verify Cloudflare Access linked-app tokens against the trust that is deployed.

    from linked_apps.state import read_state
    from linked_apps.verifier import Verifier

    verifier = Verifier(read_state("state.json"))
    verdict = verifier.decide("payroll-api", cf_access_token=token)
    verdict.allowed, verdict.source, verdict.identity, verdict.reason
    verdict = verifier.decide_origin("payroll-api", assertion=cf_access_jwt_assertion)  # App B's origin
    verdict.via  # "user", "service-token" or "linked-app"

The public surface is what `__all__` lists; the modules starting with `_` are private.
"""

from ._asgi import AccessMiddleware
from ._keys import KeySet
from ._verdict import OriginVerdict, Verdict
from ._verifier import Verifier
from ._wsgi import WSGIAccessMiddleware

__all__ = ["AccessMiddleware", "KeySet", "OriginVerdict", "Verdict", "Verifier", "WSGIAccessMiddleware"]
