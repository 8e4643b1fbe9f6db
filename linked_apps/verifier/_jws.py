"""Strict compact JWS (RS256) on `cryptography` alone: parse, then verify with a key the caller pinned.

Nothing in the token chooses how it is checked: the algorithm comes from a fixed allowlist, the key from the
caller's key set by `kid` used as an opaque dictionary key, and headers that point at other keys (`jku`, `jwk`,
`x5u`, `x5c`) or demand extensions (`crit`) reject the token. Only canonical, unpadded base64url is accepted.
"""

from __future__ import annotations

import json
import re
from binascii import Error as _B64Error
from binascii import a2b_base64
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from ..errors import TokenRejected

MAX_TOKEN_LENGTH = 8192
"""Characters; checked before any parsing. Real Access tokens are under 2 KiB."""
ALGORITHMS = frozenset({"RS256"})
MAX_KID_LENGTH = 256
_FOREIGN_KEY_HEADERS = ("jku", "jwk", "x5u", "x5c")

# Three runs of the base64url alphabet; a segment whose length is 1 mod 4 is never valid base64.
_COMPACT = re.compile(r"([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)")
# The last character of a canonical segment leaves its unused low bits zero (RFC 4648 section 3.5).
_CANONICAL_LAST = {2: frozenset("AQgw"), 3: frozenset("AEIMQUYcgkosw048")}
_CANONICAL_LAST_BYTE = {rem: frozenset(ord(c) for c in chars) for rem, chars in _CANONICAL_LAST.items()}
_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_PADDING = (b"", b"", b"==", b"=")
_TO_STANDARD = bytes.maketrans(b"-_", b"+/")
_JSON = json.JSONDecoder()
_PKCS1 = padding.PKCS1v15()
_SHA256 = hashes.SHA256()


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ costs a microsecond per token
class Parsed:
    """A structurally valid token whose signature is not yet checked."""

    kid: str
    claims: dict[str, Any]
    signing_input: bytes
    signature: bytes
    header_segment: str
    """The encoded header, for a caller that remembers the headers of verified tokens."""


def looks_like_jws(token: str) -> bool:
    """Three dot-separated base64url runs: worth parsing as a JWT (anything else is opaque)."""
    return len(token) <= MAX_TOKEN_LENGTH and _COMPACT.fullmatch(token) is not None


def b64url_decode(segment: str, what: str = "value") -> bytes:
    """Canonical unpadded base64url only: padding, the standard alphabet, whitespace, or unused bits that are
    not zero (a second spelling of the same bytes) reject the segment."""
    rem = len(segment) % 4
    if rem == 1 or not segment:
        raise TokenRejected(f"malformed token: the {what} is not valid base64url (length)")
    if rem and segment[-1] not in _CANONICAL_LAST[rem]:
        raise TokenRejected(f"malformed token: the {what} is not canonical base64url")
    try:
        raw = segment.encode("ascii")
    except UnicodeEncodeError:
        raise TokenRejected(f"malformed token: the {what} is not valid base64url") from None
    if b"+" in raw or b"/" in raw or b"=" in raw:
        raise TokenRejected(f"malformed token: the {what} is not base64url (padding or the standard alphabet)")
    try:
        # strict_mode refuses anything outside the alphabet, whitespace included
        return a2b_base64(raw.translate(_TO_STANDARD) + _PADDING[rem], strict_mode=True)
    except (_B64Error, ValueError):
        raise TokenRejected(f"malformed token: the {what} is not valid base64url") from None


def _decode_standard(segment: bytes, what: str) -> bytes:
    """b64url_decode for a segment already checked to hold only base64url characters and translated to the
    standard alphabet: the length and canonical-bits checks remain, the alphabet needs no second look."""
    rem = len(segment) % 4
    if rem == 1:
        raise TokenRejected(f"malformed token: the {what} is not valid base64url (length)")
    if rem and segment[-1] not in _CANONICAL_LAST_BYTE[rem]:
        raise TokenRejected(f"malformed token: the {what} is not canonical base64url")
    return a2b_base64(segment + _PADDING[rem])


