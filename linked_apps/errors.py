"""Every error linked-apps raises on purpose lives here, so callers catch one family.

Pure module: no Pulumi, no I/O. Each error carries a message written for the person who must act on it:
it names the culprit (a config key path, an app, a file) and says what to change.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken rule. `rule` is a stable id for scripts; `message` is for people."""

    rule: str
    message: str
    apps: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, object]:
        return {"rule": self.rule, "message": self.message, "apps": list(self.apps)}


class LinkedAppsError(Exception):
    """Base class: anything linked-apps reports on purpose."""


class ConfigError(LinkedAppsError):
    """The stack config (or a config file) cannot be read or does not fit the contract."""

    def __init__(self, problems: Sequence[str], source: str = "stack config") -> None:
        self.problems = list(problems)
        self.source = source
        if len(self.problems) == 1:  # one problem, one line; it names the source unless it already does
            only = self.problems[0]
            super().__init__(only if only.startswith(source) else f"{source}: {only}")
            return
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{source} is not valid ({len(self.problems)} problems):\n{lines}")


class StateError(LinkedAppsError):
    """Deployed state (a stack export or stack output file) cannot be read."""


class UnknownAppError(LinkedAppsError):
    """An app named on the command line or in an assertion is not in the topology or state."""


class RuleViolationError(LinkedAppsError):
    """One or more linked-app rules are broken; all of them are listed, not just the first."""

    def __init__(self, violations: Sequence[Violation]) -> None:
        self.violations = list(violations)
        lines = "\n".join(f"  - [{v.rule}] {v.message}" for v in self.violations)
        super().__init__(
            f"linked-apps: {len(self.violations)} rule violation(s); nothing was sent to Cloudflare:\n{lines}"
        )


class TokenRejected(LinkedAppsError):
    """A token fails verification. The message is the deny reason; the verifier turns it into a Verdict."""


class KeysUnavailable(TokenRejected):
    """No usable signing key: the key set cannot be fetched, is too stale, or lacks the token's `kid`."""
