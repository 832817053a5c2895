"""The cluster's model is the default wherever the cluster names one; an explicit choice wins.

The whole path (a Ray head whose environment names a real OpenAI-compatible server, `swarmlab
submit paperclips`) is in test_k8s_submit.py; here, the rule itself and its one-line errors.
"""

from __future__ import annotations

import pytest
from helpers.cli import one_line_error, swarmlab

from swarmlab import load_spec
from swarmlab.cli._model_choice import (
    FROM_CLUSTER,
    FROM_COMMAND_LINE,
    FROM_DEFAULT,
    FROM_SPEC,
    choose_model,
    describe,
)
from swarmlab.core import SpecError

CLUSTER = {"SWARMLAB_MODEL_URL": "http://llm:8000/v1", "SWARMLAB_MODEL_NAME": "swarmlab-llm"}


def test_a_builtin_experiment_on_a_cluster_asks_the_clusters_model() -> None:
    spec = load_spec("paperclips")
    assert spec.model == "sim"  # what the built-in YAML says
    choice = choose_model(spec, None, CLUSTER)
    assert choice.chosen_by == FROM_CLUSTER
    assert choice.spec.model == "openai:http://llm:8000/v1"
    assert choice.spec.model_name == "swarmlab-llm"
    # Nothing else of the spec moves.
    assert choice.spec.model_dump(exclude={"model", "model_name"}) == spec.model_dump(
        exclude={"model", "model_name"}
    )
    assert "--model sim" in describe(choice)


@pytest.mark.parametrize(
    ("overrides", "explicit", "model", "chosen_by"),
    [
        (["model=sim"], "sim", "sim", FROM_COMMAND_LINE),  # --model sim: the simulation policy
        (["model=openai:http://other:9/v1"], "openai:http://other:9/v1", None, FROM_COMMAND_LINE),
        (["model=openai:http://mine:8000/v1"], None, None, FROM_SPEC),  # a spec naming a model
        (["model=local"], None, "local", FROM_SPEC),
    ],
)
def test_an_explicit_or_non_default_model_wins(
    overrides: list[str], explicit: str | None, model: str | None, chosen_by: str
) -> None:
    spec = load_spec("paperclips", overrides)
    choice = choose_model(spec, explicit, CLUSTER)
    assert choice.chosen_by == chosen_by
    assert choice.spec == spec
    if model:
        assert choice.spec.model == model


def test_the_spec_keeps_its_model_name_at_the_clusters_url() -> None:
    spec = load_spec("paperclips", ["model_name=another-served-model"])
    choice = choose_model(spec, None, CLUSTER)
    assert (choice.spec.model, choice.spec.model_name) == (
        "openai:http://llm:8000/v1",
        "another-served-model",
    )


def test_without_a_cluster_model_the_default_stays() -> None:
    spec = load_spec("paperclips")
    for env in ({}, {"SWARMLAB_MODEL_URL": "  "}, {"SWARMLAB_MODEL_NAME": "x"}):
        choice = choose_model(spec, None, env)
        assert (choice.chosen_by, choice.spec) == (FROM_DEFAULT, spec)


@pytest.mark.parametrize("url", ["llm:8000/v1", "ftp://llm/v1", "http://"])
def test_a_malformed_cluster_model_url_is_one_line_naming_the_variable(url: str) -> None:
    with pytest.raises(SpecError, match="SWARMLAB_MODEL_URL"):
        choose_model(load_spec("paperclips"), None, {"SWARMLAB_MODEL_URL": url})
    done = swarmlab("run", "paperclips", SWARMLAB_MODEL_URL=url)
    one_line_error(done, 2, "SWARMLAB_MODEL_URL", url, "http://llm:8000/v1")
