"""The experiment spec: one strict YAML document feeds the CLI, the runners and k8s.

Below it sits only `swarmlab.core`; everything else reads the spec.
"""

from ._backends import BACKENDS_GROUP, backend_entry_points, backend_kinds, model_problem
from ._caps import (
    MAX_COUNT,
    TELEMETRY_BYTES,
    TELEMETRY_CAP,
    Caps,
    ProgramLimits,
    redis_memory_bytes,
    shared_redis_memory_bytes,
)
from ._experiment import (
    DEFAULT_FOLLOW_UP,
    DEFAULT_QUESTION,
    MAX_PARALLEL,
    SEED_MAX,
    SEED_MIN,
    ExperimentSpec,
    Seeds,
    builtin_experiments,
    describe_validation_error,
    load_spec,
    read_spec_source,
    read_text_file,
    spec_from,
    spec_from_dict,
)
from ._names import (
    REDIS_SCHEMES,
    REDIS_TLS_OPTIONS,
    RUN_ID_RULE,
    check_redis_url,
    check_run_id,
    is_redis_url,
    is_run_id,
    redis_url_problem,
    shown_redis_url,
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
    "MAX_COUNT",
    "MAX_PARALLEL",
    "PERSONAS",
    "PERSONA_NOTES",
    "REDIS_SCHEMES",
    "REDIS_TLS_OPTIONS",
    "RULES",
    "RUN_ID_RULE",
    "SEED_MAX",
    "SEED_MIN",
    "TELEMETRY_BYTES",
    "TELEMETRY_CAP",
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
    "check_redis_url",
    "check_run_id",
    "describe_validation_error",
    "is_redis_url",
    "is_run_id",
    "load_spec",
    "model_problem",
    "persona_text",
    "read_spec_source",
    "read_text_file",
    "redis_memory_bytes",
    "redis_url_problem",
    "shared_redis_memory_bytes",
    "shown_redis_url",
    "spec_from",
    "spec_from_dict",
    "system_prompt",
]
