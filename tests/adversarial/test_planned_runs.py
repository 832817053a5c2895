"""A run directory counted as a run it is not: a sweep's cell or a trial copied, linked or edited
over another was read as a run of the other's seed and condition (one run counted twice, its
numbers under another label), and a plan edited after its runs labelled them with values they
never ran with. Searched with hypothesis through the command line, in process (no Ray, no Redis):
each such directory is refused in one line naming its summary.json.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from helpers.cli import assert_plain_outcome, cli
from helpers.labelled_run import usage_of
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from swarmlab.experiments.sweeps._plan import SweepPlan
from swarmlab.experiments.trials._plan import TrialsPlan
from swarmlab.records import Event, ProgramRecord, RunDir, RunResult
from swarmlab.spec import ExperimentSpec

SEARCH = settings(
    max_examples=20, deadline=None, suppress_health_check=list(HealthCheck), database=None
)
SWEEP = {"name": "tiny", "base": "paperclips", "set": {"caps.programs": 6},
         "cells": [{}, {"sim.crash": 0}], "seeds": [1, 2], "parallel": 1}  # fmt: skip
TRIALS = {"experiment": "paperclips", "models": ["sim"], "trials": 2,
          "overrides": ["caps.programs=6"]}  # fmt: skip


def write_run(out: Path, spec: ExperimentSpec, run_id: str) -> None:
    """A finished run of `spec` as the lab writes one (one program)."""
    record = ProgramRecord(id="p0", code="x = 1", status="completed", started_at=1.0, ended_at=2.0)
    events = [
        Event(t=1.0, program="p0", kind="start", decision="info"),
        Event(t=2.0, program="p0", kind="end", decision="info"),
    ]
    result = RunResult(
        run_id=run_id, out_dir=out, spec=spec, status="completed",
        ended_because="tree quiescent", started_at=1.0, ended_at=2.5,
        usage=usage_of([("p0", None)]),
        programs=[record], events=events, blackboard={}, outcome={"paperclips": spec.seed},
        dialogue=None, root_from_file=True,
    )  # fmt: skip
    RunDir(out).write(result)


def sweep_dir(root: Path) -> tuple[Path, list[Path]]:
    out = root / "sweep"
    out.mkdir()
    (out / "sweep.yaml").write_text(yaml.safe_dump(SWEEP))
    plan = SweepPlan.load(str(out / "sweep.yaml"), out_dir=out)
    for cell in plan.cells:
        write_run(plan.cell_dir(cell), cell.spec, plan.cell_run_id(cell))
    return out, [plan.cell_dir(c) for c in plan.cells]


def trials_dir(root: Path) -> tuple[Path, list[Path]]:
    out = root / "trials"
    out.mkdir()
    (out / "trials.yaml").write_text(yaml.safe_dump(TRIALS))
    plan = TrialsPlan.load(out)
    for trial in plan.trials:
        write_run(plan.trial_dir(trial), trial.spec, f"trials-x-{trial.index}")
    return out, [plan.trial_dir(t) for t in plan.trials]


def _copy(source: Path, target: Path) -> None:
    shutil.rmtree(target)
    shutil.copytree(source, target)


def _link(source: Path, target: Path) -> None:
    shutil.rmtree(target)
    target.symlink_to(source.resolve(), target_is_directory=True)


def _edit(source: Path, target: Path) -> None:
    """Change one thing the run ran with, in its own summary.json."""
    del source
    path = target / "summary.json"
    summary = json.loads(path.read_text())
    summary["spec"]["caps"]["programs"] = 7
    path.write_text(json.dumps(summary))


MOVES: dict[str, Callable[[Path, Path], None]] = {"copy": _copy, "link": _link, "edit": _edit}
COMMANDS = {"sweep": (sweep_dir, ("report",)), "trials": (trials_dir, ("trials", "table"))}


@SEARCH
@given(kind=st.sampled_from(sorted(COMMANDS)), move=st.sampled_from(sorted(MOVES)), data=st.data())
def test_a_run_moved_over_another_is_refused_naming_its_summary(
    kind: str, move: str, data: Any
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        make, command = COMMANDS[kind]
        out, runs = make(Path(tmp))
        assert_plain_outcome(cli(*command, str(out)), (0,))
        source = data.draw(st.sampled_from(runs), label="source")
        target = data.draw(st.sampled_from([r for r in runs if r != source]), label="target")
        MOVES[move](source, target)
        result = cli(*command, str(out))
        assert_plain_outcome(result, (2,))
        assert f"{target / 'summary.json'}: not the run planned here" in result[2]


def test_a_plan_edited_after_its_trials_ran_is_refused() -> None:
    """The datasheet named overrides no trial had run with."""
    with tempfile.TemporaryDirectory() as tmp:
        out, _ = trials_dir(Path(tmp))
        edited = {**TRIALS, "overrides": ["caps.programs=7"]}
        (out / "trials.yaml").write_text(yaml.safe_dump(edited))
        result = cli("trials", "table", str(out))
        assert_plain_outcome(result, (2,))
        assert "not the run planned here (its caps is another)" in result[2]
