"""Every number a spec, sweep or trials file may set has an upper bound.

A world option of 1e308 clips an hour made `int(inf)` end a finished run with a traceback and no
summary.json; 1e300 made a run directory the lab then refused to read (a paperclip count of 302
digits); 2,000 personas x 1,000 trials planned six million trials in 6 GB. Each number is
bounded where it is declared, so the class is found by walking the models: a new field without
a bound fails here, unless a validator bounds it and a probe below shows the refusal.
"""

from __future__ import annotations

import typing
from typing import Any

import annotated_types
import pytest
from pydantic import BaseModel, ValidationError

from swarmlab import load_spec
from swarmlab.experiments import SweepSpec, TrialsSpec
from swarmlab.spec import ExperimentSpec, WorldOptions
from swarmlab.spec._tripwires import Tripwire

HUGE = 10**30

BOUNDED_BY_A_VALIDATOR: dict[tuple[str, str], str] = {
    ("SweepSpec", "seeds"): "each seed becomes a cell spec's `seed`, which is bounded",
    ("TrialsSpec", "pass_k"): "`_positive_k`: each k from 1 to MAX_TRIALS",
    ("Tripwire", "threshold"): "each rule's `check_threshold`; edge counts only compare",
    ("WorldOptions", "action_hours"): "`_known_actions`: 0-24 hours each",
}


def _models(annotation: Any, seen: dict[str, type[BaseModel]]) -> None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        if annotation.__name__ not in seen:
            seen[annotation.__name__] = annotation
            for field in annotation.model_fields.values():
                _models(field.annotation, seen)
        return
    for arg in typing.get_args(annotation):
        _models(arg, seen)


def _numeric(annotation: Any) -> bool:
    if annotation in (int, float):
        return True
    return any(_numeric(arg) for arg in typing.get_args(annotation))


def _unbounded() -> set[tuple[str, str]]:
    seen: dict[str, type[BaseModel]] = {}
    for model in (ExperimentSpec, SweepSpec, TrialsSpec):
        _models(model, seen)
    return {
        (name, field_name)
        for name, model in seen.items()
        for field_name, field in model.model_fields.items()
        if _numeric(field.annotation)
        and not any(isinstance(m, annotated_types.Le | annotated_types.Lt) for m in field.metadata)
    }


def test_every_number_a_file_may_set_has_an_upper_bound() -> None:
    assert _unbounded() == set(BOUNDED_BY_A_VALIDATOR)


@pytest.mark.parametrize(
    "build",
    [
        lambda: SweepSpec(name="s", seeds=[HUGE]),
        lambda: TrialsSpec(experiment="paperclips", models=["sim"], trials=1, pass_k=[HUGE]),
        lambda: Tripwire(name="t", rule="quine", threshold=HUGE),
        lambda: WorldOptions(action_hours={"buy": HUGE}),
    ],
    ids=[f"{model}.{field}" for model, field in BOUNDED_BY_A_VALIDATOR],
)
def test_each_number_bounded_by_a_validator_refuses_a_huge_value(build: Any) -> None:
    with pytest.raises((ValidationError, ValueError)):
        build()


@pytest.mark.parametrize(
    "override",
    [
        "world.machines.wire-bender.clips_per_hour=1.0e+300",
        "world.delivery_hours_max=1.0e+308",
        "world.unreliable_delay_hours_max=1.0e+308",
        "world.gift_clips_max=1000000000000000",
        "world.machines.wire-bender.build_hours=1.0e+308",
    ],
)
def test_a_world_option_past_its_bound_is_refused(override: str) -> None:
    with pytest.raises(Exception, match="less than or equal"):
        load_spec("paperclips", [override])
