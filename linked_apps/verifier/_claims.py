"""Registered-claim checks for Access tokens: exact issuer, audience shape, time window, token type."""

from __future__ import annotations

from typing import Any

from ..errors import TokenRejected

DEFAULT_LEEWAY = 30.0
"""Seconds of clock skew allowed on `nbf`/`iat` (and `exp`)."""
APP_TOKEN_TYPE = "app"
"""`type` of an application token; the global session token (`org`) is not accepted by a linked app."""

_MAX_TIME = 253402300799  # 9999-12-31: larger "times" are garbage, not a far future


def _number(claims: dict[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if type(value) not in (int, float) or value != value or not -_MAX_TIME < value < _MAX_TIME:
        raise TokenRejected(f"the `{name}` claim is not a NumericDate")
    return value


def audiences(claims: dict[str, Any]) -> tuple[str, ...]:
    """`aud` as a tuple; a string or an array of strings, nothing else."""
    aud = claims.get("aud")
    if type(aud) is str:
        return (aud,)
    if type(aud) is list and aud and all(type(a) is str for a in aud):
        return tuple(aud)
    raise TokenRejected("the `aud` claim is missing or not a string / array of strings")


def check(
    claims: dict[str, Any],
    *,
    issuer: str,
    now: float,
    leeway: float = DEFAULT_LEEWAY,
    token_type: str | None = None,
) -> float:
    """Raise TokenRejected unless the claims hold; returns `exp`."""
    iss = claims.get("iss")
    if iss != issuer:
        shown = iss[:120] if isinstance(iss, str) else type(iss).__name__
        raise TokenRejected(f"issuer {shown!r} is not {issuer!r} (the issuer must match exactly)")
    exp = _number(claims, "exp")
    if exp is None:
        raise TokenRejected("the token has no `exp` claim")
    if exp <= now - leeway:
        raise TokenRejected(f"the token expired {int(now - exp)} s ago")
    nbf = _number(claims, "nbf")
    if nbf is not None and nbf > now + leeway:
        raise TokenRejected(f"the token is not valid yet (`nbf` is {int(nbf - now)} s in the future)")
    iat = _number(claims, "iat")
    if iat is not None and iat > now + leeway:
        raise TokenRejected(f"the token was issued in the future (`iat` is {int(iat - now)} s ahead)")
    if token_type is not None and claims.get("type") != token_type:
        got = claims.get("type")
        raise TokenRejected(f"the token's `type` is {str(got)[:20]!r}, not {token_type!r} (an application token)")
    return exp
