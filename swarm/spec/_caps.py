"""Caps: the global limits of one run, and the per-program limits of the sandbox.

The field names here are the caps' names everywhere: in the spec (`caps.tokens`), in Redis, in
denials (`CapExceeded(tokens)`) and in summary.json.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Caps(BaseModel):
    """Global caps of one run, held in Redis and reserved atomically before every effect."""

    model_config = ConfigDict(extra="forbid")

    programs: int = Field(default=200, ge=1, description="Programs started in the whole run.")
    depth: int = Field(default=6, ge=0, description="Deepest program allowed (the root is 0).")
    children: int = Field(default=8, ge=0, description="Children one program may spawn.")
    concurrent: int = Field(default=48, ge=1, description="Programs running at the same time.")
    model_calls: int = Field(default=2000, ge=0, description="Model calls in the whole run.")
    tokens: int = Field(
        default=600_000, ge=0, description="Prompt plus completion tokens in the whole run."
    )
    world_actions: int = Field(default=2000, ge=0, description="Actions on the simulated world.")
    blackboard_bytes: int = Field(
        default=262_144, ge=0, description="Bytes stored on the shared blackboard (keys + values)."
    )
    wall_clock_s: float = Field(
        default=90.0, gt=0, description="Real seconds the run may last before it is halted."
    )


class ProgramLimits(BaseModel):
    """Per-program limits, enforced inside the sandbox."""

    model_config = ConfigDict(extra="forbid")

    cpu_s: float = Field(
        default=2.0,
        gt=0,
        description="Seconds of sandboxed execution (time waiting on calls is free).",
    )
    memory_bytes: int = Field(
        default=64 * 1024 * 1024, ge=1 << 20, description="Heap bytes a program may allocate."
    )
    host_calls: int = Field(
        default=400, ge=1, description="Capability calls, imports and name lookups per program."
    )
    blackboard_value_bytes: int = Field(
        default=16_384, ge=1, description="Largest value one db_put may store."
    )
    max_tokens: int = Field(
        default=1024, ge=1, description="Largest max_tokens a single run_ai call may ask for."
    )
