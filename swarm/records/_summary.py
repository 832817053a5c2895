"""summary.json: the typed summary of one run.

Its fields are a contract that researchers' scripts rely on: extend it, never rename.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from swarmlab.spec import ExperimentSpec, is_run_id

from ._inputs import ReplayCheck

RunStatus = Literal["completed", "killed", "halted", "failed"]
Number = int | float


class CapUsage(BaseModel):
    """One global cap over a run."""

    model_config = ConfigDict(extra="ignore")

    limit: Number = Field(description="The cap's limit.")
    used: Number = Field(
        description="What the run used (concurrent: the peak; depth: the deepest; wall_clock_s: "
        "the time from the root program's start to the run's end, overrun included). "
        "wall_clock_s and, when spawns over `concurrent` queue, concurrent's peak of programs "
        "computing at once are host measurements: they vary "
        "with timing while the tree, the outcome and every other cap reproduce."
    )
    denied: int = Field(default=0, description="Calls the cap denied.")


class LimitUsage(BaseModel):
    """One per-program limit over a run."""

    model_config = ConfigDict(extra="ignore")

    limit: Number = Field(description="The per-program limit.")
    denied: int = Field(default=0, description="Programs or calls it stopped.")


class ModelInfo(BaseModel):
    model_config = ConfigDict(extra="ignore")

    backend: str = Field(description="The backend kind: sim, openai, local, replay, ...")
    name: str = Field(description="The model that answered, as its completions name it.")
    failed_calls: int = Field(
        default=0,
        description="Programs' model calls that failed after the backend's retries (endpoint "
        "gone, bad answer): each raised an error inside its program, which could go on.",
    )
    resent_calls: int = Field(
        default=0,
        description="Programs' model calls sent again because the runner that sent them was "
        "lost before their answer was kept: each attempt is charged to `model_calls`.",
    )


class ProgramCounts(BaseModel):
    model_config = ConfigDict(extra="ignore")

    total: int = Field(description="Programs created in the run.")
    by_status: dict[str, int] = Field(description="Programs by how they ended.")


class TreeStats(BaseModel):
    model_config = ConfigDict(extra="ignore")

    size: int = Field(description="Programs in the tree.")
    max_depth: int = Field(description="Depth of the deepest program (the root is 0).")
    branching: float = Field(description="Mean children per program that has children.")
    root: Literal["file", "dialogue"] = Field(description="Where the root program came from.")


class RunSummary(BaseModel):
    """What summary.json (and `swarmlab run --json`) holds."""

    model_config = ConfigDict(extra="ignore")

    run_id: str
    trace_id: str | None = None
    status: RunStatus

    ended_because: str
    model: ModelInfo
    programs: ProgramCounts
    tree: TreeStats
    scaffold: bool = Field(description="The root program exists (from the dialogue or a file).")
    caps: dict[str, CapUsage]
    caps_last_seen: bool = Field(
        default=False,
        description="The caps' use is as the run's watch last read it: Redis was gone at the "
        "run's end. Otherwise it is what Redis held at the end, and `programs`, `depth` and "
        "`children` are what the records give (checked when the directory is read back).",
    )
    program_limits: dict[str, LimitUsage]
    outcome: dict[str, Any] = Field(description="The simulated world's score at the deadline.")
    events: int = Field(description="Events recorded.")
    duration_s: float = Field(description="Seconds from the command's start to the run's end.")
    startup_s: float | None = Field(
        default=None,
        description="Seconds of start-up before the root program started (Redis, the model "
        "server, the root dialogue, Ray): not counted against wall_clock_s, which counts from "
        "the root program's start. None when no root program started.",
    )
    started_at: float
    ended_at: float
    spec: ExperimentSpec
    runners_lost: int = Field(
        default=0, description="Runner processes that died during the run (each was restarted)."
    )
    programs_restarted: int = Field(
        default=0,
        description="Programs that were computing when their runner died and ran again from "
        "their last snapshot or their start (events of kind `restart`).",
    )
    replay: ReplayCheck | None = Field(
        default=None, description="For a `replay:` run: whether every input matched the record."
    )
    recovered: bool = Field(
        default=False,
        description="Written by the run's watchdog from Redis after the process that ran it died "
        "(SIGKILL, the out-of-memory killer): the run was cut off, not ended by the lab. A "
        "resumed sweep runs such a cell again and keeps this record under interrupted/.",
    )

    @field_validator("run_id")
    @classmethod
    def _a_run_id(cls, value: str) -> str:
        # Read back, it names the run in tables and on the terminal: the rule ids are made by.
        if not is_run_id(value):
            raise ValueError(f"{value[:60]!r} is not a run id")
        return value

    def to_json(self) -> str:
        return self.model_dump_json(indent=1)
