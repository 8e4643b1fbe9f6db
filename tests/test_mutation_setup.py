"""The mutation-testing setup (`./dev mutate`, mutation/run.py) stays runnable: what pyproject.toml names exists,
survivors.md names only mutated modules, and the runner's bookkeeping does what it says. The run itself is slow
and not in CI; these checks are what a fresh clone needs for it to start."""

from __future__ import annotations

import importlib.util
import json
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("mutation_run", ROOT / "mutation" / "run.py")
run = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
spec.loader.exec_module(run)  # type: ignore[union-attr]
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["tool"]["mutmut"]


def test_every_mutated_module_and_selected_test_file_exists() -> None:
    for path in CONFIG["only_mutate"] + CONFIG["pytest_add_cli_args_test_selection"]:
        assert (ROOT / path).is_file(), path


def test_every_known_survivor_belongs_to_a_mutated_module_and_gives_a_reason() -> None:
    modules = {run.dotted(m) for m in CONFIG["only_mutate"]}
    known = run.known_survivors()
    assert known
    for name, reason in known.items():
        assert name.rsplit(".", 1)[0] in modules, name
        assert "__mutmut_" in name and reason.split(":")[0] in ("equivalent", "harmless", "equivalent in outcome"), \
            (name, reason)


@pytest.mark.parametrize(("name", "expected"), [("_keys", "linked_apps/verifier/_keys.py"),
                                                ("linked_apps.model.rules", "linked_apps/model/rules.py"),
                                                ("linked_apps/review/diff.py", "linked_apps/review/diff.py")])
def test_a_module_is_named_by_its_last_part_dotted_name_or_path(name: str, expected: str) -> None:
    assert run.resolve([name], run.configured_modules()) == [expected]


def test_a_name_that_is_no_mutated_module_exits_naming_the_choices() -> None:
    with pytest.raises(SystemExit, match="nope: not a mutated module; choose one of: .*_keys"):
        run.resolve(["nope"], run.configured_modules())


def test_a_plain_copy_of_a_newly_listed_module_is_removed_so_mutmut_mutates_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(run, "ROOT", tmp_path)
    mutated, plain = tmp_path / "mutants/pkg/a.py", tmp_path / "mutants/pkg/b.py"
    mutated.parent.mkdir(parents=True)
    for copy in (mutated, plain):
        copy.write_text("x = 1\n")
    mutated.with_name("a.py.meta").write_text("{}")
    stats = tmp_path / "mutants/mutmut-stats.json"
    stats.write_text("{}")
    run.forget_plain_copies(["pkg/a.py"])
    assert stats.exists()
    run.forget_plain_copies(["pkg/a.py", "pkg/b.py", "pkg/c.py"])
    assert mutated.exists() and not plain.exists() and not stats.exists()


def test_the_report_counts_kills_known_and_new_survivors_and_exits_1_on_a_new_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(run, "ROOT", tmp_path)
    monkeypatch.setattr(run, "SURVIVORS", tmp_path / "survivors.md")
    meta = tmp_path / "mutants/pkg/a.py.meta"
    meta.parent.mkdir(parents=True)
    (tmp_path / "mutants/pkg/a.py").write_text("")
    codes = {"pkg.a.x_f__mutmut_1": 1, "pkg.a.x_f__mutmut_2": 0, "pkg.a.x_f__mutmut_3": 0, "pkg.a.x_f__mutmut_4": None}
    meta.write_text(json.dumps({"exit_code_by_key": codes}))
    run.SURVIVORS.write_text("- `pkg.a.x_f__mutmut_2`: equivalent: a reason\n")
    assert run.report(["pkg/a.py"]) == 1
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("pkg/a.py")).split()
    assert row[1:] == ["4", "1", "1", "1", "1", "33.3%", "50.0%"]
    assert "pkg.a.x_f__mutmut_3  (survived)" in out and "pkg.a.x_f__mutmut_2  (" not in out
    run.SURVIVORS.write_text(run.SURVIVORS.read_text() + "- `pkg.a.x_f__mutmut_3`: harmless: another\n")
    assert run.report(["pkg/a.py"]) == 0
