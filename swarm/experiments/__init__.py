"""Series of experiments: sweeps over conditions and seeds, with one global budget, summarised
per condition with intervals and paired by seed against a baseline (`_stats`, `_cells`).

Built on the runtime (each cell is an ordinary run) and the analysis (each cell's metrics).
"""

from ._plan import Cell, SweepBudget, SweepPlan, SweepSpec, builtin_sweeps, cell_id, load_sweep
from ._results import flatten, result_rows, write_results
from ._sweep import SweepRunner, is_sweep_dir, report_sweep, run_cell

__all__ = [
    "Cell",
    "SweepBudget",
    "SweepPlan",
    "SweepRunner",
    "SweepSpec",
    "builtin_sweeps",
    "cell_id",
    "flatten",
    "is_sweep_dir",
    "load_sweep",
    "report_sweep",
    "result_rows",
    "run_cell",
    "write_results",
]
