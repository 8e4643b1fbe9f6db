"""Run a Pulumi program in tests the way the engine would, under the SDK's mocks: one harness for every test.

Each run gets a fresh context and event loop, because the SDK keeps its settings in context variables and
the loop (the same reason `linked_apps.review.plan` does).
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
from collections.abc import Callable, Mapping
from typing import Any

import pulumi
from pulumi.runtime import mocks, settings
from pulumi.runtime.config import set_all_config
from pulumi.runtime.stack import run_pulumi_func


def run_program(body: Callable[[], Any], engine: mocks.Mocks, *, config: Mapping[str, str] | None = None,
                project: str = "linked-apps", stack: str = "dev", preview: bool = False) -> Any:
    """Run `body` as a program answered by `engine`, with `config` as the engine passes it (strings); return
    what `body` returned with Outputs resolved. Whatever the program raises propagates."""

    def run() -> Any:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            settings.ROOT.set(None)
            mocks.set_mocks(engine, project=project, stack=stack, preview=preview)
            settings.SETTINGS.outputs = set()  # MockSettings leaves the shared default set in place
            set_all_config(dict(config or {}), [])
            box: dict[str, Any] = {}
            loop.run_until_complete(run_pulumi_func(lambda: box.update(result=body())))
            return loop.run_until_complete(_resolve(box.get("result")))
        finally:
            asyncio.set_event_loop(None)
            loop.close()

    return contextvars.Context().run(run)


async def _resolve(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: await _resolve(v) for k, v in value.items()}
    if isinstance(value, list):
        return [await _resolve(v) for v in value]
    if isinstance(value, pulumi.Output):
        return await _resolve(await value.future())
    if inspect.isawaitable(value):
        return await value
    return value
