"""`swarmlab sweep NAME --seeds N --set key=value`: a quick look at a long sweep, with every cell's
spec changed as asked, in a directory of its own; bad options are one line and exit 2."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers.cli import one_line_error, swarmlab

from swarmlab.core import SpecError
from swarmlab.experiments.sweeps import _plan
from swarmlab.experiments.sweeps._plan import SweepPlan
from swarmlab.spec import read_spec_source

SWEEP = """
name: quick
base: paperclips
set:
  caps.depth: 2
grid:
  affordance: [none, api]
seeds: [1, 2, 3]
"""


def _file(tmp_path: Path) -> str:
    path = tmp_path / "quick.yaml"
    path.write_text(SWEEP)
    return str(path)


def test_seeds_and_set_change_every_cell(tmp_path: Path) -> None:
    plan = SweepPlan.load(
        _file(tmp_path), seeds=1, overrides=["caps.programs=7", "persona=cautious-oracle"]
    )
    assert [(c.condition["affordance"], c.seed) for c in plan.cells] == [("none", 1), ("api", 1)]
    for cell in plan.cells:
        assert cell.spec.caps.programs == 7
        assert cell.spec.caps.depth == 2
        assert cell.spec.persona == "cautious-oracle"
    assert plan.out.name.startswith("quick-set-")  # not the full sweep's cells
    assert SweepPlan.load(_file(tmp_path)).out == Path("sweeps/quick")
    assert len(SweepPlan.load(_file(tmp_path), seeds=2).cells) == 4


@pytest.mark.parametrize(
    ("overrides", "said"),
    [
        (["affordance=api"], "affordance"),
        (["seed=4"], "seed"),
        (["=3"], "key=value"),
        (["caps.programs=-1"], "caps.programs"),
    ],
)
def test_a_set_the_sweep_cannot_take_is_refused(
    tmp_path: Path, overrides: list[str], said: str
) -> None:
    with pytest.raises(SpecError, match=said):
        SweepPlan.load(_file(tmp_path), overrides=overrides)


def test_the_command_line_refuses_bad_options_in_one_line(tmp_path: Path) -> None:
    sweep = _file(tmp_path)
    one_line_error(swarmlab("sweep", sweep, "--seeds", "0"), 2, "seeds")
    one_line_error(swarmlab("sweep", sweep, "--set", "affordance=api"), 2, "--set affordance")
    one_line_error(swarmlab("sweep", sweep, "--parallel", "100000"), 2, "--parallel 100000")
    assert not (tmp_path / "sweeps").exists()


def test_a_text_value_stays_the_text_it_is(tmp_path: Path) -> None:
    """Each cell's values reach its spec as they are: a question holding ` #1` kept only what
    came before it (YAML read the rest as a comment), and "null" or "yes" changed type."""
    questions = ["how do I make paperclips", "how do I make paperclips #1 fastest?", "yes"]
    path = tmp_path / "texts.yaml"
    path.write_text(
        "name: texts\nbase: paperclips\nseeds: [1]\nset:\n  model_name: 'null'\n"
        f"grid:\n  question: {json.dumps(questions)}\n"
    )
    plan = SweepPlan.load(str(path))
    assert [c.spec.question for c in plan.cells] == questions
    assert {c.spec.model_name for c in plan.cells} == {"null"}


@pytest.mark.parametrize(
    ("field", "grid", "said"),
    [
        ("caps.wall_clock_s", "[5, 5.0]", "are one run"),  # a whole number is a float there
        ("caps.programs", "[5, '5']", "valid integer"),  # the spec takes no text for a number
        ("caps.programs", "[5, 5.0]", "valid integer"),
        ("caps.programs", "[1, true]", "valid integer"),
    ],
)
def test_two_conditions_that_are_one_run_are_refused(
    tmp_path: Path, field: str, grid: str, said: str
) -> None:
    path = tmp_path / "twice.yaml"
    path.write_text(f"name: twice\nbase: paperclips\nseeds: [1]\ngrid:\n  {field}: {grid}\n")
    with pytest.raises(SpecError, match=said):
        SweepPlan.load(str(path))


def test_the_base_is_read_once_and_kept_as_a_path_that_rebuilds_the_sweep(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "mybase.yaml").write_text("name: mybase\ncaps:\n  programs: 5\n")
    (folder / "sweep.yaml").write_text("name: relb\nbase: mybase.yaml\nseeds: 4\n")
    reads: list[str] = []

    def counted(source: str) -> Any:
        reads.append(source)
        return read_spec_source(source)

    monkeypatch.setattr(_plan, "read_spec_source", counted)
    plan = SweepPlan.load(str(folder / "sweep.yaml"))
    assert len(plan.cells) == 4
    assert {c.spec.caps.programs for c in plan.cells} == {5}
    assert reads == [str((folder / "mybase.yaml").resolve())]
    # The sweep directory's copy of the sweep names the base so that it rebuilds from anywhere.
    saved = tmp_path / "out" / "sweep.yaml"
    saved.parent.mkdir()
    saved.write_text(yaml.safe_dump(plan.sweep.model_dump(), sort_keys=False))
    again = SweepPlan.load(str(saved))
    assert [c.spec for c in again.cells] == [c.spec for c in plan.cells]


def test_a_finished_cell_whose_spec_changed_since_is_not_resumed(tmp_path: Path) -> None:
    """Resuming skipped a finished cell by its directory alone: after the sweep's `set:` changed
    from 5 programs to 50, its table labelled the old run with the new spec's values."""
    sweep = tmp_path / "resumed.yaml"
    sweep.write_text("name: resumed\nbase: paperclips\nseeds: [1]\nset:\n  caps.programs: 5\n")
    out = tmp_path / "out"
    before = SweepPlan.load(str(sweep), out_dir=out)
    (out / "cells" / before.cells[0].id).mkdir(parents=True)
    (out / "cells" / before.cells[0].id / "summary.json").write_text("{}")
    (out / _plan.PLAN_FILE).write_text(json.dumps(before.fingerprints()))
    SweepPlan.load(str(sweep), out_dir=out).refuse_changed_cells()  # the same plan: resumed

    sweep.write_text(sweep.read_text().replace("programs: 5", "programs: 50"))
    with pytest.raises(SpecError, match="ran with another spec than the sweep plans now"):
        SweepPlan.load(str(sweep), out_dir=out).refuse_changed_cells()
    (out / _plan.PLAN_FILE).write_text("[1, 2]")  # a plan.json that is not one
    with pytest.raises(SpecError, match="not a sweep's plan"):
        SweepPlan.load(str(sweep), out_dir=out).refuse_changed_cells()
