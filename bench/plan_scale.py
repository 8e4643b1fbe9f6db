"""Plan time for N apps and 2N links against the floor of the same runtime, in one run.

The floor is a bare program that registers the same number of raw ZeroTrustAccessApplication and
ZeroTrustAccessPolicy resources under the same mocks, with no components, config parsing or rules.
Each measurement runs in a fresh context and event loop, as `plan` does. Usage:

    python bench/plan_scale.py [--sizes 30,100,300] [--repeat 3] [--wrap]

--wrap adds links from the last tier back to the self-hosted apps of the first, so every chain closes a cycle:
the program defers one link per cycle (rules.deferred_links) and the plan must still pass.

Prints a table and, last, one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from linked_apps.review.plan import plan  # noqa: E402

PROGRAM = ROOT / "__main__.py"

ACCOUNT = "0123456789abcdef0123456789abcdef"


TIERS = 4


def topology(n: int, wrap: bool = False) -> dict:
    """N apps in four tiers (edge SaaS/MCP apps, then self-hosted frontends, APIs, backends) and exactly 2N links,
    each from an app to apps of the next tier: the shape of real service meshes, with bounded chain depth."""
    if n < 20:
        raise SystemExit("plan_scale: use at least 20 apps (four tiers must hold 2N distinct links)")
    per = n // TIERS
    tiers = [[f"t{t}app{i}" for i in range(per if t < TIERS - 1 else n - per * (TIERS - 1))] for t in range(TIERS)]
    apps = {}
    for t, names in enumerate(tiers):
        for name in names:
            if t == 0 and int(name.rsplit("app", 1)[1]) % 3 == 0:
                apps[name] = {"type": "saas", "redirectUris": [f"https://{name}.acme.com/cb"]}
            else:
                apps[name] = {"type": "self_hosted", "domain": f"{name}.acme.com"}
    edges: list[tuple[str, str]] = []
    k = 0
    while len(edges) < 2 * n:
        for t in range(TIERS - 1):
            for i, name in enumerate(tiers[t]):
                nxt = tiers[t + 1]
                target = nxt[(i + k) % len(nxt)]
                if len(edges) < 2 * n and (name, target) not in edges:
                    edges.append((name, target))
        k += 1
    if wrap:  # the back end calls the front end: cycles through all four tiers
        receivers = [name for name in tiers[0] if apps[name]["type"] == "self_hosted"]
        edges += [(name, receivers[i % len(receivers)]) for i, name in enumerate(tiers[-1])]
    return {"linked-apps:accountId": ACCOUNT, "linked-apps:teamDomain": "acme.cloudflareaccess.com",
            "linked-apps:apps": apps, "linked-apps:links": [{"from": a, "to": b} for a, b in edges]}


# The floor: the same Cloudflare resources with the same wiring (uids into policies, policy ids into apps),
# registered raw: no components, no config model, no rules, no outputs.
FLOOR_PROGRAM = """
import json, pulumi_cloudflare as cf
spec = json.load(open({spec!r}))
built, policy = {{}}, {{}}
for name in spec["order"]:
    app = spec["apps"][name]
    ids = []
    for src in app["sources"]:
        if src not in policy:
            policy[src] = cf.ZeroTrustAccessPolicy(src + "-p", account_id="acc", name=src, decision="non_identity",
                                                   includes=[{{"linked_app_token": {{"app_uid": built[src].id}}}}])
        ids.append(policy[src].id)
    built[name] = cf.ZeroTrustAccessApplication(
        name, account_id="acc", name=name, type=app["type"], domain=name + ".acme.com",
        policies=[{{"id": pid, "precedence": i + 1}} for i, pid in enumerate(ids)] or None)
