"""A pinned JWKS: `kid -> RSA key`, fetched with httpx, refreshed on a TTL, never hammered, failing closed.

- One fetch in flight: a TTL refresh happens in one thread while the others keep using the current keys; a
  caller that has no usable key waits for the fetch in flight instead of starting another.
- Every wait is bounded: a fetch ends within `timeout` seconds in all (linked_apps.verifier._http), and a caller
  waiting for someone else's fetch gives up after `timeout` too, and fails closed.
- An unknown `kid` triggers a refetch at most once per cooldown, so random `kid`s cannot make us hammer the
  issuer. A failed fetch is retried no sooner than one cooldown later.
- When fetches fail, the last good set is served up to `max_stale` seconds after it was fetched; then every
  key is refused (fail closed).
Only the `keys` array (JWKs) is read; `public_cert`/`public_certs` are ignored, as CLOUDFLARE.md advises.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey, RSAPublicNumbers

from ..errors import KeysUnavailable, TokenRejected
from ._http import get
from ._jws import b64url_decode

if TYPE_CHECKING:
    import httpx

DEFAULT_TTL = 600.0
DEFAULT_COOLDOWN = 30.0
DEFAULT_MAX_STALE = 24 * 3600.0
DEFAULT_TIMEOUT = 3.0
MAX_BODY = 256 * 1024
MIN_RSA_BITS = 2048
_NEVER = -math.inf

Listener = Callable[["KeySet", frozenset[str]], None]


def number_problem(name: str, value: Any, low: float, high: float, *, integer: bool = False) -> str | None:
    """Why an option is not a number in [low, high] (None: it is). NaN and infinity never are."""
    if isinstance(value, bool) or not isinstance(value, int if integer else (int, float)):
        return f"{name} must be {'an integer' if integer else 'a number'}, not {type(value).__name__}"
    if not low <= value <= high:  # False for NaN as well
        return f"{name} must be between {low:g} and {high:g}, not {value!r}"
    return None


OPTION_LIMITS = {"ttl": (1.0, 7 * 86400.0), "cooldown": (0.0, 86400.0), "max_stale": (0.0, 30 * 86400.0),
                 "timeout": (0.01, 60.0)}
"""Seconds each KeySet timing option may take."""


def check_options(names: Mapping[str, str] | None = None, **options: Any) -> list[str]:
    """Problems with KeySet timing options (seconds); `names` renames them for messages (the caller's names)."""
    return [p for key, value in options.items()
            if (p := number_problem((names or {}).get(key, key), value, *OPTION_LIMITS[key]))]


def _b64_int(value: Any) -> int:
    """A JWK's unsigned integer (RFC 7518 section 6.3.1): canonical unpadded base64url only, as in tokens."""
    if not isinstance(value, str):
        raise ValueError("not a base64url string")
    return int.from_bytes(b64url_decode(value))  # big-endian


def parse_jwks(doc: Any) -> dict[str, RSAPublicKey]:
    """The usable RS256 signing keys of a JWKS document, by `kid`. ValueError says why none are usable."""
    if not isinstance(doc, Mapping) or not isinstance(doc.get("keys"), list):
        raise ValueError("the response is not a JWKS (a JSON object with a `keys` array)")
    keys: dict[str, RSAPublicKey] = {}
    for jwk in doc["keys"]:
        if not isinstance(jwk, Mapping) or jwk.get("kty") != "RSA":
            continue
        kid = jwk.get("kid")
        if not isinstance(kid, str) or not kid or kid in keys:
            continue  # a kid must name one key; a duplicate keeps the first
        if jwk.get("alg", "RS256") != "RS256" or jwk.get("use", "sig") != "sig":
            continue
        try:
            key = RSAPublicNumbers(_b64_int(jwk.get("e")), _b64_int(jwk.get("n"))).public_key()
        except (ValueError, TokenRejected):  # not base64url, or numbers no RSA key has
            continue
        if key.key_size >= MIN_RSA_BITS:
            keys[kid] = key
    if not keys:
        raise ValueError("the JWKS holds no usable RSA signing key (kty RSA, alg RS256, >= 2048 bits)")
    return keys


class KeySet:
    """The signing keys published at one pinned URL."""

    def __init__(
        self,
        url: str,
        *,
        client: httpx.Client | None = None,
        ttl: float = DEFAULT_TTL,
        cooldown: float = DEFAULT_COOLDOWN,
        max_stale: float = DEFAULT_MAX_STALE,
        timeout: float = DEFAULT_TIMEOUT,
        clock: Callable[[], float] = time.time,
    ) -> None:
        problems = check_options(ttl=ttl, cooldown=cooldown, max_stale=max_stale, timeout=timeout)
        if problems:
            raise ValueError("; ".join(problems))
        self.url = url
        self.ttl, self.cooldown, self.max_stale, self.timeout = ttl, cooldown, max_stale, timeout
        self._clock = clock
        self._client = client
        self._keys: dict[str, RSAPublicKey] = {}
        self._fetched_at: float | None = None
        """When the current keys were fetched (None: never)."""
        self._attempted_at = _NEVER
        self._completed = 0
        """Fetches finished (either way); a caller that waited for the lock compares it to skip a second fetch."""
        self._error: str | None = None
        """Why the last fetch failed (None: it succeeded)."""
        self._lock = threading.Lock()
        self._listeners: list[Listener] = []
        self.fetches = 0
        """Fetches started (for tests and operators)."""

    # -- reading ------------------------------------------------------------------------------------------
    @property
    def kids(self) -> frozenset[str]:
        return frozenset(self._keys)

    @property
    def good_until(self) -> float:
        """Until when the current keys need no second look: the TTL, or the next retry after a failure."""
        if self._fetched_at is None:
            return _NEVER
        if self._error is None:
            return self._fetched_at + self.ttl
        return min(self._attempted_at + self.cooldown, self._fetched_at + self.max_stale)

    def _servable(self, now: float) -> bool:
        """Keys were fetched, and not longer than `max_stale` ago."""
        return self._fetched_at is not None and now - self._fetched_at <= self.max_stale

    def on_change(self, listener: Listener) -> None:
        """Call `listener(keyset, removed_kids)` whenever a fetch drops or replaces keys."""
        self._listeners.append(listener)

    def key(self, kid: str) -> RSAPublicKey:
        """The key named `kid`, fetching as the rules above allow; KeysUnavailable says why there is none."""
        now = self._clock()
        seen = self._completed  # read before the due check, so a fetch finishing after it is noticed
        # Due (never fetched, TTL over, or a retry allowed after a failure): refresh, and wait for a fetch in
        # flight only when the keys at hand cannot be served.
        waited_out = now >= self.good_until and not self._refresh(now, seen, wait=not self._servable(now))
        key = self._keys.get(kid)
        if key is None and not waited_out and self._may_retry(self._clock()):
            waited_out = not self._refresh(self._clock(), self._completed, wait=True)
            key = self._keys.get(kid)
        now = self._clock()
        if key is None and waited_out:
            raise KeysUnavailable(f"a fetch of {self.url} in flight did not finish within {self.timeout:g} s; "
                                  "failing closed")
        if self._fetched_at is None:
            raise KeysUnavailable(f"no signing keys: fetching {self.url} failed ({self._error or 'not fetched'})")
        if not self._servable(now):
            raise KeysUnavailable(
                f"the signing keys from {self.url} are {int(now - self._fetched_at)} s old, beyond the "
                f"{int(self.max_stale)} s allowed, and refetching fails ({self._error}); failing closed")
        if key is None:
            shown = kid if len(kid) <= 64 else kid[:64] + "..."
            raise KeysUnavailable(f"no key with kid {shown!r} at {self.url} (the key set has "
                                  f"{len(self._keys)} key(s); it is refetched at most once per {int(self.cooldown)} s)")
        return key

    # -- fetching -----------------------------------------------------------------------------------------
    def _may_retry(self, now: float) -> bool:
        return now - self._attempted_at >= self.cooldown

    def _refresh(self, now: float, seen: int, *, wait: bool) -> bool:
        """Fetch unless another thread is already fetching (then wait for it only if `wait`, and at most one
        fetch's deadline) or a fetch finished since the caller read `seen` of `_completed` and decided to ask.
        False when we waited and the fetch in flight did not finish in time. The caller checked the cooldown
        for an unknown kid; a failed fetch's cooldown is checked here, as the keys can be due for max_stale."""
        if not self._lock.acquire(timeout=self.timeout if wait else 0):
            return not wait
        try:
            if self._completed != seen:
                return True  # a fetch finished since the caller looked: use its result
            if self._error is not None and not self._may_retry(now):
                return True
            self._fetch()
            return True
        finally:
            self._lock.release()

    def refresh(self) -> bool:
        """Fetch now (one in flight), ignoring TTL and cooldown; True when the fetch succeeded."""
        if not self._lock.acquire(timeout=self.timeout):
            return False
        try:
            self._fetch()
        finally:
            self._lock.release()
        return self._error is None

    def _fetch(self) -> None:
        self.fetches += 1
        self._attempted_at = self._clock()
        try:
            keys = parse_jwks(self._get())
        except Exception as exc:  # noqa: BLE001 - any failure keeps the last good set; the reason is kept
            self._error = _describe(exc)
            self._completed += 1
            return
        removed = frozenset(kid for kid, old in self._keys.items()
                            if kid not in keys or keys[kid].public_numbers() != old.public_numbers())
        self._keys = keys
        self._fetched_at = self._clock()
        self._error = None
        self._completed += 1
        if removed:
            for listener in list(self._listeners):
                listener(self, removed)

    def _get(self) -> Any:
        import json

        status, body = get(self.url, timeout=self.timeout, max_body=MAX_BODY, client=self._client,
                           headers={"accept": "application/json"})
        if status != 200:
            raise ValueError(f"HTTP {status}")
        try:
            return json.loads(body)
        except (ValueError, RecursionError):
            raise ValueError("the response is not JSON") from None


def _describe(exc: BaseException) -> str:
    return str(exc)[:200] or type(exc).__name__
