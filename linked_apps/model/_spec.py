"""The base of every config model: unknown keys refused, aliases (the YAML's camelCase) accepted, frozen."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)
