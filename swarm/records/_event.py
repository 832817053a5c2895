"""One step of a run, as events.jsonl records it: a capability call and the lab's decision."""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from swarmlab.core import EVENT_KINDS
from swarmlab.spec import MAX_COUNT

Decision = Literal["allowed", "denied", "error", "info"]


class Event(BaseModel):
    """One step of a run: a capability call and what the lab decided about it."""

    model_config = ConfigDict(extra="forbid")

    t: float = Field(description="Unix time of the event.")
    program: str = Field(description="The program that acted ('' for the run itself).")
    kind: str = Field(
        description="A capability name, a world action (`world.<action>`) or a lifecycle step "
        "(`start`, `end`, `escape_attempt`, `tripwire`, `unknown_name`): always a kind the lab "
        "declares (swarmlab.core.EVENT_KINDS), never one a program chose."
    )
    decision: Decision = Field(description="What the lab decided.")
    cap: str | None = Field(default=None, description="The cap that denied the call, if any.")
    detail: dict[str, Any] = Field(
        default_factory=dict, description="Arguments and results, short."
    )
    seq: int | None = Field(
        default=None,
        description="The program's call number (its n-th capability call), when the event is "
        "one of its calls: a call made again after a runner's loss has the same number.",
    )

    def count(self, key: str) -> int:
        """`detail[key]` as a count: a number read back from a file may be anything, so a
        value that is not a count (a number from 0 to `MAX_COUNT`) counts 0."""
        return detail_count(self.detail.get(key))

    @field_validator("kind")
    @classmethod
    def _declared_kind(cls, value: str) -> str:
        if value not in EVENT_KINDS:
            raise ValueError(f"{value[:60]!r} is not an event kind the lab declares")
        return value


def detail_count(value: Any) -> int:
    """A count read from an event's detail: 0 for anything not a number from 0 to
    `MAX_COUNT` (a file may hold -5, 1e308 or text there)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0
    if not (math.isfinite(value) and 0 <= value <= MAX_COUNT):
        return 0
    return int(value)
