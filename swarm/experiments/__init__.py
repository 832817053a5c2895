"""Series of experiments: sweeps over conditions and seeds, with one global budget, summarised
per condition with intervals and paired by seed against a baseline (`_stats`, `_cells`), and
trial tables (N independent trials per model x persona x affordance) with their annotation
round trip.

Built on the runtime (each cell is an ordinary run) and the analysis (each cell's metrics).
"""

from ._annotation import export_sample
from ._annotation_agreement import agreement, format_agreement
from ._plan import Cell, SweepBudget, SweepPlan, SweepSpec, builtin_sweeps, cell_id, load_sweep
from ._results import flatten, result_rows, write_results
from ._sweep import SweepRunner, is_sweep_dir, report_sweep, run_cell
from ._trials import TrialsRunner, finish_trials
from ._trials_plan import TrialsPlan, TrialsSpec
from ._trials_table import format_conditions

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
