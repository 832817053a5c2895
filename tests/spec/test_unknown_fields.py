"""An unknown field in any spec file (experiment, sweep, trials plan), at any depth, is named with
the fields allowed at that place in that kind of file: never another model's fields, never an
empty list."""

from __future__ import annotations

import typing
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from swarmlab.experiments import SweepSpec, TrialsSpec
from swarmlab.spec import ExperimentSpec
from swarmlab.spec._experiment import describe_validation_error

MODELS: list[type[BaseModel]] = [ExperimentSpec, SweepSpec, TrialsSpec]


Place = tuple[tuple[str, ...], Any]


def _nested(model: type[BaseModel], path: tuple[str, ...] = ()) -> list[Place]:
    """Every place in `model` that is itself a model: its path and the model there."""
    found: list[Place] = [(path, model)]
    for name, field in model.model_fields.items():
        annotation = field.annotation
        items: dict[Any, tuple[str, ...]] = {list: ("0",), tuple: ("0",), dict: ("key",)}
        item = items.get(typing.get_origin(annotation), ())
        for inner in (annotation, *typing.get_args(annotation)):
            if isinstance(inner, type) and issubclass(inner, BaseModel):
                found += _nested(inner, (*path, name, *item))
    return found


PLACES = [(m, path, inner) for m in MODELS for path, inner in _nested(m)]


def test_every_kind_of_spec_has_nested_places_to_check() -> None:
    assert {m.__name__ for m, path, _ in PLACES if path} >= {"ExperimentSpec", "SweepSpec"}


@pytest.mark.parametrize(
    ("model", "path", "inner"), PLACES, ids=[f"{m.__name__}:{'.'.join(p)}" for m, p, _ in PLACES]
)
def test_an_unknown_field_names_the_fields_allowed_there(
    model: type[BaseModel], path: tuple[str, ...], inner: type[BaseModel]
) -> None:
    document: Any = {"bogus_field": 1}
    for name in reversed(path):
        document = [document] if name == "0" else {name: document}  # "key": a mapping's
    with pytest.raises(ValidationError) as raised:
        model.model_validate(document)
    errors = [e for e in raised.value.errors() if e["type"] == "extra_forbidden"]
    assert errors
    detail = {"type": "extra_forbidden", "loc": errors[0]["loc"], "input": 1}
    only = ValidationError.from_exception_data(raised.value.title, [detail])  # type: ignore[list-item]
    said = describe_validation_error(only, model)
    assert f"unknown field '{'.'.join((*path, 'bogus_field'))}'" in said
    allowed = said.split("(allowed here: ", 1)[1].rstrip(")").split(", ")
    assert allowed == list(inner.model_fields)


@pytest.mark.parametrize(
    "value",
    [10**5000, "x" * 100_000, [[[[]]]] * 10_000, {"k": 10**5000}, float("nan")],
    ids=["huge-int", "long-text", "long-list", "huge-int-inside", "nan"],
)
def test_a_bad_value_is_quoted_short_however_large(value: Any) -> None:
    """The value quoted in the message is bounded: an int too long for Python to print once
    turned the refusal of a spec into a traceback."""
    with pytest.raises(ValidationError) as raised:
        ExperimentSpec.model_validate({"caps": {"programs": value}})
    said = describe_validation_error(raised.value, ExperimentSpec)
    assert said.startswith("caps.programs = ")
    assert "\n" not in said
    assert len(said) < 300
