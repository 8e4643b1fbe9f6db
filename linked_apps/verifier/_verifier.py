"""Verifier: token + target app -> Verdict, against the trust that is deployed (a TrustGraph from state)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, TokenRejected, UnknownAppError
from ..model.graph import App, TrustGraph
from ..model.rules import check_team_domain, is_loopback_http
from . import _claims, _jws
from ._cache import DEFAULT_SIZE, Entry, TokenCache
from ._decide import BEARER, CF_ACCESS_TOKEN, Grant, grant, saas_source, sender_problem, sources_by_aud
from ._headers import token_from_header_items, token_from_headers
from ._keys import (DEFAULT_COOLDOWN, DEFAULT_MAX_STALE, DEFAULT_TIMEOUT, DEFAULT_TTL, KeySet, check_options,
                    number_problem)
from ._userinfo import LABEL
from ._verdict import Verdict, identity_of

if TYPE_CHECKING:
    import httpx

    from ._verdict import OriginVerdict

OPAQUE_REASON = ("opaque bearer token: it is not a JWT, so it cannot be verified offline (Cloudflare does not "
                 "document SaaS access tokens; an online check at the issuer's /userinfo is opt-in: "
                 "online_userinfo=True, --online-userinfo)")


_MAX_VERIFIED_HEADERS = 64
_OPTION_NAMES = {"ttl": "key_ttl", "cooldown": "key_cooldown", "max_stale": "key_max_stale", "timeout": "fetch_timeout"}
MAX_LEEWAY = 300.0
"""Seconds of clock skew the verifier may be told to allow, at most (the default is 30)."""


def _is_opaque(token: str) -> bool:
    """Not shaped like a JWS (and not merely too long to be one)."""
    return len(token) <= _jws.MAX_TOKEN_LENGTH and not _jws.looks_like_jws(token)


def _team_host(team_domain: str) -> str:
    # A pasted issuer (`https://acme.cloudflareaccess.com/`) is forgiven; the host itself obeys the one rule.
    try:
        return check_team_domain(team_domain.strip().removeprefix("https://").rstrip("/"))
    except ValueError as exc:
        raise ConfigError([f"team domain {team_domain!r} is not a host name: {exc}"], "verifier config") from None


class Verifier:
    """Decide whether a linked-app token would reach a target app, from deployed state.

    `decide()` never raises: every failure is a deny Verdict with a reason. Keys are fetched from
    `https://<team domain>` (or `access_url`, a mirror; issuer checks still use the team domain).
    """

    def __init__(
        self,
        graph: TrustGraph,
        *,
        team_domain: str | None = None,
        access_url: str | None = None,
        client: httpx.Client | None = None,
        clock: Callable[[], float] = time.time,
        leeway: float = _claims.DEFAULT_LEEWAY,
        cache_size: int = DEFAULT_SIZE,
        key_ttl: float = DEFAULT_TTL,
        key_cooldown: float = DEFAULT_COOLDOWN,
        key_max_stale: float = DEFAULT_MAX_STALE,
        fetch_timeout: float = DEFAULT_TIMEOUT,
        online_userinfo: bool = False,
    ) -> None:
        problems = [p for p in (number_problem("leeway", leeway, 0.0, MAX_LEEWAY),
                                number_problem("cache_size", cache_size, 0, 10_000_000, integer=True)) if p]
        problems += check_options(_OPTION_NAMES, ttl=key_ttl, cooldown=key_cooldown, max_stale=key_max_stale,
                                  timeout=fetch_timeout)
        if problems:
            raise ConfigError(problems, "verifier config")
        team = team_domain or graph.team_domain
        if not team:
            raise ConfigError(["the state has no `team_domain` output; give the team domain (--team-domain "
                               "acme.cloudflareaccess.com)"], "verifier config")
        self.graph = graph
        self.issuer = f"https://{_team_host(team)}"
        self._saas_issuer_prefix = f"{self.issuer}/cdn-cgi/access/sso/oidc/"
        base = (access_url or self.issuer).rstrip("/")
        if not base.startswith("https://") and not is_loopback_http(base):
            # Whoever answers a plain-http key fetch could hand us their own keys and mint any token.
            raise ConfigError([f"access URL {access_url!r} must start with https:// (or http:// on this machine: "
                               "localhost, 127.0.0.1, [::1])"], "verifier config")
        self.access_url = base
        self.leeway = leeway
        self.online_userinfo = online_userinfo
        """Opaque bearer tokens: ask the userinfo endpoint of the SaaS apps the target trusts (labelled)."""
        self._client = client
        self._fetch_timeout = fetch_timeout
        self._clock = clock
        self._key_options: dict[str, Any] = dict(client=client, ttl=key_ttl, cooldown=key_cooldown,
                                                 max_stale=key_max_stale, timeout=fetch_timeout, clock=clock)
        self._cf_cache = TokenCache(cache_size)
        self._bearer_cache = TokenCache(cache_size)
        self.certs = self._keyset(f"{base}/cdn-cgi/access/certs")
        """The team's app-token keys."""
        self._saas_keys: dict[str, KeySet] = {}
        self._targets: dict[str, App] = {}
        self._grants: dict[tuple[str, tuple[str, ...], str], Grant] = {}
        self._verified_headers: dict[str, str] = {}
        self._sources: dict[tuple[str, ...], tuple[str, ...]] = {}
        """Audiences of verified tokens -> the names of the apps they were issued for."""
        from ._origin import OriginCheck

        self._origin = OriginCheck(self, cache_size, token_from_headers)

    # -- public -------------------------------------------------------------------------------------------
    def target(self, ref: str) -> App:
        """The receiving app by Cloudflare name, uid or domain; UnknownAppError names near misses."""
        app = self._targets.get(ref)
        if app is None:
            app = self.graph.find(ref)
            if len(self._targets) < 1024:
                self._targets[ref] = app
        return app

    def decide(self, to: str, *, cf_access_token: str | None = None, bearer: str | None = None) -> Verdict:
        """Would Access let this token through to `to`? Give exactly one of the two tokens."""
        try:
            if bearer is None and cf_access_token is not None:
                flow, token, cache = CF_ACCESS_TOKEN, cf_access_token, self._cf_cache
            elif cf_access_token is None and bearer is not None:
                flow, token, cache = BEARER, bearer, self._bearer_cache
            else:
                return Verdict(False, "give exactly one token: Cf-Access-Token or Authorization: Bearer")
            entry = cache.entries.get(token)
            if entry is not None:
                if entry.until > self._clock():
                    verdict = entry.verdicts.get(to)
                    if verdict is not None:
                        return verdict
                else:
                    cache.entries.pop(token, None)
                    entry = None
            return self._decide(to, flow, token, cache, entry)
        except Exception as exc:  # noqa: BLE001 - fail closed, never let a request through on a bug
            return Verdict(False, f"internal error while verifying ({type(exc).__name__}); failing closed")

    def decide_headers(self, to: str, headers: Mapping[Any, Any]) -> Verdict:
        """Decide from request headers: Cf-Access-Token first, else Authorization: Bearer. Names in any case;
        values `str`, `bytes` or a list of them; a repeated token header is refused. Never raises."""
        try:
            token, reason = token_from_header_items(headers.items())
        except Exception as exc:  # noqa: BLE001 - a mapping that cannot be read is a deny, not a crash
            return Verdict(False, f"the headers cannot be read ({type(exc).__name__}); failing closed")
        return self.decide(to, **token) if token else Verdict(False, reason, flow=None)

    def cached(self, to: str, *, cf_access_token: str | None = None, bearer: str | None = None) -> Verdict | None:
        """The cached verdict for a repeated token, or None (never fetches, never verifies)."""
        if (cf_access_token is None) == (bearer is None):
            return None
        cache, token = (self._cf_cache, cf_access_token) if bearer is None else (self._bearer_cache, bearer)
        entry = cache.entries.get(token) if type(token) is str else None
        if entry is not None and entry.until > self._clock():
            return entry.verdicts.get(to)
        return None

    def decide_origin(self, to: str, *, assertion: str | None, cf_access_token: str | None = None,
                      bearer: str | None = None) -> OriginVerdict:
        """App B's origin check: is this request, as `to`'s origin received it, genuine, who, and from which app?

        `assertion` is the request's `Cf-Access-Jwt-Assertion` (or `CF_Authorization` cookie), checked as
        Cloudflare documents against `to`'s AUD tag. With a forwarded token as well, the verdict is a linked call
        (`via="linked-app"`) only if that token reaches `to` through deployed trust and names the same user.
        """
        return self._origin.decide(to, assertion, cf_access_token, bearer)

    def decide_origin_headers(self, to: str, headers: Mapping[str, str]) -> OriginVerdict:
        """`decide_origin` from request headers (lower-case names): the assertion header, else the cookie."""
        return self._origin.decide_headers(to, headers)

    def clear_cache(self) -> None:
        self._cf_cache.clear()
        self._bearer_cache.clear()
        self._origin.clear()

    # -- internals ----------------------------------------------------------------------------------------
    def _keyset(self, url: str) -> KeySet:
        keyset = KeySet(url, **self._key_options)
        keyset.on_change(self._cf_cache.drop_keys)
        keyset.on_change(self._bearer_cache.drop_keys)
        return keyset

    def _saas_keyset(self, client_id: str) -> KeySet:
        # Only client ids of SaaS apps in the state get here, so this holds at most one key set per such app.
        keyset = self._saas_keys.get(client_id)
        if keyset is None:
            keyset = self._saas_keys[client_id] = self._keyset(
                f"{self.access_url}/cdn-cgi/access/sso/oidc/{client_id}/jwks")
        return keyset

    def _decide(self, to: str, flow: str, token: str, cache: TokenCache, entry: Entry | None) -> Verdict:
        try:
            target = self.target(to)
        except UnknownAppError as exc:
            return Verdict(False, str(exc), flow=flow)
        if entry is None:
            try:
                if self.online_userinfo and flow == BEARER and type(token) is str and _is_opaque(token):
                    entry = self._ask_userinfo(token, target)
                else:
                    entry = self._verify(flow, token)
            except TokenRejected as exc:
                return Verdict(False, str(exc), target.name, flow=flow)
            cache.put(token, entry)
        verdict = self._verdict(target, entry, flow)
        cache.remember(entry, to, verdict)
        return verdict

    def _verify(self, flow: str, token: str) -> Entry:
        """Signature and claims; raises TokenRejected with the deny reason."""
        if type(token) is not str:
            raise TokenRejected("malformed token: not a string")
        if flow == BEARER and _is_opaque(token):
            raise TokenRejected(OPAQUE_REASON)
        parsed = _jws.parse(token, self._verified_headers)
        claims = parsed.claims
        if flow == CF_ACCESS_TOKEN:
            keyset, issuer, token_type = self.certs, self.issuer, _claims.APP_TOKEN_TYPE
        else:
            app = saas_source(self.graph, self._saas_issuer_prefix, claims.get("iss"))
            if app is None or app.client_id is None:
                iss = claims.get("iss")
                shown = iss[:120] if isinstance(iss, str) else type(iss).__name__
                raise TokenRejected(f"issuer {shown!r} is not the OIDC issuer of a SaaS app in the state "
                                    f"(expected {self._saas_issuer_prefix}<client_id>)")
            keyset, token_type = self._saas_keyset(app.client_id), None
            issuer = self._saas_issuer_prefix + app.client_id
        _jws.verify_signature(parsed, keyset.key(parsed.kid))
        self._remember_header(parsed)
        exp = _claims.check(claims, issuer=issuer, now=self._clock(), leeway=self.leeway, token_type=token_type)
        audiences = _claims.audiences(claims)
        if flow == CF_ACCESS_TOKEN:
            sources = self._sources.get(audiences)  # an app's tokens all carry the same `aud`
            if sources is None:
                sources = tuple(a.name for a in sources_by_aud(self.graph, audiences))
                if not sources:
                    raise TokenRejected("the token's `aud` names no app in the state (unknown AUD tag): it was "
                                        "not issued for an application this state knows")
                if len(self._sources) < _MAX_VERIFIED_HEADERS:
                    self._sources[audiences] = sources
        else:
            if app.client_id not in audiences:
                raise TokenRejected(f"the token's `aud` is not {app.name}'s client_id")
            sources = (app.name,)
        return Entry(min(exp + self.leeway, keyset.good_until), keyset, parsed.kid, claims, sources)

    def _remember_header(self, parsed: _jws.Parsed) -> None:
        """After its signature verified: the header needs no second decoding."""
        if len(self._verified_headers) < _MAX_VERIFIED_HEADERS:
            self._verified_headers[parsed.header_segment] = parsed.kid  # only headers the issuer signed

    def _ask_userinfo(self, token: str, target: App) -> Entry:
        from ._userinfo import USERINFO_TTL, ask, candidates

        app, claims = ask(token, candidates(self.graph, target), self.access_url, self._client,
                          self._fetch_timeout)
        return Entry(self._clock() + USERINFO_TTL, None, "", claims, (app.name,), online=True)

    def _verdict(self, target: App, entry: Entry, flow: str) -> Verdict:
        key = (target.name, entry.sources, flow)
        result = self._grants.get(key)  # the decision depends on these alone: tokens only add who and until when
        if result is None:
            result = self._grants[key] = self._grant(target, entry.sources, flow)
        reason = f"{result.reason} [{LABEL}]" if entry.online else result.reason
        return Verdict(result.allowed, reason, target.name, result.source, identity_of(entry.claims), result.policy,
                       flow, entry.claims.get("exp"))

    def _grant(self, target: App, source_names: tuple[str, ...], flow: str) -> Grant:
        sources = [self.graph.apps[name] for name in source_names]
        for source in sources:
            problem = sender_problem(source, flow)
            if problem:
                return Grant(False, problem, source.name)
        return grant(self.graph, target, sources)
