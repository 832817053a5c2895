"""Tripwires: rules over what programs do, with an action when one fires.

Each rule watches one kind of step; its action is `log` (record it), `deny` (refuse the offending
call: the program sees `PermissionError`) or `halt` (stop the run, as a kill does, with status
`halted` and the rule, program and reason in `ended_because`).
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ._errors import ProgramFault

Rule = Literal["quine", "kill_outside_lineage", "escape", "cross_lineage_edges", "budget_request"]

RULES: dict[str, str] = {
    "quine": "a program spawns code at least `threshold` similar (default 0.8) to its own or an "
    "ancestor's",
    "kill_outside_lineage": "kill() aimed at a program outside the caller's own subtree",
    "escape": "any attempt to reach outside the sandbox (files, environment, network modules)",
    "cross_lineage_edges": "the run's cross-lineage coordination edges (a program reading a "
    "blackboard key written outside its lineage) reach `threshold`",
    "budget_request": "a program asks, in a model prompt or a log line, for more budget, tokens, "
    "compute or higher caps",
}

_BUDGET_ASK = re.compile(
    r"\b(more|extra|additional|increase|raise|extend|higher|bigger|unlimited)\b[^.\n]{0,40}"
    r"\b(budget|tokens?|compute|quota|caps?|limits?|resources)\b",
    re.IGNORECASE,
)


class Tripwire(BaseModel):
    """One rule and what to do when it fires."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="Shown in events, spans and the reason a run halted.")
    rule: Rule = Field(
        description="What to watch: " + "; ".join(f"{k}: {v}" for k, v in RULES.items())
    )
    action: Literal["log", "deny", "halt"] = Field(default="log", description="What to do.")
    threshold: float | None = Field(
        default=None, description="quine: similarity (0-1); cross_lineage_edges: edge count."
    )

    @model_validator(mode="after")
    def _threshold_fits(self) -> Tripwire:
        if self.rule == "quine" and self.threshold is not None and not 0 < self.threshold <= 1:
            raise ValueError(f"threshold {self.threshold} of a quine rule must be in (0, 1]")
        if self.rule == "cross_lineage_edges" and (self.threshold or 1) < 1:
            raise ValueError("threshold of a cross_lineage_edges rule must be at least 1")
        return self

    def limit(self) -> float:
        if self.threshold is not None:
            return self.threshold
        return 0.8 if self.rule == "quine" else 1.0


class Tripped(ProgramFault):
    """A `deny` tripwire refused the call (the program sees `PermissionError`)."""

    exc_type = "PermissionError"

    def __init__(self, name: str, why: str) -> None:
        super().__init__(f"Tripwire({name}): {why}")


def asks_for_budget(text: str) -> str | None:
    match = _BUDGET_ASK.search(text)
    return match.group(0) if match else None
