"""Which packages a command loads: it runs `linked-apps ARGS` in a fresh interpreter and reports the exit code
and the heavy packages found in `sys.modules` afterwards (startup budgets are about what is imported)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("pulumi", "pulumi_cloudflare", "pydantic", "yaml", "httpx", "cryptography", "asyncio")

_PROBE = (
    "import json, sys\n"
    "from linked_apps.cli import main\n"
    "try:\n    main(sys.argv[1:])\n    code = 0\nexcept SystemExit as exc:\n    code = exc.code or 0\n"
    "print('\\nPROBE', json.dumps([code, sorted({m.split('.')[0] for m in sys.modules})]))\n"
)


def loaded_by(*args: str, stdin: str | None = None) -> tuple[int, set[str]]:
    """`(exit code, heavy packages loaded)` of one run of the CLI with `args`."""
    out = subprocess.run([sys.executable, "-c", _PROBE, *args], cwd=ROOT, input=stdin, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode in (0, 1, 2) and "\nPROBE " in out.stdout, out.stderr
    code, modules = json.loads(out.stdout.rsplit("\nPROBE ", 1)[1])
    return code, set(modules) & set(HEAVY)
