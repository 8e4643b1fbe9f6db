"""The verifier's answer: allowed or not, from which app, to which app, as whom, and why."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

IDENTITY_CLAIMS = ("email", "sub", "common_name", "name", "country")
"""Claims copied into `Verdict.identity` when present and non-empty (a service token has `common_name`)."""

_EMPTY: Mapping[str, str] = MappingProxyType({})


def identity_of(claims: Mapping[str, Any]) -> Mapping[str, str]:
    return MappingProxyType({k: v for k in IDENTITY_CLAIMS if isinstance(v := claims.get(k), str) and v})


@dataclass(frozen=True, slots=True)
class Verdict:
    """One decision. A deny always carries a reason; identity is filled only from a verified token."""

    allowed: bool
    reason: str
    target: str | None = None
    """The receiving app's Cloudflare name (None when the name given matches no app)."""
    source: str | None = None
    """The Cloudflare name of the app the token was issued for."""
    identity: Mapping[str, str] = field(default_factory=lambda: _EMPTY, hash=False)
    policy: str | None = None
    """The name of the policy that granted (or, on a deny, the one that refused) the source."""
    flow: str | None = None
    """`cf-access-token` or `bearer`."""
    expires: float | None = None
    """The token's `exp` (seconds since the epoch) once verified."""

    def __bool__(self) -> bool:
        return self.allowed

    def as_dict(self) -> dict[str, Any]:
        """The CLI's `--json` shape: allowed, from, to, reason, identity (plus policy)."""
        return {"allowed": self.allowed, "from": self.source, "to": self.target, "reason": self.reason,
                "identity": dict(self.identity), "policy": self.policy}


VIA = ("user", "service-token", "linked-app")
"""How a request reached App B's origin, as `OriginVerdict.via` says it."""


@dataclass(frozen=True, slots=True)
class OriginVerdict(Verdict):
    """App B's origin decision: the Access assertion for B, and how the request came (see `via`).

    `source` is the sending app's Cloudflare name only for `via == "linked-app"`; `policy` is the policy of B
    that admits that app; `flow` is the forwarded token's flow (`cf-access-token` / `bearer`) or None.
    """

    via: str | None = None
    """`user`, `service-token` or `linked-app`; on a deny, what the request claimed to be (None: unknown)."""

    def as_dict(self) -> dict[str, Any]:
        """The CLI's `verify --assertion` shape: allowed, from, to, reason, identity, policy, via."""
        return {**Verdict.as_dict(self), "via": self.via}
