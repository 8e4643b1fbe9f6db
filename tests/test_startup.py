"""Startup: `linked-apps --help` lists every command without importing what the commands need to run."""

from __future__ import annotations

from click.testing import CliRunner

from linked_apps.cli import COMMANDS, main
from tests._startup_probe import loaded_by


def test_help_loads_nothing_heavy() -> None:
    assert loaded_by("--help") == (0, set())


def test_help_lists_every_command() -> None:
    listed = CliRunner().invoke(main, ["--help"]).output.split("Commands:", 1)[1]
    assert all(f"  {name} " in listed for name in COMMANDS)


def test_diff_needs_no_program_run() -> None:
    # The desired side is the topology's trust graph and violations: no mock runtime, no pulumi_cloudflare.
    code, loaded = loaded_by("diff", "--stack", "dev", "--against", "examples/dev-state.json")
    assert code == 0
    assert not loaded & {"pulumi", "pulumi_cloudflare"}
