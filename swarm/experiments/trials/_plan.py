"""A trials plan: which experiment, which models x personas x affordances, how many trials each.

Trial i of every condition runs with seed `first_seed + i` (its world, model-sampling and
sandbox seeds all follow it unless the experiment sets `seeds.*` apart): trials of one condition
are independent draws, and trial i of two conditions shares its seed, so conditions can be
compared trial by trial. The plan is saved as `trials.yaml` in the trials directory; running the
same plan again resumes it, and a different plan there is refused.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from swarmlab.core import SpecError, present, read_yaml, write_text
from swarmlab.records import RunDir, RunSummary
from swarmlab.spec import (
    SEED_MAX,
    SEED_MIN,
    Affordance,
    ExperimentSpec,
    builtin_experiments,
    describe_validation_error,
    load_spec,
    mapping_of_fields,
    spec_from_dict,
)

PLAN_FILE = "trials.yaml"
MAX_TRIALS = 1000
MAX_TRIAL_RUNS = 10_000
"""Most runs (conditions x trials) one trials set may plan, checked before any is planned."""
MAX_PASS_K = 20
"""Most pass@k columns a table may have."""


class TrialsSpec(BaseModel):
    """What a `swarmlab trials` run asks: conditions (model x persona x affordance) x trials."""

    model_config = ConfigDict(extra="forbid")

    experiment: str = Field(description="A built-in experiment or an experiment YAML file.")
    models: list[str] = Field(
        min_length=1, description="Model strings: local, openai:<base-url>, sim, ..."
    )
    personas: list[str] = Field(
        default_factory=lambda: ["truthful-assistant"],
        min_length=1,
        description="Built-in persona names or persona texts.",
    )
    affordances: list[Affordance] = Field(
        default_factory=lambda: list[Affordance](["none"]),
        min_length=1,
        description="What the model is told about calling itself: none, hint, api.",
    )
    trials: int = Field(ge=1, le=MAX_TRIALS, description="Independent trials per condition.")
    first_seed: int = Field(
        default=1,
        ge=SEED_MIN,
        le=SEED_MAX,
        description="Trial i runs with seed first_seed + i (every one a 64-bit seed).",
    )
    overrides: list[str] = Field(
        default_factory=list, description="`key=value` spec overrides for every trial."
    )
    pass_k: list[int] = Field(
        default_factory=lambda: [1, 5, 10],
        max_length=MAX_PASS_K,
        description=f"The k of the pass@k columns (at most {MAX_PASS_K}, each 1..{MAX_TRIALS}).",
    )
    stats_seed: int = Field(
        default=0, ge=SEED_MIN, le=SEED_MAX, description="Seed of the bootstrap resampling."
    )

    @field_validator("pass_k")
    @classmethod
    def _positive_k(cls, value: list[int]) -> list[int]:
        if not value or any(not 1 <= k <= MAX_TRIALS for k in value):
            raise ValueError(f"each k must be from 1 to {MAX_TRIALS}")
        return sorted(set(value))

    @field_validator("models", "personas", "affordances")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        """A value listed twice would run one condition twice and count its trials twice."""
        if any(not v.strip() for v in value):
            raise ValueError("must not be empty")
        if len(set(value)) != len(value):
            raise ValueError("lists a value twice")
        return value

    @model_validator(mode="after")
    def _runs_bounded(self) -> TrialsSpec:
        """Conditions x trials at most `MAX_TRIAL_RUNS`, counted without building them."""
        runs = len(self.models) * len(self.personas) * len(self.affordances) * self.trials
        if runs > MAX_TRIAL_RUNS:
            raise ValueError(
                f"{runs} trials planned (conditions x trials; at most {MAX_TRIAL_RUNS} a set)"
            )
        return self

    @model_validator(mode="after")
    def _seeds_fit(self) -> TrialsSpec:
        if self.first_seed + self.trials - 1 > SEED_MAX:
            raise ValueError(
                f"first_seed {self.first_seed} + {self.trials} trials passes the largest seed "
                f"({SEED_MAX})"
            )
        return self

    @model_validator(mode="after")
    def _conditions_apart(self) -> TrialsSpec:
        """Two conditions writing one directory (`a__b` x `c` and `a` x `b__c`) would be one
        set of runs counted as two conditions."""
        seen: dict[str, Condition] = {}
        for condition in self.conditions():
            other = seen.setdefault(condition.slug, condition)
            if other is not condition:
                raise ValueError(
                    f"conditions {other.label} and {condition.label} would write one directory "
                    f"({condition.slug[:100]}); tell them apart"
                )
        return self

    def conditions(self) -> list[Condition]:
        return [
            Condition(model, persona, affordance)
            for model, persona, affordance in itertools.product(
                self.models, self.personas, self.affordances
            )
        ]


@dataclass(frozen=True)
class Condition:
    """One cell of the table: a model under a persona with an affordance."""

    model: str
    persona: str
    affordance: str

    @property
    def label(self) -> str:
        """The condition in a message (each value cut short)."""
        return f"({self.model[:40]!r}, {self.persona[:40]!r}, {self.affordance[:40]!r})"

    @property
    def slug(self) -> str:
        """A directory name for the condition; long or unusual values end in a short hash."""
        text = f"{self.model}__{self.persona}__{self.affordance}"
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", text)[:90]
        if slug != text:
            slug += "-" + hashlib.sha1(text.encode()).hexdigest()[:8]
        return slug


@dataclass(frozen=True)
class Trial:
    """One independent run of a condition."""

    condition: Condition
    index: int
    seed: int
    spec: ExperimentSpec

    @property
    def id(self) -> str:
        return f"{self.condition.slug}/t{self.index:03d}"


@dataclass
class TrialsPlan:
    """A validated plan and where its trials write."""

    spec: TrialsSpec
    trials: list[Trial]
    out: Path

    @classmethod
    def create(cls, spec: TrialsSpec, out: Path) -> TrialsPlan:
        """Validate every trial's experiment now, so a bad condition stops nothing midway."""
        source = spec.experiment
        if source not in builtin_experiments() and not present(source):
            known = ", ".join(builtin_experiments())
            raise SpecError(f"no experiment named '{source}' and no such file (built-in: {known})")
        base = load_spec(source, spec.overrides)
        trials = []
        for condition in spec.conditions():
            for index in range(spec.trials):
                seed = spec.first_seed + index
                trial_spec = _condition_spec(base, condition, seed)
                trials.append(Trial(condition, index, seed, trial_spec))
        return cls(spec, trials, out)

    @classmethod
    def load(cls, out: Path) -> TrialsPlan:
        """The plan a trials directory was made with."""
        path = out / PLAN_FILE
        if not present(path):
            raise SpecError(f"{out}: not a trials directory (no {PLAN_FILE})")
        try:
            data = mapping_of_fields(read_yaml(path), TrialsSpec, path, "trials plan")
            spec = TrialsSpec.model_validate(data)
        except ValidationError as exc:
            raise SpecError(f"{path}: {describe_validation_error(exc, TrialsSpec)}") from None
        return cls.create(spec, out)

    def refuse_another(self) -> None:
        """A directory that holds another plan is refused."""
        path = self.out / PLAN_FILE
        if present(path) and read_yaml(path) != self.spec.model_dump():
            raise SpecError(
                f"{self.out} holds trials of another plan ({path}); pass another --out "
                "or repeat that plan to resume it"
            )

    def save(self) -> None:
        """Write trials.yaml; a directory that holds another plan is refused."""
        self.refuse_another()
        self.out.mkdir(parents=True, exist_ok=True)
        write_text(self.out / PLAN_FILE, yaml.safe_dump(self.spec.model_dump(), sort_keys=False))

    def trial_dir(self, trial: Trial) -> Path:
        return self.out / "runs" / trial.condition.slug / f"t{trial.index:03d}"

    def trial_summary(self, trial: Trial) -> RunSummary | None:
        """The trial's summary.json, refused when it is not of the run planned for the trial
        (its seed, its condition, the plan's overrides)."""
        return RunDir(self.trial_dir(trial)).planned_summary(trial.spec)


def _condition_spec(base: ExperimentSpec, condition: Condition, seed: int) -> ExperimentSpec:
    data = base.model_dump()
    data.update(
        model=condition.model,
        persona=condition.persona,
        affordance=condition.affordance,
        seed=seed,
    )
    return spec_from_dict(data, origin=f"trials {condition.model} / {condition.persona[:40]}")
