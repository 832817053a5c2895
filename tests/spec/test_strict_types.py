"""A spec's value of the wrong type is refused in one line, never coerced.

The class: pydantic's lax mode turned `caps.programs: true` into 1 program and `"50"` into 50,
so a spec could run as something its author never wrote. Every number and flag field of the
spec is searched here, from a file's YAML and from `--set`, with values of each other type.
"""

from __future__ import annotations

from pathlib import Path
from types import NoneType, UnionType
from typing import Any, get_args

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from swarmlab import load_spec
from swarmlab.core import SpecError
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
