"""One CLI grammar: --format on every command, --state for deployed state, apps named one way, every error one
line with exit 2, and help texts that state the exit codes each command really returns (as the README does)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from linked_apps.cli import COMMANDS, main
from tests._project import PROJECT_ROOT

EXAMPLE_STATE = str(PROJECT_ROOT / "examples" / "dev-state.json")
DEV = ["--stack", "dev"]


def run(*args: str, stdin: str | None = None):
    return CliRunner().invoke(main, list(args), input=stdin)


def help_of(command: str) -> str:
    result = run(command, "--help")
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())


def documented_codes(command: str) -> set[int]:
    """The exit codes a command's --help lists after `Exit codes:`."""
    found = re.search(r"Exit codes: (.*?)(?:\.|$)", help_of(command))
    assert found, f"{command} --help states no exit codes"
    return {int(code) for code in re.findall(r"(?:^|, )(\d) ", found.group(1))}


def readme_codes() -> dict[str, set[int]]:
    """The README's command table: | `linked-apps CMD ...` | what | exit codes |."""
    table: dict[str, set[int]] = {}
    for line in (PROJECT_ROOT / "README.md").read_text(encoding="utf-8").splitlines():
        row = re.match(r"\| `linked-apps ([a-z-]+)[^`]*` \|.*\| ([0-9, ]+) \|$", line)
        if row:
            table[row.group(1)] = {int(c) for c in row.group(2).split(",")}
    return table


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_takes_format(command: str) -> None:
    assert "--format" in help_of(command)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_help_and_readme_state_the_same_exit_codes(command: str) -> None:
    assert documented_codes(command) == readme_codes()[command]


def test_the_readme_lists_every_command() -> None:
    assert set(readme_codes()) == set(COMMANDS)


# Each documented exit code, produced for real. A config that breaks a rule: a link into a SaaS app.
BROKEN = """config:
  linked-apps:accountId: 0123456789abcdef0123456789abcdef
  linked-apps:teamDomain: acme.cloudflareaccess.com
  linked-apps:apps:
    a: {type: self_hosted, domain: a.acme.com}
    m: {type: saas, redirectUris: ["https://m.acme.com/cb"]}
  linked-apps:links:
    - {from: a, to: m}
"""


@pytest.fixture
def broken(tmp_path: Path) -> str:
    path = tmp_path / "Pulumi.broken.yaml"
    path.write_text(BROKEN)
    return str(path)


@pytest.mark.parametrize("command, args, code", [
    ("check", DEV, 0),
    ("check", ["--config", "{broken}"], 1),
    ("check", ["--stack", "nope"], 2),
    ("who-calls", ["payroll-api", *DEV], 0),
    ("who-calls", ["nope", *DEV], 2),
    ("reach", ["hr-portal", "--state", EXAMPLE_STATE], 0),
    ("reach", ["nope", "--state", EXAMPLE_STATE], 2),
    ("explain", ["hr-portal", "ledger", *DEV], 0),
    ("explain", ["ledger", "hr-portal", *DEV], 1),
    ("explain", ["hr-portal", *DEV], 2),
    ("diff", [*DEV, "--state", EXAMPLE_STATE], 0),
    ("diff", ["--config", "{broken}", "--state", EXAMPLE_STATE, "--exit-code"], 1),
    ("diff", [*DEV, "--state", "/nonexistent.json"], 2),
    ("graph", DEV, 0),
    ("graph", [*DEV, "--state", EXAMPLE_STATE], 2),
    ("verify", ["payroll-api", "--state", EXAMPLE_STATE, "--cf-access-token", "not-a-jwt"], 1),
    ("verify", ["nope", "--state", EXAMPLE_STATE, "--cf-access-token", "not-a-jwt"], 2),
])
def test_documented_exit_codes_happen(command: str, args: list[str], code: int, broken: str) -> None:
    result = run(command, *(a.replace("{broken}", broken) for a in args))
    assert result.exit_code == code, result.output
    assert code in documented_codes(command)


@pytest.mark.parametrize("args", [
    ["nope"],
    ["verify", "--bogus"],
    ["plan", "--config", "/"],                       # click's own file check: a directory
    ["diff", *DEV],                                  # required --state missing
    ["graph", "--format", "png", *DEV],
    ["check", "--config", "/nonexistent/Pulumi.x.yaml"],
    ["reach", "--from", "hr-portal", "payroll-api", *DEV],   # the app named twice, differently
    ["who-calls", *DEV],                             # no app
    ["verify", "payroll-api", "--state", EXAMPLE_STATE],     # no token
])
def test_every_error_is_one_line_naming_the_culprit_with_exit_2(args: list[str]) -> None:
    result = run(*args)
    assert result.exit_code == 2, result.output
    lines = result.output.splitlines()
    assert len(lines) == 1 and re.match(r"linked-apps: [^:]+: \S", lines[0]), result.output
    assert "Traceback" not in result.output and "Usage:" not in result.output


def test_state_and_against_are_one_option_everywhere(dev_export: Path | None = None) -> None:
    for command, extra in [("diff", DEV), ("check", DEV), ("graph", []), ("reach", ["hr-portal"])]:
        by_state = run(command, *extra, "--state", EXAMPLE_STATE, "--format", "json")
        by_against = run(command, *extra, "--against", EXAMPLE_STATE, "--format", "json")
        assert by_state.exit_code in (0, 1) and by_state.output == by_against.output, command


def test_apps_by_position_or_by_role_option_give_one_answer() -> None:
    assert run("reach", "hr-portal", *DEV).output == run("reach", "--from", "hr-portal", *DEV).output
    assert run("who-calls", "ledger", *DEV).output == run("who-calls", "--to", "ledger", *DEV).output
    assert (run("explain", "hr-portal", "ledger", *DEV).output
            == run("explain", "--from", "hr-portal", "--to", "ledger", *DEV).output)
    by_option = run("verify", "--to", "payroll-api", "--state", EXAMPLE_STATE, "--cf-access-token", "x", "--json")
    by_position = run("verify", "payroll-api", "--state", EXAMPLE_STATE, "--cf-access-token", "x", "--format", "json")
    assert by_option.exit_code == 1 and by_option.output == by_position.output


def test_graph_json_is_the_trust_graph() -> None:
    import json

    doc = json.loads(run("graph", *DEV, "--format", "json").output)
    assert {(l["from"], l["to"]) for l in doc["links"]} >= {("hr-portal", "payroll-api"), ("payroll-api", "ledger")}
