"""Every benchmark still runs (at toy sizes, so nothing here is a timing) and ends with its JSON line: a bench
that rots silently measures nothing the next time someone needs the figure."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests._project import PROJECT_ROOT

TOY = {
    "plan_scale.py": ["--sizes", "20", "--repeat", "1"],
    "reach_scale.py": ["--apps", "60", "--links", "150", "--repeat", "1"],
    "verify_throughput.py": ["--seconds", "0.2", "--tokens", "20"],
    "origin_throughput.py": ["--seconds", "0.2", "--http-seconds", "0.3", "--tokens", "20"],
    "verify_cli_latency.py": ["--runs", "1"],
}


def test_every_bench_has_a_toy_size() -> None:
    assert {p.name for p in (PROJECT_ROOT / "bench").glob("*.py") if not p.name.startswith("_")} == set(TOY)


@pytest.mark.parametrize("script", sorted(TOY))
def test_bench_runs_and_ends_with_json(script: str) -> None:
    done = subprocess.run([sys.executable, str(PROJECT_ROOT / "bench" / script), *TOY[script]], cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert isinstance(json.loads(done.stdout.strip().splitlines()[-1]), dict)
