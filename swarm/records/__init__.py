"""The run's records: programs, events, the typed run summary, and the run directory.

`RunDir` is the one owner of the run directory's layout: the runtime writes through it and the
analysis, the sweeps and the CLI read through it.
"""

from ._dialogue import RootDialogue
from ._event import Decision, Event, detail_count
from ._inputs import (
    INPUTS_FILE,
    Divergence,
    ProgramInput,
    ReplayCheck,
    compare_ends,
    compare_inputs,
    input_lines,
)
from ._program import TERMINAL, ProgramRecord, ProgramStatus
from ._read_back import whole_problem
from ._rundir import PER_PROGRAM_LIMITS, RunDir, RunRecords, RunResult
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
    "INPUTS_FILE",
    "PER_PROGRAM_LIMITS",
    "TERMINAL",
    "CapUsage",
    "Decision",
    "Divergence",
    "Event",
    "LimitUsage",
    "ModelInfo",
    "ProgramCounts",
    "ProgramInput",
    "ProgramRecord",
    "ProgramStatus",
    "ReplayCheck",
    "RootDialogue",
    "RunDir",
    "RunRecords",
    "RunResult",
    "RunStatus",
    "RunSummary",
    "TreeStats",
    "compare_ends",
    "compare_inputs",
    "detail_count",
    "input_lines",
    "whole_problem",
]
