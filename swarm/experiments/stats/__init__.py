"""Statistics shared by sweeps and trials: every figure from several runs carries an interval.

- `_summaries`: a sweep cell's summaries (mean, SD, median, BCa bootstrap interval), rates with
  the Wilson interval, and paired differences against a baseline on shared seeds;
- `_estimates`: what few trials support: pass@k, a rate's Wilson interval, a percentile
  bootstrap of a mean, and Cohen's kappa between two labellers;
- `_tables`: the parquet tables both write, and the numbers both count, from values read back
  from run directories (hostile files: any type, any size).

Pure Python (`statistics`, `random`), seeded, so the same runs give the same numbers anywhere.
"""

from ._estimates import Interval, bootstrap_mean, cohen_kappa, pass_at_k, stable_int, wilson
from ._summaries import (
    LEVEL,
    RESAMPLES,
    Paired,
    Summary,
    bootstrap_mean_ci,
    describe,
    describe_rate,
    paired_difference,
    seed_for,
    wilson_interval,
)
from ._tables import MAX_METRIC, finite_number, write_parquet

__all__ = [
    "LEVEL",
    "MAX_METRIC",
    "RESAMPLES",
    "Interval",
    "Paired",
    "Summary",
    "bootstrap_mean",
    "bootstrap_mean_ci",
    "cohen_kappa",
    "describe",
    "describe_rate",
    "finite_number",
    "paired_difference",
    "pass_at_k",
    "seed_for",
    "stable_int",
    "wilson",
    "wilson_interval",
    "write_parquet",
]
