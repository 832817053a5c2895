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
from swarmlab.spec import SimOptions, backend_entry_points, backend_kinds, model_problem

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
    """A backend for a model string such as `sim` or `openai:http://host:8000/v1`.

    The string is checked by the same rule the spec applies (`swarmlab.spec.model_problem`), so
    a string the spec accepts never fails here for its form.
    """
    kind, _, target = model.partition(":")
    problem = model_problem(model)
    if problem is not None:
        raise ModelError(f"model {model!r}: {problem}")
    entry = backend_entry_points().get(kind)
    if entry is None:  # pragma: no cover - model_problem names unknown kinds
        raise ModelError(f"unknown model backend '{kind}' (known: {', '.join(backend_kinds())})")
    try:
        factory: Factory = entry.load()
    except ImportError as exc:
        raise ModelError(f"model backend '{kind}' cannot load ({exc})") from None
    return factory(target, model_name=model_name, sim_options=sim_options, **options)


def sim_backend(target: str, *, sim_options: SimOptions | None = None, **_: Any) -> ModelBackend:
    from .sim import SimBackend

    return SimBackend(sim_options)


def openai_backend(
    target: str, *, model_name: str | None = None, sim_options: Any = None, **options: Any
) -> ModelBackend:
    from ._openai import OpenAIBackend

    return OpenAIBackend(target, model_name, **options)


def local_backend(
    target: str, *, model_name: str | None = None, sim_options: Any = None, **options: Any
) -> ModelBackend:
    from ._local import LocalBackend

    return LocalBackend(**options)


def replay_backend(target: str, *, sim_options: Any = None, **_: Any) -> ModelBackend:
    from ._replay import ReplayBackend

    return ReplayBackend(target)
