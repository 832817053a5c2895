"""Values that come out of a sandbox, made safe for the host to keep."""

from __future__ import annotations

import json
from typing import Any


def json_safe(value: Any, limit: int = 4000) -> Any:
    """A JSON-serialisable, size-bounded copy of a value coming out of a sandbox."""
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = json.dumps(repr(value))
        value = repr(value)
    if len(text) > limit:
        return text[:limit] + "...(truncated)"
    return value
