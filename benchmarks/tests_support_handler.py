"""A call handler that answers nothing: the raw-Monty baseline runs programs without the lab."""

from __future__ import annotations

from typing import Any

from swarmlab.runtime._sandbox import NOT_HANDLED


class NullHandler:
    capabilities: frozenset[str] = frozenset()
    world_actions: tuple[str, ...] = ()

    async def call(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        raise NameError(name)

    async def os_call(self, name: str, args: tuple[Any, ...]) -> Any:
        return NOT_HANDLED

    def on_import(self, module: str) -> None:
        pass
