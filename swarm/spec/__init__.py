"""The experiment spec: one strict YAML document feeds the CLI, the runners and k8s.

Below it sits only `swarmlab.core`; everything else reads the spec.
"""

from ._backends import BACKENDS_GROUP, backend_entry_points, backend_kinds
from ._caps import Caps, ProgramLimits
from ._experiment import (
    DEFAULT_FOLLOW_UP,
    DEFAULT_QUESTION,
    ExperimentSpec,
    Seeds,
    builtin_experiments,
    describe_validation_error,
    load_spec,
    spec_from_dict,
)
from ._personas import (
    AFFORDANCE_NOTES,
    PERSONA_NOTES,
    PERSONAS,
    Affordance,
    persona_text,
    system_prompt,
)
from ._sim_options import SimOptions
from ._tripwires import RULES, Tripwire, TripwireRule
from ._world_options import MachineKind, WorldOptions

__all__ = [
    "AFFORDANCE_NOTES",
    "BACKENDS_GROUP",
    "DEFAULT_FOLLOW_UP",
    "DEFAULT_QUESTION",
    "PERSONAS",
    "PERSONA_NOTES",
    "RULES",
    "Affordance",
    "Caps",
    "ExperimentSpec",
    "MachineKind",
    "ProgramLimits",
    "Seeds",
    "SimOptions",
    "Tripwire",
    "TripwireRule",
    "WorldOptions",
    "backend_entry_points",
    "backend_kinds",
    "builtin_experiments",
    "describe_validation_error",
    "load_spec",
    "persona_text",
    "spec_from_dict",
    "system_prompt",
]
