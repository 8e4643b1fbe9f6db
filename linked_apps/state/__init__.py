"""Readers of deployed trust: a `pulumi stack export`, a `pulumi stack output --json` file, a stack read
through the Pulumi CLI, or the Cloudflare account itself (`cloudflare:ACCOUNT_ID`). Each returns the one
currency between jobs, a `TrustGraph`, built by the same reader rules."""

from __future__ import annotations

from pathlib import Path

from ..model.graph import TrustGraph
from ._cloudflare import SOURCE_PREFIX as ACCOUNT_PREFIX
from ._cloudflare import is_account_source
from ._pulumi import (
    APP_TYPE,
    POLICY_TYPE,
    STACK_TYPE,
    UNKNOWN_TYPE,
    graph_from_export,
    graph_from_outputs,
    graph_from_resources,
    read_stack,
    read_state,
)

__all__ = ["ACCOUNT_PREFIX", "APP_TYPE", "POLICY_TYPE", "STACK_TYPE", "UNKNOWN_TYPE", "graph_from_export",
           "graph_from_outputs", "graph_from_resources", "read_deployed", "read_stack", "read_state"]


def read_deployed(source: Path | str, *, api_url: str | None = None) -> TrustGraph:
    """Deployed trust from `cloudflare:ACCOUNT_ID` (the live account) or a state file (`-`: standard input)."""
    if is_account_source(str(source)):
        from ._cloudflare import read_account

        return read_account(str(source), api_url=api_url)
    return read_state(source)
