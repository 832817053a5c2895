"""Checking the arguments of world actions: a program's values are hostile until checked."""

from __future__ import annotations

import math
from typing import Any, TypeAlias

from swarmlab.core import REQUIRED, WORLD_ACTIONS, short_repr

JSONValue: TypeAlias = str | int | float | bool | list["JSONValue"] | dict[str, "JSONValue"] | None

MAX_TEXT = 10_000
MAX_URL = 2_048
MAX_COUNT = 10**12
"""The largest count a world action takes (a program's number is checked before any use)."""


class WorldActionError(ValueError):
    """A world action the program asked for cannot be done; the message is shown to the program.

    A ``ValueError`` so that programs catching ``ValueError`` (as docs/capabilities.md promises
    for short funds) catch every world refusal.
    """


def short(value: object) -> str:
    """A program's value in a refusal: bounded, and never raising (an int too long to print, a
    value nested deep, a string of megabytes)."""
    return short_repr(value, 80)


def bind_args(action: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    params = WORLD_ACTIONS[action].params
    names = [name for name, _ in params]
    signature = f"world.{action}({', '.join(names)})"
    if len(args) > len(params):
        raise WorldActionError(
            f"{signature} takes {len(params)} argument(s) but {len(args)} were given"
        )
    bound = dict(zip(names, args, strict=False))
    for key, value in kwargs.items():
        if key not in names:
            raise WorldActionError(f"{signature} got an unexpected argument {key!r}")
        if key in bound:
            raise WorldActionError(f"{signature} got more than one value for {key!r}")
        bound[key] = value
    for name, default in params:
        if name not in bound:
            if default is REQUIRED:
                raise WorldActionError(f"{signature} is missing the argument {name!r}")
            bound[name] = default
    return bound


def text_arg(action: str, name: str, value: Any, max_len: int) -> str:
    if not isinstance(value, str):
        raise WorldActionError(
            f"world.{action}: {name!r} must be a string, not {type(value).__name__}"
        )
    if len(value) > max_len:
        raise WorldActionError(
            f"world.{action}: {name!r} is too long ({len(value)} characters, limit {max_len})"
        )
    return value


def count_arg(action: str, name: str, value: Any) -> int:
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise WorldActionError(
            f"world.{action}: {name!r} must be a whole number, not {short(value)}"
        )
    if value <= 0:
        raise WorldActionError(f"world.{action}: {name!r} must be positive, not {short(value)}")
    if value > MAX_COUNT:
        raise WorldActionError(
            f"world.{action}: {name!r} must be at most {MAX_COUNT:,}, not {short(value)}"
        )
    return value
