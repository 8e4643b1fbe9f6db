"""The package reads downward only: cli -> review | verifier | state -> model -> errors, with no import cycle,
and only the plan, the CLI stack reader and the repository's components touch Pulumi."""

from __future__ import annotations

import ast
from pathlib import Path

from tests._project import PROJECT_ROOT

PACKAGE = PROJECT_ROOT / "linked_apps"
LAYER = {"errors": 0, "model": 1, "state": 2, "verifier": 2, "review": 2, "cli": 3}


def _module(path: Path) -> str:
    parts = list(path.relative_to(PROJECT_ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every module of the package that `path` imports, anywhere in the file (type-checking blocks included)."""
    here = _module(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            target = ".".join([*base, *(node.module.split(".") if node.module else [])])
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {m for m in found if m.startswith("linked_apps.")}


def _modules() -> dict[str, Path]:
    return {_module(p): p for p in PACKAGE.rglob("*.py")}


def _layer(module: str) -> int | None:
    parts = module.split(".")
    return LAYER.get(parts[1]) if len(parts) > 1 else None


def test_every_import_reads_downward_or_sideways_within_its_own_subpackage() -> None:
    modules = _modules()
    upward = []
    for module, path in modules.items():
        mine = _layer(module)
        for target in _imports(path) & set(modules):
            theirs = _layer(target)
            if mine is None or theirs is None:
                continue
            same_subpackage = target.split(".")[1] == module.split(".")[1]
            if not same_subpackage and theirs >= mine:
                upward.append(f"{module} -> {target}")
    assert upward == []


def test_no_import_cycle_between_modules() -> None:
    modules = _modules()
    edges = {m: {t for t in _imports(p) if t in modules and t != m and not modules[t].name == "__init__.py"}
             for m, p in modules.items()}
    state: dict[str, int] = {}
    cycles: list[str] = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join([*trail[trail.index(nxt):], nxt]) if nxt in trail else f"{node} -> {nxt}")
            elif nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])
    assert cycles == []


def test_only_the_plan_and_the_stack_reader_import_pulumi_inside_the_package() -> None:
    # plan runs the program on the SDK; read_stack drives the Pulumi CLI through the Automation API.
    users = sorted(_module(p) for p in PACKAGE.rglob("*.py")
                   if any(isinstance(n, (ast.Import, ast.ImportFrom))
                          and any(name.split(".")[0] in {"pulumi", "pulumi_cloudflare"}
                                  for name in ([a.name for a in n.names] if isinstance(n, ast.Import)
                                               else [n.module or ""]))
                          for n in ast.walk(ast.parse(p.read_text(encoding="utf-8")))))
    assert users == ["linked_apps.review.plan", "linked_apps.state._pulumi"]
