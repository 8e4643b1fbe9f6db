"""A bounded cache of verified tokens, keyed by the token string itself.

An entry exists only for a token whose signature and claims were verified. It lives until the earlier of
the token's expiry (rechecked on every hit) and the moment its key set needs a second look (TTL or retry),
and it is dropped at once when its `kid` leaves, or changes in, the key set.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._keys import KeySet
    from ._verdict import Verdict

DEFAULT_SIZE = 10_000
MAX_TARGETS_PER_TOKEN = 32


class Entry:
    __slots__ = ("until", "verdicts", "keyset", "kid", "claims", "sources", "online")

    def __init__(self, until: float, keyset: KeySet | None, kid: str, claims: dict[str, Any],
                 sources: tuple[str, ...], *, online: bool = False) -> None:
        self.until = until
        self.verdicts: dict[str, Verdict] = {}
        """Target reference as asked -> verdict, so a repeated question costs two dictionary lookups."""
        self.keyset = keyset
        self.kid = kid
        self.claims = claims
        self.sources = sources
        self.online = online
        """Vouched for by a userinfo endpoint, not verified offline."""


class TokenCache:
    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        self.size = size
        self.entries: dict[str, Entry] = {}

    def __len__(self) -> int:
        return len(self.entries)

    def put(self, token: str, entry: Entry) -> None:
        if self.size <= 0:
            return
        entries = self.entries
        while len(entries) >= self.size:
            try:  # oldest first; another thread may have evicted it already
                del entries[next(iter(entries))]
            except (KeyError, RuntimeError, StopIteration):
                break
        entries[token] = entry

    def remember(self, entry: Entry, target_ref: str, verdict: Verdict) -> None:
        if len(entry.verdicts) < MAX_TARGETS_PER_TOKEN:
            entry.verdicts[target_ref] = verdict

    def drop_keys(self, keyset: KeySet, kids: frozenset[str]) -> None:
        """Forget every token signed by one of `kids` of `keyset` (they left or changed in the set)."""
        for token, entry in list(self.entries.items()):
            if entry.keyset is keyset and entry.kid in kids:
                self.entries.pop(token, None)

    def clear(self) -> None:
        self.entries.clear()
