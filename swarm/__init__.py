"""swarmlab: grow a tree of model-generated programs in a sandbox, under hard caps, and measure it.

`import swarm` stays light: Ray and the sandbox load only when a run starts.
"""

from ._errors import CapExceeded, CoordinatorUnavailable, SpecError, SwarmError
from ._records import Event, ProgramRecord
from ._spec import Caps, ExperimentSpec, ProgramLimits, builtin_experiments, load_spec
from ._tripwires import Tripwire

__all__ = [
    "CapExceeded",
    "Caps",
    "CoordinatorUnavailable",
    "Event",
    "ExperimentSpec",
    "ProgramLimits",
    "ProgramRecord",
    "SpecError",
    "SwarmError",
    "Tripwire",
    "builtin_experiments",
    "load_spec",
]


def run_experiment(*args, **kwargs):  # type: ignore[no-untyped-def]
    """Run one experiment; see `swarm._run.run_experiment`."""
    from ._run import run_experiment as _run_experiment

    return _run_experiment(*args, **kwargs)
