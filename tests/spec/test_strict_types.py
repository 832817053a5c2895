"""A spec's value of the wrong type is refused in one line, never coerced.

The class: pydantic's lax mode turned `caps.programs: true` into 1 program and `"50"` into 50,
so a spec could run as something its author never wrote. Every number and flag field of the
spec is searched here, from a file's YAML and from `--set`, with values of each other type.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import NoneType, UnionType
from typing import Any, get_args

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from swarmlab import load_spec
from swarmlab.core import SpecError
from swarmlab.experiments.sweeps._plan import load_sweep, plan_cells
from swarmlab.spec import ExperimentSpec


def _leaves(model: type[BaseModel], prefix: str = "") -> list[tuple[str, type]]:
    out: list[tuple[str, type]] = []
    for name, field in model.model_fields.items():
        kind: Any = field.annotation
        if isinstance(kind, UnionType):  # `int | None`: the number is what is checked
            kind = next(k for k in get_args(kind) if k is not NoneType)
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            out += _leaves(kind, f"{prefix}{name}.")
        elif kind in (int, float, bool):
            out.append((f"{prefix}{name}", kind))
    return out


LEAVES = _leaves(ExperimentSpec)
WRONG = {
    int: ["true", "false", "'7'", "'1e3'", "2.5", "[1]"],
    float: ["true", "'0.5'", "'1e3'", "[1.0]", "{a: 1}"],
    bool: ["1", "0", "'true'", "0.0"],
}


def test_the_spec_has_number_fields_to_search() -> None:
    kinds = {kind for _, kind in LEAVES}
    assert len(LEAVES) > 40
    assert {int, float} <= kinds


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(LEAVES).flatmap(
        lambda leaf: st.tuples(st.just(leaf), st.sampled_from(WRONG[leaf[1]]))
    )
)
def test_a_value_of_another_type_is_refused_in_one_line(leaf: Any) -> None:
    (field, _), value = leaf
    with pytest.raises(SpecError) as caught:
        load_spec("paperclips", [f"{field}={value}"])
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"--set {field}={value}: {field} = ")


@pytest.mark.parametrize("text", ["caps:\n  programs: true\n", "caps:\n  programs: '50'\n"])
def test_a_file_s_value_of_another_type_is_refused(tmp_path: Path, text: str) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text("name: strict\n" + text)
    with pytest.raises(SpecError, match=r"spec\.yaml: caps\.programs = .*valid integer"):
        load_spec(spec)


def test_numbers_of_the_right_kind_still_read() -> None:
    spec = load_spec("paperclips", ["caps.wall_clock_s=60", "sim.meta_task=1", "seed=11"])
    assert (spec.caps.wall_clock_s, spec.sim.meta_task, spec.seed) == (60.0, 1.0, 11)


@settings(max_examples=200, deadline=None)
@given(st.floats(min_value=0, max_value=1, allow_nan=False))
def test_a_number_as_json_writes_it_reads_back_as_that_number(share: float) -> None:
    # A sweep's cell values reach the spec as JSON text: `1e-05` has no dot, and YAML 1.1 read
    # it as text, which the strict spec then refused. YAML 1.2 and JSON read it as a number.
    spec = load_spec("paperclips", [f"sim.crash={json.dumps(share)}"])
    assert spec.sim.crash == share


def test_a_sweep_cell_with_a_small_share_plans(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(
        "name: tiny\nbase: paperclips\ngrid:\n  sim.crash: [0.00001, 0.5]\nseeds: 1\nparallel: 1\n"
    )
    spec, path = load_sweep(str(sweep))
    crashes = sorted(cell.spec.sim.crash for cell in plan_cells(spec, path))
    assert crashes == [0.00001, 0.5]


def test_a_quoted_number_stays_text_and_is_refused() -> None:
    with pytest.raises(SpecError, match="valid number"):
        load_spec("paperclips", ["sim.crash='1e-05'"])
