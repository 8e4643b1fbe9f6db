"""The README's commands run as shown from a clone: every `linked-apps` line of a `bash` block exits as a command
should, and every `$ linked-apps ...` of a `console` block prints what the README says it prints (`...` stands
for lines left out). `text` blocks are synopses or need what no clone holds (the Pulumi CLI, a token, an
account); they are not run."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests._project import PROJECT_ROOT

README = PROJECT_ROOT / "README.md"


def _blocks() -> list[tuple[str, int, list[str]]]:
    """`(language, first line number, lines)` of every fenced block."""
    blocks, lang, start, lines = [], None, 0, []
    for number, line in enumerate(README.read_text(encoding="utf-8").splitlines(), start=1):
        if line.startswith("```"):
            if lang is None:
                lang, start, lines = line[3:].strip(), number + 1, []
            else:
                blocks.append((lang, start, lines))
                lang = None
        elif lang is not None:
            lines.append(line)
    return blocks


def _argv(command: str) -> list[str]:
    words = shlex.split(command, comments=True)
    if words[:1] == ["./dev"]:
        words = words[1:]
    assert words[0] == "linked-apps", command
    return [sys.executable, "-m", "linked_apps", *words[1:]]


def _bash_commands() -> list[tuple[str, str]]:
    return [(f"README.md:{start + i}", line) for lang, start, lines in _blocks() if lang == "bash"
            for i, line in enumerate(lines) if re.match(r"(\./dev )?linked-apps ", line)]


def _console_commands() -> list[tuple[str, str, list[str]]]:
    found = []
    for lang, start, lines in _blocks():
        if lang != "console":
            continue
        for i, line in enumerate(lines):
            if line.startswith("$ linked-apps "):
                shown = []
                for out in lines[i + 1:]:
                    if out.startswith("$ "):
                        break
                    shown.append(out)
                while shown and not shown[-1]:
                    shown.pop()
                found.append((f"README.md:{start + i}", line[2:], shown))
    return found


def _run(command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(_argv(command), cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("where, command", _bash_commands(), ids=[w for w, _ in _bash_commands()])
def test_bash_commands_run(where: str, command: str) -> None:
    done = _run(command)
    assert done.returncode in (0, 1), f"{where}: {command}\n{done.stderr}"
    assert done.stdout.strip() and not done.stderr.strip(), f"{where}: {done.stderr}"


@pytest.mark.parametrize("where, command, shown", _console_commands(), ids=[w for w, _, _ in _console_commands()])
def test_console_examples_print_what_the_readme_shows(where: str, command: str, shown: list[str]) -> None:
    done = _run(command)
    assert done.returncode in (0, 1), f"{where}: {done.stderr}"
    printed = done.stdout.rstrip("\n").splitlines()
    if "..." not in shown:
        assert printed == shown, where
        return
    # `...` stands for lines left out: what is shown must appear in order, and the last shown line ends it.
    at = 0
    for line in (s for s in shown if s != "..."):
        assert line in printed[at:], f"{where}: {line!r} not printed"
        at = printed.index(line, at) + 1
    assert shown[-1] == "..." or at == len(printed), where


def test_the_readme_runs_some_of_each() -> None:
    assert len(_bash_commands()) >= 4 and len(_console_commands()) >= 5
