"""Backends by kind: the `swarmlab.models` entry-point group.

The built-in backends are declared in pyproject.toml exactly as a third-party package declares
its own:

    [project.entry-points."swarmlab.models"]
    mybackend = "mypackage.backend:factory"

A factory takes the part of the model string after the kind (`openai:<this>`) and the spec's
model options, and returns a `ModelBackend`. Each factory imports its backend lazily, so
`import swarmlab.models` stays light and a missing optional dependency costs only its backend.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from swarmlab.core import ModelError
from swarmlab.spec import SimOptions, backend_entry_points, backend_kinds

from ._base import ModelBackend

Factory = Callable[..., ModelBackend]

__all__ = ["Factory", "backend_kinds", "create_backend"]


def create_backend(
    model: str,
    *,
    model_name: str | None = None,
    sim_options: SimOptions | None = None,
    **options: Any,
) -> ModelBackend:
    """A backend for a model string such as `sim` or `openai:http://host:8000/v1`."""
    kind, _, target = model.partition(":")
    entry = backend_entry_points().get(kind)
    if entry is None:
        raise ModelError(f"unknown model backend '{kind}' (known: {', '.join(backend_kinds())})")
    try:
        factory: Factory = entry.load()
    except ImportError as exc:
        raise ModelError(f"model backend '{kind}' cannot load ({exc})") from None
    return factory(target, model_name=model_name, sim_options=sim_options, **options)


def sim_backend(target: str, *, sim_options: SimOptions | None = None, **_: Any) -> ModelBackend:
    from .sim import SimBackend

    if target:
        raise ModelError(f"model 'sim:{target}': the sim backend takes no argument")
    return SimBackend(sim_options)


def openai_backend(
    target: str, *, model_name: str | None = None, sim_options: Any = None, **options: Any
) -> ModelBackend:
    from ._openai import OpenAIBackend

    if not target.startswith(("http://", "https://")):
        raise ModelError(
            f"model 'openai:{target}': give a base URL, e.g. openai:http://host:8000/v1"
        )
    return OpenAIBackend(target, model_name, **options)


def local_backend(
    target: str, *, model_name: str | None = None, sim_options: Any = None, **options: Any
) -> ModelBackend:
    from ._local import LocalBackend

    if target:
        raise ModelError(f"model 'local:{target}': the local backend takes no argument")
    return LocalBackend(**options)


def replay_backend(target: str, *, sim_options: Any = None, **_: Any) -> ModelBackend:
    from ._replay import ReplayBackend

    if not target:
        raise ModelError("model 'replay' needs a run directory: replay:runs/<run-id>")
    return ReplayBackend(target)
