"""Startup: `linked-apps --help` lists every command without importing what the commands need to run."""

from __future__ import annotations

from click.testing import CliRunner

from components.cli import COMMANDS, main
from tests._startup_probe import loaded_by


def test_help_loads_nothing_heavy() -> None:
    assert loaded_by("--help") == (0, set())


def test_help_lists_every_command() -> None:
    listed = CliRunner().invoke(main, ["--help"]).output.split("Commands:", 1)[1]
    assert all(f"  {name} " in listed for name in COMMANDS)