"""


def floor(cfg: dict, workdir: Path) -> float:
    from linked_apps.model.rules import AppFacts, creation_order, deferred_links

    apps = cfg["linked-apps:apps"]
    edges = [(l["from"], l["to"]) for l in cfg["linked-apps:links"]]
    deferred = set(deferred_links({n: AppFacts(a["type"]) for n, a in apps.items()}, edges))
    edges = [e for e in edges if e not in deferred]  # the floor leaves them out: the next up attaches them
    spec = {"order": creation_order(apps, edges),
            "apps": {n: {"type": a["type"], "sources": sorted(s for s, t in edges if t == n)} for n, a in apps.items()}}
    spec_path = workdir / f"floor-{len(apps)}.json"
    spec_path.write_text(json.dumps(spec))
    program = workdir / f"floor-{len(apps)}.py"
    program.write_text(FLOOR_PROGRAM.format(spec=str(spec_path)))
    empty = {"linked-apps:accountId": ACCOUNT, "linked-apps:teamDomain": "acme.cloudflareaccess.com"}
    t0 = time.perf_counter()
    result = plan(empty, program=program)
    elapsed = time.perf_counter() - t0
    assert len(result.resources) == len(apps) + len({s for s, _ in edges}), "the floor must register the same resources"
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="30,100,300")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--wrap", action="store_true", help="close every chain into a cycle (mutual trust)")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    import pulumi_cloudflare  # noqa: F401  - import cost is paid once, outside every timing

    plan(topology(20), program=PROGRAM)  # warm-up
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            cfg = topology(n, wrap=args.wrap)
            runs, floors, resources = [], [], None
            for _ in range(args.repeat):  # interleaved, so a busy moment hits both sides alike
                t0 = time.perf_counter()
                result = plan(cfg, program=PROGRAM, resolve_outputs=False)  # as `linked-apps plan` runs it
                runs.append(time.perf_counter() - t0)
                assert not result.violations, result.violations[:3]
                assert bool(result.deferred) == args.wrap, result.deferred[:3]
                resources = result.resources
                floors.append(floor(cfg, Path(tmp)))
            # The minimum is the run least disturbed by the machine; medians are printed too.
            t, f = min(runs), min(floors)
            rows.append({"apps": n, "links": len(cfg["linked-apps:links"]), "deferred": len(result.deferred),
                         "resources": len(resources),
                         "plan_s": round(t, 3), "floor_s": round(f, 3), "ratio": round(t / f, 3),
                         "plan_median_s": round(statistics.median(runs), 3),
                         "floor_median_s": round(statistics.median(floors), 3),
                         "plan_ms_per_resource": round(1000 * t / len(resources), 3),
                         "overhead_ms_per_app": round(1000 * (t - f) / n, 3)})
    print(f"{'apps':>5} {'links':>6} {'resources':>9} {'plan s':>8} {'floor s':>8} {'ratio':>6} {'ms/res':>7} "
          f"{'ours ms/app':>11}")
    for r in rows:
        print(f"{r['apps']:>5} {r['links']:>6} {r['resources']:>9} {r['plan_s']:>8.3f} {r['floor_s']:>8.3f} "
              f"{r['ratio']:>6.3f} {r['plan_ms_per_resource']:>7.3f} {r['overhead_ms_per_app']:>11.3f}")
    first, last = rows[0], rows[-1]
    size = last["apps"] / first["apps"]
    growth = (last["plan_s"] / first["plan_s"]) / size
    floor_growth = (last["floor_s"] / first["floor_s"]) / size
    ours_growth = ((last["plan_s"] - last["floor_s"]) / (first["plan_s"] - first["floor_s"])) / size
    # The floor itself grows faster than linear (the SDK's scheduling of wired resources); what linked-apps adds
    # on top of it (components, config model, rules) is what this project controls.
    print(f"growth {first['apps']}->{last['apps']} apps (x{size:.0f}), 1.0 = linear: plan {growth:.2f}, "
          f"floor {floor_growth:.2f}, linked-apps' own overhead {ours_growth:.2f}")
    print(json.dumps({"rows": rows, "linearity": round(growth, 3), "floor_linearity": round(floor_growth, 3),
                      "overhead_linearity": round(ours_growth, 3)}))


if __name__ == "__main__":
    main()
