"""Which model a run uses: the command line, then the spec, then the cluster's own model.

A cluster names its model server in its environment (k8s/base/settings.env, in every Ray pod):
`SWARMLAB_MODEL_URL`, an OpenAI-compatible base URL, and `SWARMLAB_MODEL_NAME`, the name it
serves. Where it does, a run whose spec keeps the default model (`sim`, as the built-in
experiments do) asks that server instead: deploying a model and then measuring the simulation
policy by accident is the mistake this prevents. An explicit `--model` (including `--model sim`)
or a spec that names another model (`openai:...`, `local`, `replay:...`) always wins.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from swarmlab.spec import ExperimentSpec, env_value

MODEL_URL_ENV = "SWARMLAB_MODEL_URL"
MODEL_NAME_ENV = "SWARMLAB_MODEL_NAME"
DEFAULT_MODEL = str(ExperimentSpec.model_fields["model"].default)

FROM_COMMAND_LINE = "--model"
FROM_SPEC = "the spec"
FROM_CLUSTER = f"the cluster's {MODEL_URL_ENV}"
FROM_DEFAULT = "the default"


@dataclass(frozen=True)
class ModelChoice:
    """The spec as it will run, and who chose its model (one of the FROM_* phrases)."""

    spec: ExperimentSpec
    chosen_by: str

    @property
    def from_cluster(self) -> bool:
        return self.chosen_by == FROM_CLUSTER


def choose_model(spec: ExperimentSpec, explicit: str | None, env: Mapping[str, str]) -> ModelChoice:
    """Apply the cluster's model where neither the command line nor the spec chose one.

    `spec` already carries `explicit` (the `--model` value) when one was given.
    """
    if explicit:
        return ModelChoice(spec, FROM_COMMAND_LINE)
    if spec.model != DEFAULT_MODEL:
        return ModelChoice(spec, FROM_SPEC)
    url = env_value(MODEL_URL_ENV, env)  # checked as --model openai:URL is
    if not url:
        return ModelChoice(spec, FROM_DEFAULT)
    name = spec.model_name or env_value(MODEL_NAME_ENV, env)
    chosen = spec.model_copy(update={"model": f"openai:{url}", "model_name": name})
    return ModelChoice(chosen, FROM_CLUSTER)


def describe(choice: ModelChoice) -> str:
    """One line for the user: the model, its served name, who chose it and how to override."""
    named = f" ({choice.spec.model_name})" if choice.spec.model_name else ""
    line = f"model {choice.spec.model}{named}, from {choice.chosen_by}"
    if choice.from_cluster:
        line += f"; --model {DEFAULT_MODEL} runs the simulation policy instead"
    return line
