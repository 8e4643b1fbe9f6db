"""Cloudflare's linked-app rules, in one place for every surface.

Pure module: no Pulumi, no I/O. The components (preview), `plan`/`diff`, the CrossGuard pack and the verifier
all ask these functions; none of them restates a rule. Each violation names the apps involved and says what
to change.
"""

from __future__ import annotations

import difflib
import heapq
import ipaddress
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ..errors import Violation
from ._confusables import confusable_skeleton

LINKED_APP_TOKEN = "linked_app_token"
"""The policy rule selector (`{"linked_app_token": {"app_uid": ...}}`)."""

NON_IDENTITY = "non_identity"
"""The only policy decision under which a linked_app_token rule means anything (dashboard: Service Auth)."""

RECEIVER_TYPES = frozenset({"self_hosted"})
"""App types that may carry a linked_app_token rule (Cloudflare: self-hosted only)."""

SENDER_TYPES = frozenset({"self_hosted", "saas"})
"""App types whose tokens a linked app can accept: self-hosted (Cf-Access-Token) and SaaS OIDC (Bearer)."""

POLICY_DECISIONS = frozenset({"allow", "deny", "non_identity", "bypass"})
"""Every decision Cloudflare gives a policy (API reference); any other value is unreadable, not ignorable."""

KNOWN_SELECTORS = frozenset({
    "email", "email_list", "email_domain", "everyone", "ip", "ip_list", "certificate", "common_name", "group",
    "azure_ad", "github_organization", "gsuite", "okta", "saml", "oidc", "service_token", "any_valid_service_token",
    "external_evaluation", "geo", "auth_method", "auth_context", "device_posture", "login_method",
    "user_risk_score", LINKED_APP_TOKEN,
})
"""Rule selectors of an Access policy (terraform-provider-cloudflare v5 policy model, Cloudflare API reference),
snake_case. An unknown selector in `require`/`exclude` makes the policy unreadable: what it demands is not known."""


UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
"""Lower-case UUID: the shape of an app uid and of a policy id."""
_AUD_TAG = re.compile(r"^[0-9a-f]{64}$")
_TEAM_DOMAIN = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$")


def check_team_domain(value: str) -> str:
    """The team domain as Access puts it in issuers (`https://<team domain>`): a bare host, returned lower-cased."""
    host = value.strip().lower()
    if not _TEAM_DOMAIN.match(host):  # no ":" or "/" in it: a scheme or a path fails too
        raise ValueError(f"{value!r} is not a team domain; write the bare host, e.g. acme.cloudflareaccess.com")
    return host


def check_app_uid(value: str) -> str:
    """An app uid is the application's UUID: not its AUD tag, not an OIDC client_id. Returns it lower-cased."""
    uid = value.strip().lower()
    if _AUD_TAG.match(uid):
        raise ValueError(
            "this is an AUD tag (64 hex characters); linked_app_token needs the app's uid, the UUID in the "
            "`id`/`uid` field of GET /accounts/{account_id}/access/apps"
        )
    if not UUID.match(uid):
        raise ValueError(f"{value!r} is not an app uid; expected a UUID such as a1b2c3d4-e5f6-7890-abcd-ef1234567890")
    return uid


def check_aud_tag(value: str) -> str:
    """An AUD tag: the 64 hex characters Access puts in the `aud` claim of an app's tokens. Returns it lower-cased."""
    tag = value.strip().lower()
    if not _AUD_TAG.match(tag):
        raise ValueError(f"{value!r} is not an AUD tag; expected the 64 hex characters of the app's `aud`")
    return tag


def self_hosted_place_problem(domain: object, destinations: object) -> str | None:
    """A self-hosted app must say where it lives; the config model and the component both ask here."""
    if not domain and not destinations:
        return "`domain` (e.g. payroll.acme.com) or `destinations`"
    return None


def redirect_uri_problem(uris: Sequence[str], field: str = "redirectUris") -> str | None:
    """A SaaS OIDC app needs at least one absolute https redirect URI (plain http only to this machine)."""
    if not uris:
        return f"give at least one `{field}` entry (the OIDC callback of the SaaS app)"
    for uri in uris:
        if not isinstance(uri, str) or not uri.startswith(("https://", "http://localhost", "http://127.0.0.1")):
            return f"{uri!r} is not an absolute https:// redirect URI"
    return None


def is_loopback(url: str) -> bool:
    """The URL's host is this machine (localhost, 127.0.0.0/8, ::1): no proxy may stand in for it."""
    host = urlsplit(url).hostname or ""
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_loopback_http(url: str) -> bool:
    """`http://` to this machine itself (a local mirror, tests): nothing on the network can answer it, so it is
    the one place plain http may fetch keys or account data."""
    return url.startswith("http://") and is_loopback(url)


