"""The run's records: programs, events, the typed run summary, and the run directory.

`RunDir` is the one owner of the run directory's layout: the runtime writes through it and the
analysis, the sweeps and the CLI read through it.
"""

from ._dialogue import RootDialogue
from ._event import Decision, Event
from ._program import TERMINAL, ProgramRecord, ProgramStatus
from ._rundir import PER_PROGRAM_LIMITS, RunDir, RunResult
from ._summary import (
    CapUsage,
    LimitUsage,
    ModelInfo,
    ProgramCounts,
    RunStatus,
    RunSummary,
    TreeStats,
)

__all__ = [
    "PER_PROGRAM_LIMITS",
    "TERMINAL",
    "CapUsage",
    "Decision",
    "Event",
    "LimitUsage",
    "ModelInfo",
    "ProgramCounts",
    "ProgramRecord",
    "ProgramStatus",
    "RootDialogue",
    "RunDir",
    "RunResult",
    "RunStatus",
    "RunSummary",
    "TreeStats",
]
