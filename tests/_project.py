"""This repository as a Pulumi project: its root, its program, and a plan of the program on a config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from linked_apps.review import plan as _plan

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PROGRAM = PROJECT_ROOT / "__main__.py"


def plan(values: dict[str, Any], **kw: Any) -> _plan.Plan:
    """This repository's program run under the mock runtime on `values`."""
    return _plan.plan(values, program=PROGRAM, **kw)
