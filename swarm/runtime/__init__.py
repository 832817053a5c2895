"""The runtime: one run from spec to run directory.

The driver (`run_experiment`) starts Ray and Redis through `swarmlab.cluster`, holds the root
dialogue, and hands the root program to a pool of runner actors. Each runner runs many programs
at once, each in a pydantic-monty worker (`_sandbox`, the only module that imports
`pydantic_monty`); a program's calls go through the capability API (`_capabilities`), reserved
in Redis by the coordinator (`_coordinator`, which holds the run's state) before any effect.

Names load on first use, so `import swarmlab.runtime` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from swarmlab.core import lazy_exports

if TYPE_CHECKING:
    from ._coordinator import Coordinator, init_sweep, live_runs, sweep_usage
    from ._driver import RunOptions, new_run_id, run_experiment
    from ._live import registered_runs, registry_dir
    from ._pool import runner_fleet
    from ._progress import BAR_CAPS, ProgressSink, Snapshot, silent
    from ._scenario import extract_program

_HOMES = {
    "._coordinator": ("Coordinator", "init_sweep", "live_runs", "sweep_usage"),
    "._driver": ("RunOptions", "new_run_id", "run_experiment"),
    "._live": ("registered_runs", "registry_dir"),
    "._pool": ("runner_fleet",),
    "._progress": ("BAR_CAPS", "ProgressSink", "Snapshot", "silent"),
    "._scenario": ("extract_program",),
}
__all__ = [
    "BAR_CAPS",
    "Coordinator",
    "ProgressSink",
    "RunOptions",
    "Snapshot",
    "extract_program",
    "init_sweep",
    "live_runs",
    "new_run_id",
    "registered_runs",
    "registry_dir",
    "run_experiment",
    "runner_fleet",
    "silent",
    "sweep_usage",
]
__getattr__, __dir__ = lazy_exports(__name__, _HOMES, globals())
