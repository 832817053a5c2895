"""The run directory holds one run's record: nothing in it describes another run."""

from __future__ import annotations

import time
from pathlib import Path

from helpers.labelled_run import usage_of

from swarmlab.records import ProgramRecord, RunDir, RunResult
from swarmlab.spec import ExperimentSpec


def _result(out: Path) -> RunResult:
    started = time.time()
    root = ProgramRecord(id="p0", parent_id=None, depth=0, code="x = 1", task="root")
    root.status = "completed"
    return RunResult(
        run_id="second",
        out_dir=out,
        spec=ExperimentSpec(name="second"),
        status="completed",
        ended_because="tree quiescent: every program ended",
        started_at=started,
        ended_at=started + 1,
        usage=usage_of([(root.id, root.parent_id)]),
        programs=[root],
        events=[],
        blackboard={},
        outcome={},
        dialogue=None,
        root_from_file=True,
    )


def test_files_an_interrupted_run_left_are_not_kept_with_the_next_runs_record(
    tmp_path: Path,
) -> None:
    out = tmp_path / "run"
    out.mkdir()
    # An earlier run was stopped after it wrote its dialogue and someone rendered a report.
    (out / "dialogue.json").write_text('{"turns": ["from the earlier run"]}')
    (out / "report.html").write_text("<p>the earlier run</p>")
    (out / "notes.txt").write_text("the researcher's own file")

    RunDir(out).write(_result(out))

    assert not (out / "dialogue.json").exists()  # this run had no dialogue
    assert not (out / "report.html").exists()  # it described the earlier run
    assert (out / "notes.txt").read_text() == "the researcher's own file"
    assert RunDir(out).summary() is not None
    assert [p.id for p in RunDir(out).programs()] == ["p0"]
