"""Caps: the global limits of one run, and the per-program limits of the sandbox.

The field names here are the caps' names everywhere: in the spec (`caps.tokens`), in Redis, in
denials (`CapExceeded(tokens)`) and in summary.json.

Every cap and limit has a ceiling as well as a floor. Counts live in Redis integers and are
compared in Lua, whose numbers are doubles: exact only up to 2**53. A count cap of at most
MAX_COUNT (10**12) keeps a limit plus any single charge far inside that range, so no comparison
in the atomic scripts is ever rounded. Time and memory limits are bounded by what one run on one
machine can mean (a week of wall clock, an hour of sandboxed CPU, 4 GiB of heap per program).
Infinity and NaN are refused everywhere: a limit is a number a run can reach.
"""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict, Field

MAX_COUNT = 10**12
"""Ceiling of every count cap: exact in Redis integers and in Lua's doubles, with room to add."""
MAX_WALL_CLOCK_S = 7 * 24 * 3600.0
MAX_CPU_S = 3600.0
MAX_MEMORY_BYTES = 1 << 32
MAX_HOST_CALLS = 1_000_000_000
MAX_VALUE_BYTES = 1 << 24
MAX_TOKENS_PER_CALL = 1_000_000
MAX_PARKED_BYTES = 1 << 34
REDIS_HEADROOM_BYTES = 256 << 20
"""What the private redis-server may hold beyond what the caps charge (keys, the run's order,
allocator overhead)."""
TELEMETRY_CAP = "telemetry_bytes"
TELEMETRY_BYTES = 96 << 20
"""The most span and metric lines a run keeps in Redis for its directory (their bytes); lines
past it are dropped and counted (summary.json's `caps.telemetry_bytes.denied`)."""


class Caps(BaseModel):
    """Global caps of one run, held in Redis and reserved atomically before every effect."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    programs: int = Field(
        default=200, ge=1, le=MAX_COUNT, description="Programs started in the whole run."
    )
    depth: int = Field(
        default=6, ge=0, le=MAX_COUNT, description="Deepest program allowed (the root is 0)."
    )
    children: int = Field(
        default=8, ge=0, le=MAX_COUNT, description="Children one program may spawn."
    )
    concurrent: int = Field(
        default=48, ge=1, le=MAX_COUNT, description="Programs running at the same time."
    )
    model_calls: int = Field(
        default=2000, ge=0, le=MAX_COUNT, description="Model calls in the whole run."
    )
    tokens: int = Field(
        default=600_000,
        ge=0,
        le=MAX_COUNT,
        description="Prompt plus completion tokens in the whole run.",
    )
    world_actions: int = Field(
        default=2000, ge=0, le=MAX_COUNT, description="Actions on the simulated world."
    )
    blackboard_bytes: int = Field(
        default=262_144,
        ge=0,
        le=MAX_COUNT,
        description="Bytes stored on the shared blackboard (keys + values).",
    )
    record_bytes: int = Field(
        default=64 << 20,
        ge=0,
        le=MAX_COUNT,
        description=(
            "Bytes of the run's record kept in Redis and written to the run directory: events,"
            " journaled answers (inputs.jsonl), model calls (completions.jsonl) and programs'"
            " records (programs.jsonl)."
        ),
    )
    parked_bytes: int = Field(
        default=128 << 20,
        ge=0,
        le=MAX_PARKED_BYTES,
        description="Bytes of parked programs (snapshots and host state) held in Redis at once.",
    )
    wall_clock_s: float = Field(
        default=90.0,
        gt=0,
        le=MAX_WALL_CLOCK_S,
        description="Real seconds the run may last before it is halted.",
    )


class ProgramLimits(BaseModel):
    """Per-program limits, enforced inside the sandbox."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    cpu_s: float = Field(
        default=2.0,
        gt=0,
        le=MAX_CPU_S,
        description="Seconds of sandboxed execution (time waiting on calls is free).",
    )
    memory_bytes: int = Field(
        default=64 * 1024 * 1024,
        ge=1 << 20,
        le=MAX_MEMORY_BYTES,
        description="Heap bytes a program may allocate.",
    )
    host_calls: int = Field(
        default=400,
        ge=1,
        le=MAX_HOST_CALLS,
        description="Capability calls, imports and name lookups per program.",
    )
    blackboard_value_bytes: int = Field(
        default=16_384, ge=1, le=MAX_VALUE_BYTES, description="Largest value one db_put may store."
    )
    max_tokens: int = Field(
        default=1024,
        ge=1,
        le=MAX_TOKENS_PER_CALL,
        description="Largest max_tokens a single run_ai call may ask for.",
    )


def redis_memory_bytes(caps: Caps) -> int:
    """`maxmemory` for a run's private redis-server: what its caps let the run keep (the record
    twice, for Redis's own overhead per entry; the blackboard; parked programs) plus headroom.
    With `noeviction`, a run that reaches it is refused writes (it fails closed), never loses
    keys."""
    return _run_keeps(caps) + REDIS_HEADROOM_BYTES


def shared_redis_memory_bytes(caps: Iterable[Caps], at_once: int) -> int:
    """`maxmemory` for a redis-server that a sweep or a trials set starts for its runs, `at_once`
    of them at a time: what the `at_once` largest of their caps let them keep together (each
    run's keys go when its directory is written), plus the headroom once."""
    kept = sorted((_run_keeps(c) for c in caps), reverse=True)
    return sum(kept[: max(1, at_once)]) + REDIS_HEADROOM_BYTES


def _run_keeps(caps: Caps) -> int:
    return 2 * caps.record_bytes + 2 * caps.blackboard_bytes + caps.parked_bytes + TELEMETRY_BYTES
