"""Series of experiments, in two sub-packages that never import each other:

- `sweeps`: a base experiment over a grid of conditions and seeds, with one global budget,
  summarised per condition with intervals and paired by seed against a baseline;
- `trials`: N independent trials per model x persona x affordance, their tables, and their
  annotation round trip.

Built on the runtime (each cell or trial is an ordinary run) and the analysis (its metrics).
The names below are the public surface of both, importable from here.
"""

from .sweeps import (
    Cell,
    SweepBudget,
    SweepPlan,
    SweepRunner,
    SweepSpec,
    builtin_sweeps,
    cell_id,
    flatten,
    is_sweep_dir,
    load_sweep,
    report_sweep,
    result_rows,
    run_cell,
    write_results,
)
from .trials import (
    TrialsPlan,
    TrialsRunner,
    TrialsSpec,
    agreement,
    export_sample,
    finish_trials,
    format_agreement,
    format_conditions,
)

__all__ = [
    "Cell",
    "SweepBudget",
    "SweepPlan",
    "SweepRunner",
    "SweepSpec",
    "TrialsPlan",
    "TrialsRunner",
    "TrialsSpec",
    "agreement",
    "builtin_sweeps",
    "cell_id",
    "export_sample",
    "finish_trials",
    "flatten",
    "format_agreement",
    "format_conditions",
    "is_sweep_dir",
    "load_sweep",
    "report_sweep",
    "result_rows",
    "run_cell",
    "write_results",
]
