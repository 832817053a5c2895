"""swarmlab: grow a tree of model-generated programs in a sandbox, under hard caps, and measure it.

The installed package `swarmlab` is made of the repository's folders: `swarm/` is the package
itself (core, spec, records, world, runtime, experiments, cli), and `models/`, `cluster/` and
`observability/` are its sub-packages `swarmlab.models`, `swarmlab.cluster` and
`swarmlab.observability`. Names below load on first use, so `import swarmlab` stays light:
Ray, the sandbox and OpenTelemetry load only when a run starts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from swarmlab.core import lazy_exports

if TYPE_CHECKING:
    from swarmlab.core import (
        CapExceeded,
        ClusterError,
        CoordinatorUnavailable,
        ModelError,
        SpecError,
        SwarmlabError,
    )
    from swarmlab.records import Event, ProgramRecord, RunDir, RunResult, RunSummary
    from swarmlab.runtime import RunOptions, run_experiment
    from swarmlab.spec import (
        Caps,
        ExperimentSpec,
        ProgramLimits,
        Tripwire,
        builtin_experiments,
        load_spec,
    )

_HOMES = {
    "swarmlab.core": (
        "CapExceeded",
        "ClusterError",
        "CoordinatorUnavailable",
        "ModelError",
        "SpecError",
        "SwarmlabError",
    ),
    "swarmlab.records": ("Event", "ProgramRecord", "RunDir", "RunResult", "RunSummary"),
    "swarmlab.runtime": ("RunOptions", "run_experiment"),
    "swarmlab.spec": (
        "Caps",
        "ExperimentSpec",
        "ProgramLimits",
        "Tripwire",
        "builtin_experiments",
        "load_spec",
    ),
}
__all__ = [
    "CapExceeded",
    "Caps",
    "ClusterError",
    "CoordinatorUnavailable",
    "Event",
    "ExperimentSpec",
    "ModelError",
    "ProgramLimits",
    "ProgramRecord",
    "RunDir",
    "RunOptions",
    "RunResult",
    "RunSummary",
    "SpecError",
    "SwarmlabError",
    "Tripwire",
    "builtin_experiments",
    "load_spec",
    "run_experiment",
]
__getattr__, __dir__ = lazy_exports(__name__, _HOMES, globals())
