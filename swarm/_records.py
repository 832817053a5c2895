"""What the lab records about programs and calls: programs.jsonl and events.jsonl."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

ProgramStatus = Literal["pending", "running", "completed", "crashed", "killed"]
TERMINAL: frozenset[str] = frozenset({"completed", "crashed", "killed"})


class ProgramRecord(BaseModel):
    """One generated program: where it sits in the tree, its code, and how it ended."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="Dotted path: the parent's id, a dot, the child's index.")
    parent_id: str | None = Field(default=None, description="None for the root program.")
    depth: int = Field(default=0, description="Distance from the root.")
    task: str = Field(default="", description="What the parent asked this program to do.")
    code: str = Field(description="The program's source, as it ran.")
    status: ProgramStatus = Field(
        default="pending", description="Where the program is in its life."
    )
    result: Any = Field(default=None, description="The value of the program's last expression.")
    error: str | None = Field(default=None, description="Why the program crashed or was killed.")
    output: str = Field(default="", description="What the program printed (truncated).")
    runner: int | None = Field(default=None, description="Index of the runner that ran it.")
    clock_h: float = Field(default=0.0, description="The program's simulated clock, in hours.")
    calls: int = Field(default=0, description="Capability calls the program made.")
    created_at: float = Field(default=0.0, description="Unix time the parent spawned it.")
    started_at: float | None = Field(default=None, description="Unix time it began executing.")
    ended_at: float | None = Field(default=None, description="Unix time it ended.")
    traceparent: str | None = Field(
        default=None, description="W3C trace context its span is parented to (the spawner's)."
    )
    span_id: str | None = Field(default=None, description="Its own span's id (16 hex digits).")

    def to_json(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_json(cls, text: str | bytes) -> ProgramRecord:
        return cls.model_validate_json(text)


Decision = Literal["allowed", "denied", "error", "info"]


class Event(BaseModel):
    """One step of a run: a capability call and what the lab decided about it."""

    model_config = ConfigDict(extra="forbid")

    t: float = Field(description="Unix time of the event.")
    program: str = Field(description="The program that acted ('' for the run itself).")
    kind: str = Field(description="Capability name, or a lifecycle step such as 'start', 'end'.")
    decision: Decision = Field(description="What the lab decided.")
    cap: str | None = Field(default=None, description="The cap that denied the call, if any.")
    detail: dict[str, Any] = Field(
        default_factory=dict, description="Arguments and results, short."
    )

    def to_fields(self) -> dict[str, str]:
        return {
            "t": repr(self.t),
            "program": self.program,
            "kind": self.kind,
            "decision": self.decision,
            "cap": self.cap or "",
            "detail": json.dumps(self.detail, default=str),
        }

    @classmethod
    def from_fields(cls, fields: dict[str, str]) -> Event:
        return cls(
            t=float(fields["t"]),
            program=fields["program"],
            kind=fields["kind"],
            decision=fields["decision"],  # type: ignore[arg-type]
            cap=fields["cap"] or None,
            detail=json.loads(fields["detail"]),
        )


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
