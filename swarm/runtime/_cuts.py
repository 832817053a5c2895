"""A `cpu_s` cut, recorded as an input and reproduced by a replay.

`cpu_s` is the one per-program limit measured on the host: where it stops a program depends on
the machine's speed. So the cut is kept as an input. When `cpu_s` stops a program, its end is
journaled with the call number it would have made next: `{"cut": "cpu_s", "steps": N,
"printed": P}`, where `steps` counts the sandbox's suspensions the program was answered
(capability calls, name lookups, clock reads; a call asked again after a park counts once) and
`printed` the characters it printed. Both are functions of the program and its inputs, never of
the host. inputs.jsonl holds the line and a `replay:` run compares it like any other input.

A `replay:` run reads the recorded cuts (`recorded_cuts`) and cuts each such program at the same
step: the sandbox stops it when it asks for step N + 1, and a program that ends or is stopped by
its own clock right after step N ends as cut too, its print output cut back to `printed`. Its
compute budget is `REPLAY_CPU_SLACK` times `cpu_s` meanwhile, so a slower host reaches the
recorded point; one that cannot is a divergence the replay names. The error text of a cut names
the limit, never the seconds measured, so two cuts at one point read the same.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from swarmlab.core import SwarmlabError
from swarmlab.records import ProgramInput, RunDir

from ._program import HostState
from ._sandbox import SandboxOutcome, SliceLimits

REPLAY_CPU_SLACK = 4.0
"""A replayed program with a recorded cut computes up to this many times `cpu_s`."""
CUT = "cut"


def cpu_cut_error(cpu_s: float) -> str:
    """The error of a program stopped by `cpu_s`: the limit, not the host's measure."""
    return f"TimeoutError: time limit exceeded: cpu_s = {cpu_s:g} s of compute"


@dataclass(frozen=True)
class RecordedCut:
    """Where a recorded run's `cpu_s` stopped a program."""

    steps: int
    printed: int

    @classmethod
    def parse(cls, text: str) -> RecordedCut | None:
        """The cut in a journal or inputs.jsonl entry; None when the text is not one."""
        try:
            entry = json.loads(text) if text else None
        except ValueError:
            return None
        return cls.of(entry)

    @classmethod
    def of(cls, entry: Any) -> RecordedCut | None:
        if not isinstance(entry, dict) or entry.get(CUT) != "cpu_s":
            return None
        steps, printed = entry.get("steps"), entry.get("printed")
        if not isinstance(steps, int) or not isinstance(printed, int):
            return None
        return cls(int(steps), int(printed))


def steps(state: HostState) -> int:
    """Suspensions the program was answered, each once: a slice that loads a snapshot is first
    asked the parked call again, which the sandbox counts a second time."""
    return state.suspensions - state.resumes


def cut_entry(state: HostState) -> str:
    """The journal entry of a cut at the program's state now."""
    return json.dumps({CUT: "cpu_s", "steps": steps(state), "printed": state.printed})


def recorded_cuts(inputs: list[ProgramInput]) -> dict[str, str]:
    """The cuts a recording holds: program id -> its cut entry (JSON)."""
    found = {}
    for row in inputs:
        cut = RecordedCut.of(row.answer)
        if cut is not None:
            found[row.program] = json.dumps({CUT: "cpu_s", **dataclasses.asdict(cut)})
    return found


def replay_cuts(model: str) -> dict[str, str]:
    """The cuts of the recording a `replay:` model names (none for another model, or for a
    recording that cannot be read: the replay check names that damage at the run's end)."""
    backend, _, source = model.partition(":")
    if backend != "replay":
        return {}
    try:
        return recorded_cuts(RunDir(source).inputs())
    except SwarmlabError:
        return {}


def cut_limits(limits: SliceLimits, state: HostState, cut: RecordedCut | None) -> SliceLimits:
    """A slice's limits when a replay must cut the program where the recording did (call
    before the slice counts its resume)."""
    if cut is None:
        return limits
    return dataclasses.replace(
        limits, cpu_s=limits.cpu_s * REPLAY_CPU_SLACK, cut_after=cut.steps - steps(state)
    )


def settle_cut(
    outcome: SandboxOutcome, state: HostState, cut: RecordedCut | None, cpu_s: float
) -> SandboxOutcome:
    """The program's end with its cut: a cut's error names the limit; a replayed program that
    reached its recorded cut ends there, printed output cut back to what the recording had."""
    reached = cut is not None and steps(state) == cut.steps
    if not reached or outcome.status not in ("completed", "crashed"):
        if outcome.limit != "cpu_s":
            return outcome
        return dataclasses.replace(outcome, error=cpu_cut_error(cpu_s))
    assert cut is not None
    excess = state.printed - cut.printed
    if 0 < excess <= len(state.output):
        state.output = state.output[:-excess]
        state.printed = cut.printed
    return dataclasses.replace(
        outcome,
        status="crashed",
        result=None,
        error=cpu_cut_error(cpu_s),
        limit="cpu_s",
    )
