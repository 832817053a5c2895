"""Which model backends exist: the `swarmlab.models` entry-point group, asked without importing
any backend (the built-in ones are declared in pyproject.toml like a third party's would be)."""

from __future__ import annotations

from functools import cache
from importlib.metadata import EntryPoint, distributions

BACKENDS_GROUP = "swarmlab.models"


@cache
def backend_entry_points() -> dict[str, EntryPoint]:
    """Backend kind -> its factory's entry point.

    Read from every installed distribution rather than one per name: a stale metadata folder
    of an earlier build (a `swarmlab.egg-info` in the working directory, found first) must not
    hide the installed one's backends.
    """
    found: dict[str, EntryPoint] = {}
    for dist in distributions():
        for ep in dist.entry_points:
            if ep.group == BACKENDS_GROUP:
                found.setdefault(ep.name, ep)
    return found


def backend_kinds() -> list[str]:
    """The kinds a spec's `model` may start with (`sim`, `openai`, ...)."""
    return sorted(backend_entry_points())
