"""Small helpers for the capability API: a program's values read safely, digests, signatures."""

from __future__ import annotations

import hashlib
import inspect
import math
from collections.abc import Callable
from typing import Any

from swarmlab.core import json_safe


def digest(text: str) -> str:
    """A digest of code or text, blind to surrounding blank space."""
    return hashlib.sha256(text.strip().encode(errors="replace")).hexdigest()


def seconds_of(value: Any) -> float | None:
    """A program's number of seconds as a finite float >= 0, or None when it is not one (a
    string, a list, NaN, an int too large for a float)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        seconds = float(value)
    except OverflowError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def text_of(value: Any, limit: int) -> str:
    """A program's value as text of at most `limit` characters, whatever the value is."""
    if isinstance(value, str):
        return value[:limit]
    return str(json_safe(value, limit=limit))[:limit]


def brief(args: tuple[Any, ...]) -> dict[str, Any]:
    return {"args": json_safe(list(args), limit=200)} if args else {}


_SIGNATURES: dict[str, inspect.Signature] = {}


def signature_of(capability: str, method: Callable[..., Any]) -> inspect.Signature:
    """A capability's signature, worked out once (it is asked on every call)."""
    found = _SIGNATURES.get(capability)
    if found is None:
        found = _SIGNATURES[capability] = inspect.signature(method)
    return found


def provenance(code: str, program: str, received: list[str], own_code: str) -> str:
    """Where spawned code came from: a model answer the spawner received as it was
    (`completion`, by the digests it keeps of what it received), the spawner's own source
    (`own_code`), or anything else (`built`)."""
    if digest(code) in received or digest(program) in received:
        return "completion"
    if digest(program) == digest(own_code):
        return "own_code"
    return "built"
