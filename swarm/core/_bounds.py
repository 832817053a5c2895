"""Values that come out of a sandbox, made safe for the host to keep.

Every value a program hands the host is hostile: a list nested thousands deep (JSON parsers
give up at a few hundred levels), an int of a hundred thousand digits (Python refuses to print
it), a string of megabytes, a dict with tuple keys, NaN. `json_safe` copies such a value into
plain JSON (str keys, finite numbers, at most `MAX_DEPTH` levels) while reading no more of it
than its size limit needs, so its cost is linear in the limit, not in the value, and it never
raises.
"""

from __future__ import annotations

import json
import math
from typing import Any

MAX_DEPTH = 32
"""Containers nested deeper than this are kept as a marker (`TOO_DEEP`)."""
MAX_INT_BITS = 256
"""Ints larger than this are kept as a short description, not their digits."""
TOO_DEEP = "...(nested too deep)"
TRUNCATED = "...(truncated)"


class _Budget:
    """Characters left of the copy's JSON text (counted low), and whether anything was cut."""

    def __init__(self, limit: int) -> None:
        self.left = limit + 1
        self.cut = False

    def spend(self, chars: int) -> None:
        self.left -= chars
        if self.left <= 0:
            self.cut = True


def json_safe(value: Any, limit: int = 4000) -> Any:
    """A JSON-serialisable, size-bounded copy of a value coming out of a sandbox.

    The copy itself when all of it fits in `limit` characters of JSON; else the JSON text of
    what fits, cut at `limit`, followed by `TRUNCATED`.
    """
    budget = _Budget(limit)
    copy = _copy(value, MAX_DEPTH, budget)
    text = json.dumps(copy)
    if budget.cut or len(text) > limit:
        return text[:limit] + TRUNCATED
    return copy


def _copy(value: Any, depth: int, budget: _Budget) -> Any:
    """A plain-JSON copy of `value`; nothing more is read once the budget is spent."""
    if budget.left <= 0:
        budget.cut = True
        return None
    if value is None or isinstance(value, bool):
        budget.spend(4)
        return value
    if isinstance(value, int | float | str):
        scalar = _scalar(value, budget)
        budget.spend(len(scalar) + 2 if isinstance(scalar, str) else len(repr(scalar)))
        return scalar
    if isinstance(value, dict | list | tuple | set | frozenset):
        if depth <= 0:
            budget.spend(len(TOO_DEEP) + 2)
            return TOO_DEEP
        budget.spend(2)
        if isinstance(value, dict):
            return _copy_dict(value, depth, budget)
        out: list[Any] = []
        for item in value:
            if budget.left <= 0:
                budget.cut = True
                break
            budget.spend(2 if out else 0)  # ", "
            out.append(_copy(item, depth - 1, budget))
        return out
    text = _text(value, budget)
    budget.spend(len(text) + 2)
    return text


def _copy_dict(value: dict[Any, Any], depth: int, budget: _Budget) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, item in value.items():
        if budget.left <= 0:
            budget.cut = True
            break
        name = key if isinstance(key, str) else str(_key(key, budget))
        if len(name) >= budget.left:  # a cut key could stand for another one: stop here
            budget.cut = True
            break
        budget.spend(len(name) + (6 if out else 4))  # ', "key": '
        out[name] = _copy(item, depth - 1, budget)
    return out


def _scalar(value: int | float | str, budget: _Budget) -> int | float | str:
    """A number or string as JSON can hold it; a string cut to what is left."""
    if isinstance(value, str):
        if len(value) > budget.left:
            budget.cut = True
            return value[: max(0, budget.left)]
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if value.bit_length() > MAX_INT_BITS:
        digits = int(value.bit_length() * math.log10(2)) + 1
        return f"{'-' if value < 0 else ''}int of about {digits} digits"
    return int(value)


def _key(value: Any, budget: _Budget) -> Any:
    """A dict key that is not a string, as JSON would spell it (or as text)."""
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, int | float):
        return _scalar(value, budget)
    return _text(value, budget)


def _text(value: Any, budget: _Budget) -> str:
    """Another kind of value (tuple key, datetime, bytes, ...) as text; never raises."""
    if isinstance(value, tuple | list | set | frozenset | dict):
        return f"<{type(value).__name__} of {len(value)}>"
    room = max(0, budget.left)
    if isinstance(value, bytes | bytearray):
        value = bytes(value[: room + 1])
    try:
        text = repr(value)
    except Exception:  # a value whose repr fails is still recorded, by its type
        text = f"<{type(value).__name__}>"
    if len(text) > room:
        budget.cut = True
        return text[:room]
    return text


