"""Mutation testing of the security decisions, one module at a time (`./dev mutate`; README "Mutation testing").

    ./dev mutate                        every module listed under [tool.mutmut] only_mutate, one after another
    ./dev mutate _keys rules            some modules (a file path, a dotted name or the module's last part)
    ./dev mutate --again [MODULE ...]   only the mutants not killed yet: survivors (after adding tests) and unrun
                                        (all of a module never run)
    ./dev mutate --report [MODULE ...]  no run: the scores and survivors of the last run (--markdown: as a table)

mutmut (configured in pyproject.toml) copies the package into mutants/, records which of the selected tests run
each function, and runs, for each mutant, only those tests, stopping at the first failure. Mutants run in at most
MUTATE_CHILDREN (default 2) processes, each under a CPU-time limit mutmut derives from the tests' own durations.
Survivors listed in mutation/survivors.md (equivalent or harmless, each with its reason) are reported as known;
any other survivor is new, and the command exits 1.
"""

from __future__ import annotations

import ast
import difflib
import functools
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SURVIVORS = ROOT / "mutation" / "survivors.md"
KILLED = {1, 3, 24, -24, 36, 37, 152, 255}  # a failing test, pytest's internal error, or a timeout (mutmut's codes)
SURVIVED = {0}
NO_TESTS = {5, 33}  # no selected test runs the mutated function: a survivor too


def configured_modules() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    return list(config["tool"]["mutmut"]["only_mutate"])


def resolve(names: list[str], modules: list[str]) -> list[str]:
    """Module paths for command-line names (`_keys`, `linked_apps.verifier._keys`, a path); exit 2 on a miss."""
    if not names:
        return modules
    chosen = []
    for name in names:
        stem = name.removesuffix(".py").replace(".", "/")
        hits = [m for m in modules if m.removesuffix(".py") == stem or Path(m).stem == stem
                or m.removesuffix(".py").endswith("/" + stem)]
        if len(hits) != 1:
            sys.exit(f"mutate: {name}: {'matches ' + ', '.join(hits) if hits else 'not a mutated module'}; "
                     f"choose one of: {', '.join(Path(m).stem for m in modules)}")
        chosen += hits
    return chosen


def dotted(module: str) -> str:
    return module.removesuffix(".py").replace("/", ".")


def results(module: str) -> dict[str, int | None]:
    """mutant name -> mutmut's exit code for it (None: not run yet), from mutants/<module>.meta."""
    meta = ROOT / "mutants" / (module + ".meta")
    if not meta.exists():
        return {}
    return json.loads(meta.read_text("utf-8"))["exit_code_by_key"]


def known_survivors() -> dict[str, str]:
    """`- `mutant name`: reason` lines of survivors.md."""
    if not SURVIVORS.exists():
        return {}
    return dict(re.findall(r"^- `([^`]+)`:\s*(.+)$", SURVIVORS.read_text("utf-8"), re.M))


@functools.cache
def _functions(module: str) -> dict[str, list[str]]:
    """Function name -> source lines, of mutmut's copy of `module` (which holds each mutant as a function)."""
    source = (ROOT / "mutants" / module).read_text("utf-8")
    lines = source.splitlines()
    return {node.name: lines[node.lineno - 1:node.end_lineno]
            for node in ast.walk(ast.parse(source)) if isinstance(node, ast.FunctionDef)}


def change(module: str, mutant: str) -> str:
    """What `mutant` changes, as `old -> new` of the lines that differ."""
    name = mutant.rsplit(".", 1)[-1]
    functions = _functions(module)
    orig, mutated = functions.get(name.rsplit("__mutmut_", 1)[0] + "__mutmut_orig"), functions.get(name)
    if orig is None or mutated is None:
        return "?"
    lines = [line for line in difflib.unified_diff(orig[1:], mutated[1:], lineterm="", n=0)
             if line[:1] in "+-" and line[:3] not in ("---", "+++")]
    old = " / ".join(l[1:].strip() for l in lines if l[0] == "-")
    new = " / ".join(l[1:].strip() for l in lines if l[0] == "+")
    return f"{old}  ->  {new}"


def mutmut(*args: str) -> int:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.call([sys.executable, "-m", "mutmut", *args], cwd=ROOT, env=env)


def report(modules: list[str], *, markdown: bool = False) -> int:
    known = known_survivors()
    new: list[str] = []
    if markdown:
        print("| module | mutants | killed | known survivors | new survivors | not run | score | score less known |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    else:
        print(f"\n{'module':<34} {'mutants':>7} {'killed':>6} {'known':>5} {'new':>4} {'unrun':>5} {'score':>6} "
              f"{'less known':>10}")
    for module in modules:
        codes = results(module)
        ran = {k: c for k, c in codes.items() if c is not None}
        killed = sum(c in KILLED for c in ran.values())
        alive = sorted(k for k, c in ran.items() if c not in KILLED)
        fresh = [k for k in alive if k not in known]
        new += [f"{k}  ({'no test runs it' if ran[k] in NO_TESTS else 'survived' if ran[k] in SURVIVED else f'exit {ran[k]}'})"
                f"\n      {change(module, k)}" for k in fresh]
        score = f"{100 * killed / len(ran):.1f}%" if ran else "-"
        judged = len(ran) - (len(alive) - len(fresh))  # known survivors are equivalent or harmless: not counted
        net = f"{100 * killed / judged:.1f}%" if judged else "-"
        if markdown:
            print(f"| `{module}` | {len(codes)} | {killed} | {len(alive) - len(fresh)} | {len(fresh)} | "
                  f"{len(codes) - len(ran)} | {score} | {net} |")
        else:
            print(f"{module:<34} {len(codes):>7} {killed:>6} {len(alive) - len(fresh):>5} {len(fresh):>4} "
                  f"{len(codes) - len(ran):>5} {score:>6} {net:>10}")
    print("\nscore = killed / mutants run; less known = killed / (mutants run - known survivors); known = listed in "
          "mutation/survivors.md as equivalent or harmless")
    if new:
        print(f"\n{len(new)} new survivor(s) (see one with `./dev mutmut show NAME`; kill it with a test, or list it "
              "in mutation/survivors.md with its reason):")
        print("\n".join(f"  {line}" for line in new))
        return 1
    return 0


def forget_plain_copies(modules: list[str]) -> None:
    """A module newly added to only_mutate may sit in mutants/ as a plain copy from an earlier run; mutmut takes
    a copy newer than its source as up to date and would never mutate it, so such a copy (no .meta) goes, and
    with it the record of which tests run which function (it knows none of the new module's)."""
    for module in modules:
        copy = ROOT / "mutants" / module
        if copy.exists() and not copy.with_name(copy.name + ".meta").exists():
            copy.unlink()
            (ROOT / "mutants" / "mutmut-stats.json").unlink(missing_ok=True)


def main(argv: list[str]) -> int:
    again = "--again" in argv
    only_report = "--report" in argv
    modules = resolve([a for a in argv if not a.startswith("--")], configured_modules())
    children = os.environ.get("MUTATE_CHILDREN", "2")
    if not only_report:
        forget_plain_copies(modules)
        for module in modules:
            print(f"\n== {module}", flush=True)
            codes = results(module)
            if again and codes:
                names = [k for k, c in codes.items() if c not in KILLED]  # survivors and unrun
                if not names:
                    continue
            else:  # a first run, or --again on a module never run
                names = [dotted(module) + ".*"]
            status = mutmut("run", "--max-children", children, *names)
            if status != 0:
                print(f"mutate: mutmut stopped on {module} (exit {status})", file=sys.stderr)
                return 2
    return report(modules, markdown="--markdown" in argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
