"""Sweeps: one base experiment over a grid of conditions and several seeds, under one global
budget; each cell an ordinary run, summarised per condition with 95% intervals and paired by
seed against a baseline (cells.csv, paired.csv, plots, a page).

The built-in sweeps are the YAML files beside these modules (package data).
"""

from ._plan import Cell, SweepBudget, SweepPlan, SweepSpec, builtin_sweeps, cell_id, load_sweep
from ._results import flatten, result_rows, write_results
from ._runner import SweepRunner, is_sweep_dir, report_sweep, run_cell

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