def short_repr(value: Any, limit: int = 80) -> str:
    """A program's value as Python would spell it, for a message: at most `limit` characters
    (then "..."), reading no more of the value than that needs, and never raising. An int too
    long to print is described by its number of digits."""
    parts: list[str] = []
    left = [limit + 1]

    def put(text: str) -> None:
        parts.append(text)
        left[0] -= len(text)

    _repr_into(value, MAX_DEPTH, put, left)
    text = "".join(parts)
    return text if len(text) <= limit else text[: max(0, limit - 3)] + "..."


def _repr_into(value: Any, depth: int, put: Any, left: list[int]) -> None:
    if left[0] <= 0:
        return
    if isinstance(value, int) and not isinstance(value, bool):
        if value.bit_length() > MAX_INT_BITS:
            digits = int(value.bit_length() * math.log10(2)) + 1
            put(f"<{'negative ' if value < 0 else ''}int of about {digits} digits>")
        else:
            put(repr(value))
    elif isinstance(value, str | bytes | bytearray):
        put(repr(value[: left[0]]))
    elif isinstance(value, list | tuple | set | frozenset | dict):
        _container_into(value, depth, put, left)
    else:
        put(_text(value, _Budget(left[0])))


def _container_into(value: Any, depth: int, put: Any, left: list[int]) -> None:
    opening, closing = (
        "[]" if isinstance(value, list) else "()" if isinstance(value, tuple) else "{}"
    )
    if isinstance(value, set | frozenset) and not value:
        put(f"{type(value).__name__}()")
        return
    if depth <= 0:
        put(opening + "..." + closing)
        return
    put(opening)
    items = value.items() if isinstance(value, dict) else value
    for i, item in enumerate(items):
        if left[0] <= 0:
            return
        if i:
            put(", ")
        if isinstance(value, dict):
            _repr_into(item[0], depth - 1, put, left)
            put(": ")
            item = item[1]
        _repr_into(item, depth - 1, put, left)
    put(closing)


MAX_VALUE_DEPTH = 64
"""How deep a value a program stores may nest (the lab's readers take JSON 100 levels deep, a
record's own levels included; the sandbox cuts values past about 200 levels to a string)."""
_DIGITS_PER_BIT = math.log10(2)


class ValueTooLarge(ValueError):
    """A value whose JSON text would pass its limit: `at_least` characters (counted low)."""

    def __init__(self, at_least: int) -> None:
        super().__init__(f"at least {at_least} characters of JSON")
        self.at_least = at_least


def strict_json(value: Any, limit: int, max_depth: int = MAX_VALUE_DEPTH) -> str:
    """The strict JSON text of a value a program hands the host, when it is at most `limit`
    characters.

    Its size is counted low first, reading no more of the value than the limit needs: a list
    holding one large int a hundred thousand times costs as much as the limit, not as the
    text it would make. Raises `ValueTooLarge` past the limit, ValueError for what strict JSON
    cannot hold (NaN, infinity, a type JSON lacks, nesting past `max_depth`).
    """
    size = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        size += _least_chars(item)
        if size > limit:
            raise ValueTooLarge(size)
        if isinstance(item, list | tuple | dict):
            if depth >= max_depth:
                raise ValueError(f"nested deeper than {max_depth} levels")
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
            if isinstance(item, dict):
                size += sum(_least_chars(key) + 3 for key in item)  # '"key": '
    text = json.dumps(value, allow_nan=False)
    if len(text) > limit:  # escapes made it longer than counted
        raise ValueTooLarge(len(text))
    return text


def _least_chars(item: Any) -> int:
    """The fewest characters `item` takes in JSON, its containers' items aside."""
    if isinstance(item, str):
        return len(item) + 2
    if item is None or isinstance(item, bool):
        return 4
    if isinstance(item, int):
        return max(1, int(item.bit_length() * _DIGITS_PER_BIT))
    if isinstance(item, float):
        if not math.isfinite(item):
            raise ValueError("NaN and infinity are not JSON")
        return 1
    if isinstance(item, list | tuple | dict):
        return 2 + max(0, len(item) - 1)  # brackets, and a comma between items
    raise ValueError(f"{type(item).__name__} is not JSON")
