"""Backends by name. Each factory imports its backend lazily, so `import models` stays light."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._base import ModelBackend
from ._errors import ModelError

Factory = Callable[..., ModelBackend]
_FACTORIES: dict[str, Factory] = {}


def register(kind: str) -> Callable[[Factory], Factory]:
    def decorate(factory: Factory) -> Factory:
        _FACTORIES[kind] = factory
        return factory

    return decorate


def backend_kinds() -> list[str]:
    return sorted(_FACTORIES)


def create_backend(model: str, **options: Any) -> ModelBackend:
    """A backend for a model string such as `sim` or `openai:http://host:8000/v1`."""
    kind, _, target = model.partition(":")
    factory = _FACTORIES.get(kind)
    if factory is None:
        raise ModelError(f"unknown model backend '{kind}' (known: {', '.join(backend_kinds())})")
    return factory(target, **options)


@register("sim")
def _sim(target: str, *, sim_options: Any = None, **_: Any) -> ModelBackend:
    from ._sim import SimBackend

    return SimBackend(sim_options)


@register("openai")
def _openai(
    target: str, *, model_name: str | None = None, sim_options: Any = None, **options: Any
) -> ModelBackend:
    from ._openai import OpenAIBackend

    if not target.startswith(("http://", "https://")):
        raise ModelError(
            f"model 'openai:{target}': give a base URL, e.g. openai:http://host:8000/v1"
        )
    return OpenAIBackend(target, model_name, **options)


@register("local")
def _local(
    target: str, *, model_name: str | None = None, sim_options: Any = None, **options: Any
) -> ModelBackend:
    from ._local import LocalBackend

    if target:
        raise ModelError(f"model 'local:{target}': the local backend takes no argument")
    return LocalBackend(**options)


@register("replay")
def _replay(target: str, *, sim_options: Any = None, **_: Any) -> ModelBackend:
    from ._replay import ReplayBackend

    if not target:
        raise ModelError("model 'replay' needs a run directory: replay:runs/<run-id>")
    return ReplayBackend(target)