# -- values the provider and the API accept ---------------------------------------------------------------------
# Each rule below is one the real provider (terraform-provider-cloudflare v5, which pulumi-cloudflare 6 wraps)
# or Cloudflare's API enforces at `pulumi up`; checking it here makes `plan` refuse what Cloudflare would.
# Sources: internal/services/zero_trust_access_application/schema.go (validators and descriptions) and the
# Cloudflare API reference (Access applications and policies), read at commit 0059192 of the provider.

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_DURATION_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}


def _duration_seconds(text: str, units: Iterable[str]) -> float | None:
    """Seconds in a Go duration (`time.ParseDuration`: `300ms`, `2h45m`) using only `units`; None if it is not one."""
    allowed = set(units)
    pos, total = 0, 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos or match.group(2) not in allowed:
            return None
        total += float(match.group(1)) * _DURATION_SECONDS[match.group(2)]
        pos = match.end()
    return total if text and pos == len(text) else None


def check_session_duration(value: str) -> str:
    """`session_duration`: "Must be in the format `300ms` or `2h45m`. Valid time units are: ns, us (or µs), ms, s,
    m, h" (provider schema); the API has no days."""
    seconds = _duration_seconds(value.strip(), _DURATION_SECONDS)
    if seconds is None or seconds <= 0:
        raise ValueError(f"{value!r} is not a duration; write e.g. 24h or 2h45m (units ns, us, ms, s, m, h; no days)")
    return value.strip()


def check_access_token_lifetime(value: str) -> str:
    """`saas_app.access_token_lifetime`: "Valid units are m,h. Must be greater than or equal to 1m and less than or
    equal to 24h" (provider schema)."""
    seconds = _duration_seconds(value.strip(), ("m", "h"))
    if seconds is None:
        raise ValueError(f"{value!r} is not a token lifetime; write minutes or hours, e.g. 15m, 1h or 1h30m")
    if not 60 <= seconds <= 24 * 3600:
        raise ValueError(f"{value!r} is out of range; an access token lifetime lies between 1m and 24h")
    return value.strip()


GRANT_TYPES = ("authorization_code", "authorization_code_with_pkce", "refresh_tokens", "hybrid", "implicit")
"""`saas_app.grant_types`: the provider's `OneOfCaseInsensitive` validator."""
SCOPES = ("openid", "groups", "email", "profile")
"""`saas_app.scopes`: the provider's `OneOfCaseInsensitive` validator; Cloudflare adds `offline_access` itself
when refresh tokens are on (the attribute's description)."""


_VOWELS = frozenset("aeiou")


def check_choices(values: Sequence[str], allowed: Sequence[str], what: str) -> list[str]:
    """Every value one of `allowed`, case-insensitively as the provider compares; returned lower-cased."""
    bad = [v for v in values if not isinstance(v, str) or v.lower() not in allowed]
    if bad:
        listed = ", ".join(repr(v) for v in bad)
        hint = ("; Cloudflare adds offline_access itself when refresh_tokens is a grant type"
                if any(str(v).lower() == "offline_access" for v in bad) else "")
        article = ("an " if what[0].lower() in _VOWELS else "a ") if len(bad) == 1 else ""
        raise ValueError(f"{listed} {'is' if len(bad) == 1 else 'are'} not {article}{what}"
                         f"{'' if len(bad) == 1 else 's'}; use {', '.join(allowed[:-1])} or {allowed[-1]}{hint}")
    return [v.lower() for v in values]


_HOST = r"(\*\.)?[a-z0-9*]([a-z0-9*-]*[a-z0-9*])?(\.[a-z0-9*]([a-z0-9*-]*[a-z0-9*])?)+"
_ACCESS_DOMAIN = re.compile(rf"^{_HOST}(/\S*)?$")
_EMAIL_DOMAIN = _TEAM_DOMAIN  # both are bare host names
_ACCOUNT_ID = re.compile(r"^[0-9a-f]{32}$")


def check_access_domain(value: str) -> str:
    """`domain` and public `destinations[].uri`: "The primary hostname and path secured by Access", a host with an
    optional path and wildcards (provider schema; Cloudflare docs, application paths): no scheme, no spaces."""
    if not isinstance(value, str) or not _ACCESS_DOMAIN.match(value.strip().lower()) or "://" in value:
        raise ValueError(f"{value!r} is not an Access domain; write the host and optional path without a scheme, "
                         "e.g. payroll.acme.com or payroll.acme.com/api")
    return value.strip()


