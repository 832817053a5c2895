"""One program of a run, as programs.jsonl records it."""

from __future__ import annotations

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