def _refuse_shape(token: str) -> None:
    """Raise the precise reason a token that is not three runs of base64url characters is malformed."""
    parts = token.split(".")
    if len(parts) != 3 or not all(parts):
        raise TokenRejected("malformed token: not a compact JWS (three base64url parts joined by dots, "
                            "no padding or whitespace)")
    for segment, what in zip(parts, ("header", "payload", "signature")):
        b64url_decode(segment, what)
    raise TokenRejected("malformed token: not base64url")


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        text = raw.decode("utf-8")  # JOSE JSON is UTF-8; no other encoding is guessed
        # raw_decode skips decode()'s two whitespace scans: leading whitespace is refused (no issuer writes it),
        # trailing JSON whitespace is allowed, anything else after the object is not
        value, end = _JSON.raw_decode(text)
        if end != len(text) and text[end:].strip(" \t\n\r"):
            raise ValueError("extra data")
    except (ValueError, RecursionError):
        raise TokenRejected(f"malformed token: the {what} is not JSON") from None
    if type(value) is not dict:
        raise TokenRejected(f"malformed token: the {what} is not a JSON object")
    return value


def _check_header(header: dict[str, Any]) -> str:
    """The header's kid, after the allowlist and the refusals; raises TokenRejected."""
    alg = header.get("alg")
    if alg not in ALGORITHMS:
        raise TokenRejected(f"algorithm {str(alg)[:20]!r} is not allowed; only {', '.join(sorted(ALGORITHMS))} is")
    for name in _FOREIGN_KEY_HEADERS:
        if name in header:
            raise TokenRejected(f"the header carries `{name}`; keys come only from the pinned key set")
    if "crit" in header:
        raise TokenRejected("the header lists `crit` extensions, and this verifier understands none")
    kid = header.get("kid")
    if type(kid) is not str or not kid or len(kid) > MAX_KID_LENGTH:
        raise TokenRejected("the header has no usable `kid` (a non-empty string naming a key of the key set)")
    typ = header.get("typ")
    if typ is not None and (type(typ) is not str or typ.upper() != "JWT"):
        raise TokenRejected(f"the header's `typ` is {str(typ)[:20]!r}, not JWT")
    return kid


def parse(token: str, known_headers: Mapping[str, str] | None = None) -> Parsed:
    """Split and decode a compact JWS, checking the header against the allowlist. Raises TokenRejected.

    `known_headers` maps encoded headers of tokens that were verified before to their kid: an issuer signs with
    a handful of headers, so decoding and checking each again is wasted work.
    """
    if type(token) is not str:
        raise TokenRejected("malformed token: not a string")
    if len(token) > MAX_TOKEN_LENGTH:
        raise TokenRejected(f"malformed token: longer than {MAX_TOKEN_LENGTH} characters")
    # One C-speed pass checks the alphabet and the two dots; a token that fails it is explained slowly.
    raw = token.encode("ascii", "replace")
    if raw.translate(None, _ALPHABET) != b"..":
        _refuse_shape(token)
    first = raw.index(b".")
    second = raw.index(b".", first + 1)
    if first == 0 or second == first + 1 or second == len(raw) - 1:
        _refuse_shape(token)
    standard = raw.translate(_TO_STANDARD)  # the whole token at once; segments are sliced from it
    h64 = token[:first]
    kid = known_headers.get(h64) if known_headers is not None else None
    if kid is None:
        kid = _check_header(_json_object(_decode_standard(standard[:first], "header"), "header"))
    claims = _json_object(_decode_standard(standard[first + 1:second], "payload"), "payload")
    signature = _decode_standard(standard[second + 1:], "signature")
    return Parsed(kid, claims, raw[:second], signature, h64)


def verify_signature(parsed: Parsed, key: RSAPublicKey) -> None:
    """RS256 over the signing input with the pinned key; the token's own `alg` was checked in parse()."""
    if len(parsed.signature) != (key.key_size + 7) // 8:
        raise TokenRejected("bad signature: wrong length for the signing key")
    try:
        key.verify(parsed.signature, parsed.signing_input, _PKCS1, _SHA256)
    except InvalidSignature:
        raise TokenRejected("bad signature: the token was not signed by a key of the pinned key set") from None
