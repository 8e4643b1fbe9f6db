"""`reach` at scale: 10,000 apps and 50,000 links, one run, one core.

A seeded random trust graph (links between random pairs, no self-links or duplicates), so nearly every app
sits in one large strongly connected component: the worst case for reach, which then visits every app.
Measures building the TrustGraph, then the questions: reach (the BFS alone, and with the shortest path to
every reached app, as `linked-apps reach --format json` renders it), who-calls, one shortest path, explain,
the four assertion kinds, and end to end from a `pulumi stack output --json` file of that size. Usage:

    python bench/reach_scale.py [--apps 10000] [--links 50000] [--repeat 5] [--seed 7]

Prints a table and, last, one JSON object with the figures (milliseconds, median of the repeats).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from linked_apps.model.assertions import (  # noqa: E402
    LinkAssertion,
    NeverReachesAssertion,
    OnlyCallersAssertion,
    ReachesAssertion,
    check_assertions,
)
from linked_apps.model.graph import App, Link, TrustGraph  # noqa: E402
from linked_apps.model.paths import callers, explain, reach, shortest_path  # noqa: E402
from linked_apps.state import read_state  # noqa: E402


def random_edges(apps: int, links: int, seed: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    names = [f"app{i}" for i in range(apps)]
    edges: set[tuple[str, str]] = set()
    while len(edges) < links:
        a, b = rng.randrange(apps), rng.randrange(apps)
        if a != b:
            edges.add((names[a], names[b]))
    return sorted(edges)


def build(apps: int, edges: list[tuple[str, str]]) -> TrustGraph:
    return TrustGraph(
        [App(f"app{i}", "self_hosted", uid=f"uid-{i}") for i in range(apps)],
        [Link(a, b, f"pol-{a}", f"Linked app token: {a}") for a, b in edges],
    )


def outputs_document(apps: int, edges: list[tuple[str, str]]) -> dict[str, Any]:
    """The same graph as `pulumi stack output --json` of this project's program."""
    return {
        "team_domain": "acme.cloudflareaccess.com",
        "apps": {f"app{i}": {"type": "self_hosted", "managed": True, "uid": f"00000000-0000-4000-8000-{i:012d}"}
                 for i in range(apps)},
        "links": [{"from": a, "to": b, "policy_id": f"pol-{a}"} for a, b in edges],
    }


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    runs, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        runs.append((time.perf_counter() - start) * 1000)
    return statistics.median(runs), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--apps", type=int, default=10_000)
    parser.add_argument("--links", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    edges = random_edges(args.apps, args.links, args.seed)
    build_ms, graph = timed(lambda: build(args.apps, edges), args.repeat)
    origin, far = "app0", f"app{args.apps - 1}"

    reach_ms, found = timed(lambda: reach(graph, origin), args.repeat)
    paths_ms, _ = timed(lambda: [found.path(app) for app in reach(graph, origin)], args.repeat)
    callers_ms, into = timed(lambda: callers(graph, far), args.repeat)
    path_ms, path = timed(lambda: shortest_path(graph, origin, far), args.repeat)
    explain_ms, _ = timed(lambda: explain(graph, origin, far), args.repeat)
    assertions = [
        LinkAssertion.model_validate({"from": origin, "to": far, "expect": "deny"}),
        OnlyCallersAssertion.model_validate({"to": far, "only": [origin]}),
        ReachesAssertion.model_validate({"from": origin, "reaches": [far]}),
        NeverReachesAssertion.model_validate({"from": origin, "never_reaches": [far, "app1", "app2"]}),
    ]
    assert_ms, failed = timed(lambda: check_assertions(assertions, graph, "bench:assertions"), args.repeat)
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "outputs.json"
        state.write_text(json.dumps(outputs_document(args.apps, edges)))
        state_ms, _ = timed(lambda: reach(read_state(state), origin), args.repeat)

    rows = [
        ("build TrustGraph", build_ms),
        (f"reach {origin} (BFS)", reach_ms),
        ("reach + shortest path to every app", paths_ms),
        (f"who-calls {far}", callers_ms),
        (f"shortest path {origin} -> {far}", path_ms),
        (f"explain {origin} {far}", explain_ms),
        (f"{len(assertions)} assertions (one reach each)", assert_ms),
        ("read stack outputs file + reach", state_ms),
    ]
    print(f"{args.apps} apps, {len(edges)} links, seed {args.seed}, median of {args.repeat}; "
          f"reach({origin}) finds {len(found)} apps, max {max(found.hops.values(), default=0)} hops; "
          f"who-calls({far}) finds {len(into)}; shortest path {len(path or [])} hops; "
          f"{len(failed)} assertions fail")
    for label, ms in rows:
        print(f"  {label:<40} {ms:8.1f} ms")
    print(json.dumps({
        "apps": args.apps, "links": len(edges), "reached": len(found),
        "build_ms": round(build_ms, 1), "reach_ms": round(reach_ms, 1), "reach_with_paths_ms": round(paths_ms, 1),
        "who_calls_ms": round(callers_ms, 1), "shortest_path_ms": round(path_ms, 1),
        "explain_ms": round(explain_ms, 1), "assertions_ms": round(assert_ms, 1),
        "state_file_and_reach_ms": round(state_ms, 1),
    }))


if __name__ == "__main__":
    main()
