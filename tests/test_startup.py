"""Startup: `linked-apps --help` lists every command without importing what the commands need to run."""

from __future__ import annotations

import subprocess
import sys

from components.cli import COMMANDS
from components.plan import PROJECT_ROOT

PROBE = (
    "import sys\n"
    "from components.cli import main\n"
    "try:\n    main(sys.argv[1:])\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n"
    "heavy = ('pulumi', 'pulumi_cloudflare', 'pydantic', 'yaml', 'httpx', 'cryptography', 'asyncio')\n"
    "print('LOADED', sorted({m.split('.')[0] for m in sys.modules} & set(heavy)))\n"
)


def test_help_lists_every_command_and_loads_nothing_heavy() -> None:
    out = subprocess.run([sys.executable, "-c", PROBE, "--help"], cwd=PROJECT_ROOT, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-1] == "LOADED []"
    listed = out.stdout.split("Commands:", 1)[1]
    assert all(f"  {name} " in listed for name in COMMANDS)
