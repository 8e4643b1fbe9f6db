"""The README's verify examples run as written."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def examples() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Verify tokens against deployed trust", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def test_python_api_example(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(examples()[0], "README.md", "exec"), {})  # noqa: S102
    assert out.getvalue().strip() == "False opaque bearer token"


def test_middleware_example(monkeypatch: pytest.MonkeyPatch) -> None:
    from starlette.testclient import TestClient

    monkeypatch.chdir(ROOT)
    namespace: dict[str, object] = {}
    exec(compile(examples()[1], "README.md", "exec"), namespace)  # noqa: S102
    with TestClient(namespace["app"]) as client:  # type: ignore[arg-type]
        response = client.get("/payslips")
        assert response.status_code == 403
        assert response.json()["reason"].startswith("no Access assertion")
        response = client.get("/payslips", headers={"Cf-Access-Jwt-Assertion": "not-a-jwt"})
        assert response.status_code == 403 and response.json()["reason"].startswith("Access assertion: malformed")
