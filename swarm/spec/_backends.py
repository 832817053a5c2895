"""Which model backends exist: the `swarmlab.models` entry-point group, asked without importing
any backend (the built-in ones are declared in pyproject.toml like a third party's would be)."""

from __future__ import annotations

from functools import cache
from importlib.metadata import EntryPoint, entry_points

BACKENDS_GROUP = "swarmlab.models"


@cache
def backend_entry_points() -> dict[str, EntryPoint]:
    """Backend kind -> its factory's entry point."""
    return {ep.name: ep for ep in entry_points(group=BACKENDS_GROUP)}


def backend_kinds() -> list[str]:
    """The kinds a spec's `model` may start with (`sim`, `openai`, ...)."""
    return sorted(backend_entry_points())
