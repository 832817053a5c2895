"""Statistics for a sweep's cells: summaries with 95% intervals, and paired differences.

A figure from several seeds carries an interval. For a mean: the bias-corrected and accelerated
(BCa) bootstrap, 10,000 resamples of the runs, seeded, so the same table comes out every time.
For a rate (a 0/1 outcome): the Wilson score interval, which stays inside [0, 1] and does not
collapse to a point at 0/n or n/n. For two conditions run on the same seeds: the mean of the
per-seed differences with its BCa interval, and Cohen's d_z (that mean over the differences'
standard deviation), the effect size of a paired design.

Pure Python (`statistics`, `random`), so the numbers do not depend on a numeric library's
version.
"""

from __future__ import annotations

import hashlib
import math
import random
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

LEVEL = 0.95
RESAMPLES = 10_000

_NORMAL = NormalDist()


@dataclass(frozen=True)
class Summary:
    """One metric over one cell's runs. Rates have `successes`; other fields are None when
    they are undefined (no runs; SD and interval need two runs)."""

    n: int
    mean: float | None
    sd: float | None
    median: float | None
    ci_low: float | None
    ci_high: float | None
    successes: int | None = None


@dataclass(frozen=True)
class Paired:
    """Condition minus baseline over the seeds both finished: mean difference, its interval,
    the differences' SD and Cohen's d_z (None when every difference is the same)."""

    n: int
    mean_diff: float | None
    sd_diff: float | None
    ci_low: float | None
    ci_high: float | None
    d_z: float | None


def seed_for(*parts: object) -> int:
    """A bootstrap seed from names (sweep, cell, metric), the same on every machine."""
    digest = hashlib.sha256("\x00".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big")


def describe(
    values: Sequence[float], *, seed: int, resamples: int = RESAMPLES, level: float = LEVEL
) -> Summary:
    """n, mean, SD (n - 1), median and the BCa bootstrap interval of the mean."""
    n = len(values)
    if n == 0:
        return Summary(0, None, None, None, None, None)
    mean = statistics.fmean(values)
    median = float(statistics.median(values))
    if n == 1:
        return Summary(1, mean, None, median, None, None)
    low, high = bootstrap_mean_ci(values, seed=seed, resamples=resamples, level=level)
    return Summary(n, mean, statistics.stdev(values), median, low, high)


def describe_rate(outcomes: Sequence[bool], *, level: float = LEVEL) -> Summary:
    """A rate: the share of runs with the outcome, with its Wilson interval."""
    n = len(outcomes)
    if n == 0:
        return Summary(0, None, None, None, None, None, successes=0)
    k = sum(1 for o in outcomes if o)
    values = [1.0 if o else 0.0 for o in outcomes]
    low, high = wilson_interval(k, n, level=level)
    sd = statistics.stdev(values) if n > 1 else None
    return Summary(n, k / n, sd, float(statistics.median(values)), low, high, successes=k)


def wilson_interval(successes: int, n: int, *, level: float = LEVEL) -> tuple[float, float]:
    """The Wilson score interval for `successes` out of `n` (Wilson 1927; Newcombe 1998)."""
    if n <= 0 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n and n > 0, got {successes} of {n}")
    z = _NORMAL.inv_cdf(0.5 + level / 2)
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    # At 0/n the lower end is 0 and at n/n the upper end is 1 exactly; in floating point the
    # subtraction can leave a few 1e-17 (0/10 did), which a table would show as not zero.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high


def bootstrap_mean_ci(
    values: Sequence[float], *, seed: int, resamples: int = RESAMPLES, level: float = LEVEL
) -> tuple[float, float]:
    """The BCa bootstrap interval of the mean (Efron 1987), from `resamples` seeded resamples.

    Falls back to the plain percentile interval where BCa is undefined (a bootstrap
    distribution entirely on one side of the mean); a constant sample gives that constant.
    """
    data = [float(v) for v in values]
    n = len(data)
    if n < 2:
        raise ValueError("a bootstrap interval needs at least two values")
    if min(data) == max(data):
        return data[0], data[0]
    rng = random.Random(seed)
    means = sorted(statistics.fmean(rng.choices(data, k=n)) for _ in range(resamples))
    observed = statistics.fmean(data)
    tail = (1 - level) / 2
    below = sum(1 for m in means if m < observed) + 0.5 * sum(1 for m in means if m == observed)
    share = below / resamples
    if not 0 < share < 1:
        return _quantile(means, tail), _quantile(means, 1 - tail)
    z0 = _NORMAL.inv_cdf(share)
    accel = _acceleration(data)
    ends = []
    for q in (tail, 1 - tail):
        shifted = z0 + _NORMAL.inv_cdf(q)
        if 1 - accel * shifted <= 0:  # acceleration too large for this sample: no BCa
            return _quantile(means, tail), _quantile(means, 1 - tail)
        ends.append(_quantile(means, _NORMAL.cdf(z0 + shifted / (1 - accel * shifted))))
    return ends[0], ends[1]


def paired_difference(
    pairs: Sequence[tuple[float, float]],
    *,
    seed: int,
    resamples: int = RESAMPLES,
    level: float = LEVEL,
) -> Paired:
    """`(baseline, condition)` pairs, one per shared seed: condition minus baseline."""
    diffs = [float(b) - float(a) for a, b in pairs]
    n = len(diffs)
    if n == 0:
        return Paired(0, None, None, None, None, None)
    mean = statistics.fmean(diffs)
    if n == 1:
        return Paired(1, mean, None, None, None, None)
    sd = statistics.stdev(diffs)
    low, high = bootstrap_mean_ci(diffs, seed=seed, resamples=resamples, level=level)
    return Paired(n, mean, sd, low, high, mean / sd if sd > 0 else None)


def _acceleration(data: list[float]) -> float:
    """BCa's acceleration from the jackknife means (leave one value out)."""
    n, total = len(data), math.fsum(data)
    jack = [(total - x) / (n - 1) for x in data]
    centre = statistics.fmean(jack)
    squares = math.fsum((centre - j) ** 2 for j in jack)
    if squares == 0:
        return 0.0
    return math.fsum((centre - j) ** 3 for j in jack) / (6 * math.pow(squares, 1.5))


def _quantile(ordered: list[float], q: float) -> float:
    """The q-quantile of sorted values, interpolating linearly (numpy's default method)."""
    position = min(max(q, 0.0), 1.0) * (len(ordered) - 1)
    lower = math.floor(position)
    upper = min(lower + 1, len(ordered) - 1)
    return ordered[lower] + (ordered[upper] - ordered[lower]) * (position - lower)
