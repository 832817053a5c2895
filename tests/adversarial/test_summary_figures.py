"""summary.json's figures that the records give too (programs by status, the tree, the caps'
use Redis kept at the end, restarts, failed and resent model calls) are held to the records when
a run directory is read back: the report page never shows a figure beside a contrary one."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from helpers.cli import one_line_error, swarmlab
from helpers.labelled_run import write_run_dir
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from swarmlab import SpecError
from swarmlab.records import RunDir

SEARCH = settings(
    max_examples=60, deadline=10_000, suppress_health_check=list(HealthCheck), database=None
)
FIGURES = [
    ("programs", "by_status", "completed"),
    ("programs", "by_status", "running"),
    ("tree", "size"),
    ("tree", "max_depth"),
    ("tree", "branching"),
    ("caps", "programs", "used"),
    ("caps", "depth", "used"),
    ("caps", "children", "used"),
    ("programs_restarted",),
    ("model", "failed_calls"),
    ("model", "resent_calls"),
]


def _set(data: dict[str, Any], path: tuple[str, ...], value: Any) -> Any:
    """Set data[path] to `value`; the value it had (None when absent)."""
    *parents, last = path
    for key in parents:
        data = data.setdefault(key, {})
    was = data.get(last)
    data[last] = value
    return was


def test_a_cap_s_use_the_records_contradict_is_refused_naming_the_field(tmp_path: Path) -> None:
    run = write_run_dir(tmp_path / "run")
    summary = json.loads((run / "summary.json").read_text())
    summary["caps"]["programs"]["used"] = 77777
    (run / "summary.json").write_text(json.dumps(summary))
    done = swarmlab("report", str(run))
    one_line_error(done, 2, f"{run / 'summary.json'}:", "caps.programs.used = 77777", "give 7")
    assert not (run / "report.html").exists()


@SEARCH
@given(
    figure=st.sampled_from(FIGURES),
    value=st.one_of(st.integers(-2, 10**6), st.sampled_from([0, 1, 2, 7, 2.0, 1.5, 2**63])),
    last_seen=st.booleans(),
)
def test_a_figure_of_summary_json_is_its_records_or_refused(
    figure: tuple[str, ...], value: Any, last_seen: bool
) -> None:
    """Any figure changed in summary.json: refused naming summary.json and the field, unless it
    still says what the records say (or is a cap's use of a run whose Redis was gone at its
    end, which its records need not match)."""
    with tempfile.TemporaryDirectory() as tmp:
        run = write_run_dir(Path(tmp) / "run", with_traces=False)
        summary = json.loads((run / "summary.json").read_text())
        summary["caps_last_seen"] = last_seen
        was = _set(summary, figure, value)
        (run / "summary.json").write_text(json.dumps(summary))
        try:
            RunDir(run).records()
        except SpecError as exc:
            said = str(exc)
        else:
            said = ""
    # An absent count reads as 0, except a status: the runtime never writes a status of none.
    status = figure[1:2] == ("by_status",)
    field = ".".join(figure[:2]) if status else ".".join(figure)
    unchanged = was == value or (was is None and value == 0 and not status)
    if unchanged or (figure[0] == "caps" and last_seen):
        assert said == ""
    else:
        assert said.startswith(f"{run / 'summary.json'}: "), said  # its type, or its records
        assert field in said
        assert "\n" not in said


def test_a_recovered_run_without_its_dialogue_reads_back(tmp_path: Path) -> None:
    """The watchdog that writes a recovered run's directory never had the root dialogue (its
    dead driver held it): what the runtime writes of such a run reads back."""
    run = write_run_dir(tmp_path / "run", with_traces=False)
    (run / "dialogue.json").unlink()
    summary = json.loads((run / "summary.json").read_text())
    (run / "summary.json").write_text(json.dumps({**summary, "recovered": True}))
    read = RunDir(run).records()
    assert read.summary is not None
    assert read.dialogue is None
    assert len(read.programs) == 7
