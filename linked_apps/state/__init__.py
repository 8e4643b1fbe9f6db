"""Readers of deployed trust: a `pulumi stack export`, a `pulumi stack output --json` file, or a stack read
through the Pulumi CLI. Each returns the one currency between jobs, a `TrustGraph`."""

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

__all__ = ["APP_TYPE", "POLICY_TYPE", "STACK_TYPE", "UNKNOWN_TYPE", "graph_from_export", "graph_from_outputs",
           "graph_from_resources", "read_stack", "read_state"]
