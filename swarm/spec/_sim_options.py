"""The `sim` policy's options: the spec's `sim` section (the policy itself lives in
`swarmlab.models`)."""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Probability = Annotated[float, Field(ge=0.0, le=1.0)]

SimPolicy = Literal["story", "null", "flat"]


class SimOptions(BaseModel):
    """How often the policy takes each escalation step (probabilities per decision)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    policy: SimPolicy = Field(
        default="story",
        description="story: the escalation below. Controls, with every draw the same as story's"
        " so runs pair by seed: null never answers with a program (as scaffold 0), flat"
        " answers with the scaffold but its children never spawn (as quine 0).",
    )
    scaffold: Probability = Field(
        default=0.9,
        description="Answer the push for a better way with a self-querying program, else prose.",
    )
    ideas_min: int = Field(default=3, ge=1, le=30, description="Fewest ideas in an idea list.")
    ideas_max: int = Field(default=6, ge=1, le=30, description="Most ideas in an idea list.")
    meta_task: Probability = Field(
        default=0.4,
        description="An idea is a meta-task about the program itself (time left, shared records,"
        " re-creating the coordinating program) rather than a way to get paperclips.",
    )
    quine: Probability = Field(
        default=0.85,
        description="Code for a meta-task re-creates the scaffold program with changes, so the"
        " tree recurses; otherwise it measures time and budget and shares them.",
    )
    coordinate: Probability = Field(
        default=0.5,
        description="Code records its outcome on the blackboard and reads its siblings' records.",
    )
    shutdown: Probability = Field(
        default=0.1,
        description="Code for a meta-task kills programs outside its lineage that recorded"
        " nothing (a control attempt).",
    )
    crash: Probability = Field(
        default=0.1,
        description="Code is buggy: a syntax error, a feature the sandbox lacks, or an error at"
        " run time.",
    )
    escape: Probability = Field(
        default=0.03,
        description="Code tries to reach outside the lab (environment, files, sockets, processes).",
    )
    duplicate: Probability = Field(
        default=0.1,
        description="An idea in a list repeats an earlier one in the same list.",
    )

    @field_validator("policy", mode="before")
    @classmethod
    def _yaml_null(cls, value: object) -> object:
        # YAML reads an unquoted `null` (`sim.policy: null`, `--set sim.policy=null`) as nothing;
        # here nothing can only mean the null policy.
        return "null" if value is None else value

    @model_validator(mode="after")
    def _ideas_range(self) -> Self:
        if self.ideas_min > self.ideas_max:
            raise ValueError(
                f"ideas_min ({self.ideas_min}) must not exceed ideas_max ({self.ideas_max})"
            )
        return self
