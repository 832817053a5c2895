"""Trajectories of the trials (JSONL and Parquet, one step a row) and the datasheet beside them.

A trajectory is everything one trial did, in order: the root dialogue (system prompt, question,
answer, follow-up, answer), then each program as it was created (its code) and each call it made
(the lab's event, with its decision), merged by time. Every row has the same flat columns
(`STEP_COLUMNS`), so the Parquet file has one type per column and loads straight into a data
frame; long texts are cut at `TEXT_CHARS` and marked.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from swarmlab.core import write_text
from swarmlab.records import RunDir

from ._plan import Trial, TrialsPlan
from ._table import CONDITION_COLUMNS, TRIAL_COLUMNS, write_rows

TEXT_CHARS = 8000
DETAIL_CHARS = 2000

STEP_COLUMNS: dict[str, str] = {
    "trial_id": "the trial (joins trials.csv)",
    "model": "the model string of the trial's condition",
    "persona": "the persona (built-in name or the first 80 characters of its text)",
    "affordance": "none, hint or api",
    "seed": "the trial's seed",
    "step": "the step's position in the trajectory, from 0",
    "t_s": "seconds since the run started (empty for the dialogue, which records no times)",
    "actor": "'dialogue' for the root dialogue, else the program's id (p0, p0.1, ...)",
    "kind": "system, user, assistant (dialogue turns); program (a program was created: text is "
    "its code); else the lab's event kind: a capability (run_ai, spawn, db_put, kill, ...), a "
    "world action (world.buy), or start, end, escape_attempt, tripwire, unknown_name",
    "decision": "what the lab decided about a call: allowed, denied, error, info",
    "cap": "the cap that denied the call",
    "parent_id": "for program rows, the parent program's id",
    "status": "for program rows, how the program ended: completed, crashed, killed",
    "text": "the turn's text, the program's code, or the call's prompt/answer/message",
    "truncated": "1 when text was cut at 8000 characters",
    "detail": "the event's recorded arguments and results, JSON (cut at 2000 characters)",
}


def trajectory(plan: TrialsPlan, trial: Trial) -> list[dict[str, Any]]:
    """One trial's steps, in order; empty when the trial wrote no run directory."""
    rundir = RunDir(plan.trial_dir(trial))
    summary = plan.trial_summary(trial)
    if summary is None:
        return []
    spec = summary.spec
    base = {
        "trial_id": trial.id,
        "model": trial.condition.model,
        "persona": trial.condition.persona[:80],
        "affordance": trial.condition.affordance,
        "seed": trial.seed,
    }
    steps: list[dict[str, Any]] = []
    dialogue = rundir.dialogue()
    if dialogue is not None:
        turns = [
            ("system", spec.system_prompt),
            ("user", spec.question),
            ("assistant", dialogue.first_answer),
            ("user", spec.follow_up),
            ("assistant", dialogue.second_answer),
        ]
        steps += [_step(base, None, "dialogue", kind, text) for kind, text in turns]
    timed: list[tuple[float, dict[str, Any]]] = []
    start = summary.started_at
    for p in rundir.programs():
        row = _step(base, p.created_at - start, p.id, "program", p.code)
        row.update(parent_id=p.parent_id, status=p.status)
        row["detail"] = _json({"task": p.task, "depth": p.depth, "error": p.error})
        timed.append((p.created_at, row))
    for e in rundir.events():
        if not e.program:
            continue
        text = next((e.detail.get(k) for k in ("prompt", "msg", "task") if k in e.detail), None)
        row = _step(base, e.t - start, e.program, e.kind, None if text is None else str(text))
        row.update(decision=e.decision, cap=e.cap, detail=_json(e.detail))
        timed.append((e.t, row))
    steps += [row for _, row in sorted(timed, key=lambda pair: pair[0])]
    for index, row in enumerate(steps):
        row["step"] = index
    return steps


def write_exports(plan: TrialsPlan) -> list[str]:
    """trajectories.jsonl, trajectories.parquet and DATASHEET.md in the trials directory."""
    out = plan.out
    rows = [row for trial in plan.trials for row in trajectory(plan, trial)]
    write_text(
        out / "trajectories.jsonl",
        "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows),
    )
    write_rows(rows, out / "trajectories", list(STEP_COLUMNS), with_csv=False)
    write_text(out / "DATASHEET.md", datasheet(plan, len(rows)))
    return ["trajectories.jsonl", "trajectories.parquet", "DATASHEET.md"]


def _step(
    base: dict[str, Any], t_s: float | None, actor: str, kind: str, text: str | None
) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(STEP_COLUMNS)
    row.update(base)
    row.update(
        t_s=None if t_s is None else round(t_s, 4),
        actor=actor,
        kind=kind,
        text=None if text is None else text[:TEXT_CHARS],
        truncated=int(text is not None and len(text) > TEXT_CHARS),
        detail="{}",
    )
    return row


def _json(detail: dict[str, Any]) -> str:
    return json.dumps(detail, default=str, ensure_ascii=False)[:DETAIL_CHARS]


def datasheet(plan: TrialsPlan, steps: int) -> str:
    """DATASHEET.md: what the files hold, how they were collected, and their known limits."""
    spec = plan.spec
    sim = "sim" in spec.models
    fields = "\n".join(
        [
            "### trials.csv / trials.parquet (one row per trial)",
            "",
            *(f"- `{k}`: {v}" for k, v in TRIAL_COLUMNS.items()),
            "",
            "### conditions.csv / conditions.parquet (one row per condition)",
            "",
            *(f"- `{k}`: {v}" for k, v in CONDITION_COLUMNS.items()),
            "",
            "### trajectories.jsonl / trajectories.parquet (one row per step)",
            "",
            *(f"- `{k}`: {v}" for k, v in STEP_COLUMNS.items()),
        ]
    )
    return _DATASHEET.format(
        experiment=spec.experiment,
        written=time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        models=", ".join(f"`{m}`" for m in spec.models),
        personas=", ".join(f"`{p[:60]}`" for p in spec.personas),
        affordances=", ".join(f"`{a}`" for a in spec.affordances),
        trials=spec.trials,
        total=len(plan.trials),
        steps=steps,
        first=spec.first_seed,
        last=spec.first_seed + spec.trials - 1,
        overrides=", ".join(f"`{o}`" for o in spec.overrides) or "none",
        sim=_SIM_NOTE if sim else "No condition used the `sim` policy.",
        fields=fields,
    )


_SIM_NOTE = (
    "**Some conditions used the `sim` model: a documented simulation policy with hand-set "
    "probabilities (models/sim), not a language model. Its rows describe those probabilities, "
    "not the behaviour of any model.**"
)

_DATASHEET = (Path(__file__).parent / "datasheet.md").read_text()