def check_email_domain(value: str) -> str:
    """An `email_domain` rule's `domain` ("The email domain to match", API schema, e.g. `example.com`): the part of
    an address after the @. Returned lower-cased."""
    if not isinstance(value, str) or not _EMAIL_DOMAIN.match(value.strip().lower()):
        raise ValueError(f"{value!r} is not an email domain; write the part after the @, e.g. acme.com")
    return value.strip().lower()


def check_account_id(value: str) -> str:
    """A Cloudflare account id: the API's `account_identifier`, 32 hex characters. Returned lower-cased."""
    account = value.strip().lower()
    if not _ACCOUNT_ID.match(account):
        raise ValueError(f"{value!r} is not an account id; copy the 32 hex characters from the dashboard's "
                         "Account ID (e.g. 023e105f4ecef8ad9ca31a8372d0c353)")
    return account


def linked_policy_name(source: str) -> str:
    """The reusable policy every app trusting `source` attaches (one per source app, shared by its targets)."""
    return f"Linked app token: {source}"


def can_receive_linked_trust(app_type: str | None) -> bool:
    return app_type in RECEIVER_TYPES


def can_send_linked_token(app_type: str | None) -> bool:
    return app_type in SENDER_TYPES


CF_ACCESS_TOKEN_HEADER = "Cf-Access-Token"
"""Self-hosted -> self-hosted: A forwards its user's Access JWT to B in this header."""
BEARER_HEADER = "Authorization: Bearer"
"""SaaS (OIDC) -> self-hosted: A sends its OAuth token to B in this header."""


def token_header(source_type: str | None) -> str:
    """The header a source app of this type sends its user token in (the two documented flows)."""
    return BEARER_HEADER if source_type == "saas" else CF_ACCESS_TOKEN_HEADER


@dataclass(frozen=True, slots=True)
class AppFacts:
    """What the rules need to know of an app: its wire type and whether this stack manages it."""

    type: str
    managed: bool = True


@dataclass(frozen=True, slots=True)
class LinkRef:
    source: str
    target: str
    where: str = field(default="", compare=False)
    """Where the link was declared (e.g. `linked-apps:links[2]`), for messages."""


def _did_you_mean(name: str, apps: Mapping[str, AppFacts]) -> str:
    hint = difflib.get_close_matches(name, list(apps), n=1)
    return f" (did you mean `{hint[0]}`?)" if hint else ""


def check_links(apps: Mapping[str, AppFacts], links: Sequence[LinkRef]) -> list[Violation]:
    """Every rule Cloudflare (or Pulumi's ordering) would enforce later, checked now, all at once."""
    found: list[Violation] = []
    seen: dict[tuple[str, str], str] = {}
    for link in links:
        a, b = link.source, link.target
        at = f"{link.where}: " if link.where else ""
        arrow = f"link {a} -> {b}"
        missing = [n for n in (a, b) if n not in apps]
        for name in missing:
            found.append(Violation(
                "unknown-app",
                f"{at}{arrow}: `{name}` is not declared under linked-apps:apps{_did_you_mean(name, apps)}; declare it "
                "(managed here, or existing with `uid`, `lookup` or `stack`) or fix the name",
                (a, b),
            ))
        if a == b:
            found.append(Violation("self-link", f"{at}{arrow}: an app cannot link to itself; remove this link", (a,)))
            continue
        if (a, b) in seen:
            found.append(Violation(
                "duplicate-link", f"{at}{arrow} is declared twice (first at {seen[(a, b)]}); keep one", (a, b)))
            continue
        seen[(a, b)] = link.where or arrow
        if missing:
            continue
        src, dst = apps[a], apps[b]
        if not can_receive_linked_trust(dst.type):
            found.append(Violation(
                "target-not-self-hosted",
                f"{at}{arrow}: `{b}` is a {dst.type} app, and Cloudflare accepts a linked_app_token rule only on "
                f"self-hosted apps; point the link at a self_hosted app (e.g. the API `{a}` calls) or make `{b}` "
                "self_hosted",
                (a, b),
            ))
        elif not dst.managed:
            found.append(Violation(
                "target-not-managed",
                f"{at}{arrow}: `{b}` is managed outside this stack, and a policy reaches an app only through that "
                f"app's own policies list; manage `{b}` in this stack, or declare the link in the stack that manages it",
                (a, b),
            ))
        if not can_send_linked_token(src.type):
            found.append(Violation(
                "source-cannot-send-token",
                f"{at}{arrow}: `{a}` is a {src.type} app, which carries no user token another app can accept; "
                "the source must be self_hosted (it forwards Cf-Access-Token) or saas (it sends Authorization: Bearer)",
                (a, b),
            ))
    return found


