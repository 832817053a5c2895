"""`swarmlab sweep NAME --seeds N --set key=value`: a quick look at a long sweep, with every cell's
spec changed as asked, in a directory of its own; bad options are one line and exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.cli import one_line_error, swarmlab

from swarmlab.core import SpecError
from swarmlab.experiments.sweeps._plan import SweepPlan

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
    assert not (tmp_path / "sweeps").exists()
