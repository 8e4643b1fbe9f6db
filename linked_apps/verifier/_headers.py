"""A request's linked-app token from its headers, read the same way by `Verifier.decide_headers` and the ASGI
middleware: names in any case, `str` or `bytes`, and a repeated token header refused rather than resolved."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

NO_TOKEN_REASON = ("no linked-app token: send Cf-Access-Token (from a self-hosted app) or Authorization: Bearer "
                   "(from a SaaS app)")


_TOKEN_HEADERS = ("cf-access-token", "authorization")


def _header_text(value: object) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("latin-1")
    return None


def token_from_header_items(items: Iterable[tuple[object, object]]) -> tuple[dict[str, str] | None, str]:
    """The token of a request from its headers as `(name, value)` pairs, names in any case, names and values
    `str` or `bytes`, a value possibly a list of values. A token header that is repeated (under any case) or
    not text is refused, never resolved by picking one. Returns `(token, "")` or `(None, deny reason)`."""
    found: dict[str, list[str]] = {}
    for name, value in items:
        key = _header_text(name)
        if key is None or key.strip().lower() not in _TOKEN_HEADERS:
            continue
        key = key.strip().lower()
        for one in value if isinstance(value, (list, tuple)) else (value,):
            if one is None:
                continue
            text = _header_text(one)
            if text is None:
                return None, f"the {key} header is {type(one).__name__}, not text"
            found.setdefault(key, []).append(text)
    for key, values in found.items():
        if len(values) > 1:
            return None, f"the request carries {len(values)} {key} headers; send one"
    token = token_from_headers({k: v[0] for k, v in found.items()})
    return (token, "") if token else (None, NO_TOKEN_REASON)


def token_from_headers(headers: Mapping[str, str]) -> dict[str, str] | None:
    """`{"cf_access_token": ...}` or `{"bearer": ...}` from lower-case request headers; None when neither."""
    token = headers.get("cf-access-token")
    if token is not None:
        return {"cf_access_token": token.strip()}
    scheme, _, credentials = (headers.get("authorization") or "").strip().partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return {"bearer": credentials.strip()}
    return None
