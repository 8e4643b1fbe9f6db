"""App B's origin decision: is this request, as the origin received it, genuine, who is it, and which app sent it.

Documented by Cloudflare (CLOUDFLARE.md, "What App B's origin receives"): every request Access admits reaches
the origin with an assertion for the origin's own app, in the `Cf-Access-Jwt-Assertion` header (or the
`CF_Authorization` cookie): RS256 with the team's certs, `iss` the team domain, `aud` holding the app's AUD tag.
A linked-app request gets a new assertion for B "attributed to the original user". A service token's assertion
has `common_name` (the client id) and an empty `sub`.

Design choices (not documented by Cloudflare): the assertion must have `type: app`; a `linked-app` verdict needs
the original token on the request too (whether Access passes it on is not documented) and that token must reach
B through deployed trust and name the same principal as the assertion (`sub`; `common_name` for service tokens;
`email` only when a token has no `sub`). A forwarded token that fails any of these is a deny, not a fallback to
`user`: the request claims a provenance it cannot prove.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, TokenRejected, UnknownAppError
from . import _claims, _jws
from ._cache import Entry, TokenCache
from ._verdict import OriginVerdict, Verdict, identity_of

if TYPE_CHECKING:
    from ..model.graph import App

Verifier = Any
"""The Verifier this check belongs to (not imported: the Verifier imports this module)."""
ForwardedToken = Callable[[Mapping[str, str]], "dict[str, str] | None"]

ASSERTION_HEADER = "cf-access-jwt-assertion"
ASSERTION_COOKIE = "CF_Authorization"
USER, SERVICE_TOKEN, LINKED_APP = "user", "service-token", "linked-app"

NO_ASSERTION_REASON = ("no Access assertion: the request carries neither Cf-Access-Jwt-Assertion nor a "
                       "CF_Authorization cookie, so it did not come through Cloudflare Access")
_FLOW_HEADER: dict[str | None, str] = {"cf-access-token": "Cf-Access-Token", "bearer": "Authorization: Bearer"}
_PRINCIPAL_CLAIMS = ("sub", "common_name", "email")
"""What names a token's principal, strongest first."""


class RequestRefused(Exception):
    """The request's headers cannot be read unambiguously (the message is the deny reason)."""


def assertion_from_cookie(cookie: str) -> str | None:
    """The `CF_Authorization` cookie's value; RequestRefused when there are several (which one would be B's?)."""
    found = [value.strip() for name, _, value in (part.strip().partition("=") for part in cookie.split(";"))
             if name == ASSERTION_COOKIE]
    if len(found) > 1:
        raise RequestRefused(f"the request carries {len(found)} {ASSERTION_COOKIE} cookies; send one")
    return found[0] if found else None


def assertion_from_headers(headers: Mapping[str, str]) -> str | None:
    """The assertion from lower-case headers: `Cf-Access-Jwt-Assertion`, else the `CF_Authorization` cookie."""
    assertion = headers.get(ASSERTION_HEADER)
    if assertion is not None:
        return assertion.strip()
    cookie = headers.get("cookie")
    return assertion_from_cookie(cookie) if cookie is not None else None


def origin_target(verifier: Verifier, ref: str) -> str:
    """The target's Cloudflare name for a middleware in front of it; ConfigError at startup when the state has
    no AUD tag for it (every request would be denied)."""
    app = verifier.target(ref)
    if not app.aud:
        raise ConfigError([f"{app.name} has no AUD tag in the state, so its Access assertions cannot be checked; "
                           "export the app's `aud` (or pass behind_access=False for an app Access does not front)"],
                          "verifier config")
    return app.name


def same_principal(ours: Mapping[str, str], theirs: Mapping[str, str]) -> bool:
    """Do two tokens of one request name one principal? The strongest claim either token has decides, and the
    other must have it too: `sub`, else `common_name`, else `email` (case-insensitive). Nothing names no one."""
    for claim in _PRINCIPAL_CLAIMS:
        mine, yours = ours.get(claim), theirs.get(claim)
        if mine or yours:
            if not (mine and yours):
                return False
            return mine.lower() == yours.lower() if claim == "email" else mine == yours
    return False