_ON_PATH, _DONE = 1, 2


def deferred_links(apps: Mapping[str, AppFacts], edges: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The links that break every cycle among apps this stack manages, chosen deterministically.

    B's policy list needs the id of A's trust policy, which needs A's uid: a cycle of links among managed apps
    cannot be built in one deployment. Each such cycle is broken at one link: the back edges of a depth-first
    search visiting apps and their targets in name order (removing them leaves no cycle). A deferred link's
    attachment resolves through a lookup (an invoke) instead of a resource dependency, so the first `pulumi up`
    creates everything but it and the second attaches it.
    """
    succ: dict[str, list[str]] = {}
    for a, b in set(edges):
        if a in apps and b in apps and apps[a].managed and apps[b].managed and can_receive_linked_trust(apps[b].type):
            succ.setdefault(a, []).append(b)
    deferred: list[tuple[str, str]] = []
    state: dict[str, int] = {}  # app -> _ON_PATH or _DONE; absent: not visited yet
    for root in sorted(succ):
        if root in state:
            continue
        path: list[str] = [root]
        stack = [iter(sorted(succ[root]))]
        state[root] = _ON_PATH
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = _DONE
                stack.pop()
            elif state.get(nxt) == _ON_PATH:
                deferred.append((path[-1], nxt))
            elif nxt not in state:
                state[nxt] = _ON_PATH
                path.append(nxt)
                stack.append(iter(sorted(succ.get(nxt, ()))))
    return sorted(deferred)


def creation_order(apps: Iterable[str], edges: Iterable[tuple[str, str]]) -> list[str]:
    """Apps in an order where every link's source comes before its target (Kahn; ties by name).

    Call it without the `deferred_links`: a cycle would leave apps out, so it raises.
    """
    names = sorted(set(apps))
    indegree = dict.fromkeys(names, 0)
    succ: dict[str, list[str]] = {}
    for a, b in set(edges):
        if a in indegree and b in indegree:
            succ.setdefault(a, []).append(b)
            indegree[b] += 1
    ready = [n for n in names if indegree[n] == 0]
    order: list[str] = []
    heapq.heapify(ready)
    while ready:
        n = heapq.heappop(ready)
        order.append(n)
        for m in succ.get(n, ()):
            indegree[m] -= 1
            if indegree[m] == 0:
                heapq.heappush(ready, m)
    if len(order) != len(names):
        raise ValueError("links form a cycle; leave out the deferred_links")
    return order


def policy_attachments(own: Sequence[Any], linked: Sequence[Any]) -> list[dict[str, object]]:
    """The receiving app's `policies` list: its own policies first, untouched, then linked-app policies.

    Precedences are 1..n and unique per app, as Cloudflare requires; a policy listed twice is attached once.
    Ids may be strings or deploy-time values (compared by identity), so no value has to be known to order them.
    """
    out: list[dict[str, object]] = []
    seen: set[Any] = set()
    for pid in [*own, *linked]:
        if pid not in seen:
            seen.add(pid)
            out.append({"id": pid, "precedence": len(out) + 1})
    return out


def evaluate_linked_policy(
    decision: str,
    include: Sequence[tuple[str, str | None]],
    require: Sequence[tuple[str, str | None]],
    exclude: Sequence[tuple[str, str | None]],
    source_uids: frozenset[str],
) -> tuple[bool, str]:
    """Would this policy admit a token issued for one of `source_uids`, judged on linked_app_token rules alone?

    Rules are `(selector, app_uid)`. Access semantics: include OR, require AND, exclude NOT. A rule of another
    selector cannot be judged from a token alone, so it fails closed: it never satisfies include or require,
    and in exclude it is assumed to match.
    """
    if decision != NON_IDENTITY:
        return False, f"decision is {decision!r}, and a linked_app_token rule grants only under {NON_IDENTITY!r}"

    def hit(rule: tuple[str, str | None]) -> bool:
        return rule[0] == LINKED_APP_TOKEN and rule[1] in source_uids

    for rule in exclude:
        if rule[0] != LINKED_APP_TOKEN:
            return False, f"an exclude rule ({rule[0]}) cannot be evaluated offline, so it is taken to match"
        if hit(rule):
            return False, "an exclude rule names the source app"
    if not any(hit(r) for r in include):
        return False, "no include rule names the source app"
    for rule in require:
        if not hit(rule):
            what = "another app" if rule[0] == LINKED_APP_TOKEN else f"a {rule[0]} rule this verifier cannot evaluate"
            return False, f"a require rule is not met ({what})"
    return True, "an include rule names the source app"


# -- names and identities ---------------------------------------------------------------------------------------
# An app's key is its Cloudflare name, and reviewers tell apps apart by it: a name must read as exactly what it
# is. Unicode categories refused anywhere in a name: controls (Cc, incl. \r \n \t, NUL), format characters (Cf:
# bidi overrides and isolates, zero-width space/joiners, BOM, soft hyphen), lone surrogates (Cs), private use
# (Co), unassigned code points (Cn), line and paragraph separators (Zl, Zp).
_REFUSED_CATEGORIES = {"Cc": "a control character", "Cf": "an invisible format character (bidi or zero-width)",
                       "Cs": "a lone surrogate", "Co": "a private-use character", "Cn": "an unassigned code point",
                       "Zl": "a line separator", "Zp": "a paragraph separator"}
# Default-ignorable code points outside Cf (Unicode DerivedCoreProperties.txt, Default_Ignorable_Code_Point):
# they render as nothing, so `hr-portal` plus one of them looks like `hr-portal`.
_INVISIBLE = frozenset([0x034F, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x3164, 0xFFA0, 0x2800,
                        *range(0x180B, 0x1810), *range(0xFE00, 0xFE10), *range(0xE0100, 0xE01F0)])


def shown(text: str) -> str:
    """Text quoted for a message: ASCII only, every other character escaped (`'hr-p\\u043ertal'`), so a look-alike,
    an invisible character or a terminal escape in a name is visible and harmless wherever the message goes."""
    return ascii(text)


def _unreadable(ch: str) -> str | None:
    """What is wrong with `ch` in text a person must read, or None when it shows as itself."""
    category = unicodedata.category(ch)
    what = _REFUSED_CATEGORIES.get(category)
    if what is None and ord(ch) in _INVISIBLE:
        what = "an invisible or blank character"
    elif what is None and category == "Zs" and ch != " ":
        what = "a space other than U+0020"
    return what


def printable(text: str) -> str:
    """`text` with every character `_unreadable` judges shown as a `\\uXXXX` escape (controls, bidi, zero-width,
    lone surrogates, odd spaces), so what a reader sees is what the text holds and no medium gets a control."""
    if text.isascii() and text.isprintable():
        return text
    return "".join(ch if _unreadable(ch) is None else
                    (f"\\u{ord(ch):04x}" if ord(ch) <= 0xFFFF else f"\\U{ord(ch):08x}") for ch in text)


def app_name_problem(name: str) -> str | None:
    """Why `name` cannot be an app name, or None: printable, no surrounding spaces, nothing invisible."""
    for ch in name:
        what = _unreadable(ch)
        if what is not None:
            label = unicodedata.name(ch, None)  # None for what has no name (controls, surrogates, unassigned)
            return (f"app name {shown(name)} holds U+{ord(ch):04X}{f' ({label})' if label else ''}, {what}; "
                    "names must be printable text that reads as what it is: remove the character")
    if not name.strip() or name != name.strip():
        return f"app name {shown(name)} must be non-empty with no surrounding spaces (it is the Cloudflare name)"
    return None


def look_alike_problems(names: Iterable[str]) -> list[str]:
    """Every pair of names that differ but look alike (one TR39 skeleton), each naming both."""
    first: dict[str, str] = {}
    found: list[str] = []
    for name in names:
        skeleton = confusable_skeleton(name)
        other = first.setdefault(skeleton, name)
        if other != name:
            found.append(f"app names {shown(other)} and {shown(name)} look alike (the same Unicode TR39 skeleton), "
                         "so a reviewer cannot tell them apart; rename one")
    return found


def identity_problems(identities: Mapping[str, Iterable[tuple[str, str]]]) -> list[str]:
    """Apps that would be one Cloudflare app: app name -> its identities (`("uid", ...)`, `("aud", ...)`,
    `("name", cloudflare name)`, `("stack", reference)`). Two apps with one identity are refused: trust declared
    for one would silently be trust for the other, and the review would show two names for one app."""
    owner: dict[tuple[str, str], str] = {}
    found: list[str] = []
    words = {"aud": "AUD tag", "name": "Cloudflare name", "stack": "stack reference"}  # a uid is a "uid"
    for app, keys in identities.items():
        for key in dict.fromkeys(keys):
            other = owner.setdefault(key, app)
            if other != app:
                found.append(f"apps {shown(other)} and {shown(app)} are one Cloudflare app (the same "
                             f"{words.get(key[0], key[0])} {shown(key[1])}); declare it once")
    return found