def _who(identity: Mapping[str, str]) -> str:
    return identity.get("email") or identity.get("sub") or identity.get("common_name") or "no one"


class OriginCheck:
    """The origin decision for one Verifier: its keys, its clock, its forwarded-token decisions."""

    def __init__(self, verifier: Verifier, cache_size: int, forwarded_token: ForwardedToken) -> None:
        self._verifier = verifier
        self.forwarded_token = forwarded_token
        """Lower-case headers -> `{"cf_access_token": ...}` / `{"bearer": ...}` / None, as the Verifier reads them."""
        self._clock = verifier._clock
        self._cache = TokenCache(cache_size)
        verifier.certs.on_change(self._cache.drop_keys)

    def clear(self) -> None:
        self._cache.clear()

    # -- deciding -------------------------------------------------------------------------------------------
    def decide(self, to: str, assertion: str | None, cf_access_token: str | None = None,
               bearer: str | None = None) -> OriginVerdict:
        try:
            try:
                entry = self._cache.entries.get(assertion)  # type: ignore[arg-type]
            except TypeError:  # unhashable: not a token at all
                entry = None
            if entry is not None:
                if entry.until <= self._clock():
                    self._cache.entries.pop(assertion, None)  # type: ignore[arg-type]
                    entry = None
                elif cf_access_token is None and bearer is None:  # the browser session's repeated request
                    verdict = entry.verdicts.get(to)
                    if verdict is not None:
                        return verdict  # type: ignore[return-value]
            return self._decide(to, assertion, cf_access_token, bearer, entry)
        except Exception as exc:  # noqa: BLE001 - fail closed, never let a request through on a bug
            return OriginVerdict(False, f"internal error while verifying ({type(exc).__name__}); failing closed")

    def decide_headers(self, to: str, headers: Mapping[str, str]) -> OriginVerdict:
        try:
            assertion = assertion_from_headers(headers)
        except RequestRefused as exc:
            return OriginVerdict(False, str(exc))
        return self.decide(to, assertion, **(self.forwarded_token(headers) or {}))

    def cached(self, to: str, assertion: str | None, cf_access_token: str | None = None,
               bearer: str | None = None) -> OriginVerdict | None:
        """The verdict when every token involved is cached (no key fetch, no signature check), else None."""
        entry = self._cache.entries.get(assertion) if type(assertion) is str else None
        if entry is None or entry.until <= self._clock():
            return None
        person = entry.verdicts.get(to)
        if person is None:
            return None
        if cf_access_token is None and bearer is None:
            return person  # type: ignore[return-value]
        if not person.allowed:
            return person  # type: ignore[return-value]
        forwarded = self._verifier.cached(to, cf_access_token=cf_access_token, bearer=bearer)
        return None if forwarded is None else self._linked(person, forwarded)  # type: ignore[arg-type]

    def _decide(self, to: str, assertion: str | None, cf_access_token: str | None, bearer: str | None,
                entry: Entry | None = None) -> OriginVerdict:
        """`entry`: the assertion's unexpired cache entry, if decide() found one."""
        try:
            target = self._verifier.target(to)
        except UnknownAppError as exc:
            return OriginVerdict(False, str(exc))
        if cf_access_token is not None and bearer is not None:
            return OriginVerdict(False, "give at most one forwarded token: Cf-Access-Token or Authorization: "
                                        "Bearer", target.name)
        if assertion is None:
            return OriginVerdict(False, NO_ASSERTION_REASON, target.name)
        cache = self._cache
        if entry is None:
            try:
                entry = self._verify(assertion)
            except TokenRejected as exc:
                return OriginVerdict(False, f"Access assertion: {exc}", target.name)
            cache.put(assertion, entry)
        person = entry.verdicts.get(to)
        if person is None:
            person = self._person(target, entry.claims, entry.sources)
            cache.remember(entry, to, person)
        if (cf_access_token is None and bearer is None) or not person.allowed:
            return person  # type: ignore[return-value]
        forwarded = self._verifier.decide(to, cf_access_token=cf_access_token, bearer=bearer)
        return self._linked(person, forwarded)  # type: ignore[arg-type]

    def _verify(self, assertion: str) -> Entry:
        """Signature (the team's certs) and claims (issuer, time, `type: app`); raises TokenRejected."""
        verifier = self._verifier
        certs = verifier.certs
        parsed = _jws.parse(assertion, verifier._verified_headers)
        _jws.verify_signature(parsed, certs.key(parsed.kid))
        verifier._remember_header(parsed)
        exp = _claims.check(parsed.claims, issuer=verifier.issuer, now=self._clock(), leeway=verifier.leeway,
                            token_type=_claims.APP_TOKEN_TYPE)
        # `sources` holds what an assertion was issued for: its audiences (AUD tags), checked per target
        return Entry(min(exp + verifier.leeway, certs.good_until), certs, parsed.kid, parsed.claims,
                     _claims.audiences(parsed.claims))

    def _person(self, target: App, claims: dict[str, Any], audiences: tuple[str, ...]) -> OriginVerdict:
        """Whom a verified assertion admits to `target`: its `aud` must hold the target's AUD tag."""
        name = target.name
        if not target.aud:
            return OriginVerdict(False, f"{name} has no AUD tag in the state, so no Access assertion can be "
                                        "checked against it", name)
        exp = claims.get("exp")
        if target.aud not in audiences:
            issued_for = [a.name for aud in audiences if (a := self._verifier.graph.by_aud(aud)) is not None]
            shown = f" (it was issued for {', '.join(issued_for)})" if issued_for else ""
            return OriginVerdict(False, f"Access assertion: its `aud` does not hold {name}'s AUD tag{shown}; "
                                        f"it is not an assertion for {name}", name)
        identity = identity_of(claims)
        sub, common_name = claims.get("sub"), claims.get("common_name")
        if type(sub) is str and sub:
            return OriginVerdict(True, f"Access assertion for {name}: user {_who(identity)}", name, None,
                                 identity, None, None, exp, USER)
        if sub == "" and type(common_name) is str and common_name:
            token_name = self._verifier.graph.service_tokens.get(common_name)
            if token_name is None:
                what = f"service token {common_name} (not in the deployed state)"
            else:
                what = f"service token {token_name!r} ({common_name})"
                identity = MappingProxyType({**identity, "service_token": token_name})
            return OriginVerdict(True, f"Access assertion for {name}: {what}", name, None, identity, None, None,
                                 exp, SERVICE_TOKEN)
        return OriginVerdict(False, "Access assertion: it names neither a user (a non-empty `sub`) nor a service "
                                    "token (`common_name` with an empty `sub`)", name)

    def _linked(self, person: OriginVerdict, forwarded: Verdict) -> OriginVerdict:
        """A request that also carries the original token: it must reach B and name the assertion's principal."""
        target = person.target
        header = _FLOW_HEADER.get(forwarded.flow, "forwarded token")
        if not forwarded.allowed:
            if forwarded.expires is None:
                why = f"its {header} does not verify"
            else:
                why = f"{target} does not trust the app its {header} was issued for"
            return OriginVerdict(False, f"the request claims to come from a linked app, but {why}: "
                                        f"{forwarded.reason}", target, forwarded.source, person.identity,
                                 forwarded.policy, forwarded.flow, None, LINKED_APP)
        if not same_principal(person.identity, forwarded.identity):
            return OriginVerdict(False, f"the request claims to come from {forwarded.source}, but its {header} "
                                        f"names {_who(forwarded.identity)}, not the user of the Access assertion "
                                        f"({_who(person.identity)})", target, forwarded.source, person.identity,
                                 forwarded.policy, forwarded.flow, None, LINKED_APP)
        # An admitted assertion always has `exp`; a token vouched for by userinfo may have none.
        expires = min(e for e in (person.expires, forwarded.expires) if e is not None)
        return OriginVerdict(True, f"linked call from {forwarded.source} for {_who(person.identity)}: "
                                   f"{forwarded.reason}", target, forwarded.source, person.identity,
                             forwarded.policy, forwarded.flow, expires, LINKED_APP)
