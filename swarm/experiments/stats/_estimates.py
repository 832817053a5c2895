"""Statistics for few trials: pass@k, Wilson and bootstrap intervals, Cohen's kappa.

Trials are few (5-20 per condition), so every estimate carries an interval:
- a rate (k of n trials) gets the Wilson score interval, which stays inside [0, 1] and is
  sensible at k = 0 or k = n, where the normal interval collapses to a point;
- a mean over trials gets a percentile bootstrap interval, resampled with a seeded generator
  so the same trials always give the same interval;
- pass@k is the unbiased estimator of Chen et al. (2021): the chance that at least one of k
  trials drawn without replacement from the n run succeeds, 1 - C(n-c, k) / C(n, k).

A rate's interval is the one Wilson interval of this package (`wilson_interval`), the one sweeps
use: here it comes with the rate, and as None when there were no trials.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

from ._summaries import LEVEL, wilson_interval

BOOTSTRAP_RESAMPLES = 2000


@dataclass(frozen=True)
class Interval:
    """An estimate with its 95% interval (None when there is nothing to estimate from)."""

    value: float | None
    low: float | None
    high: float | None


def pass_at_k(n: int, c: int, k: int) -> float | None:
    """The unbiased pass@k from n trials with c successes; None when k > n (not estimable)."""
    if not 0 <= c <= n or k < 1:
        raise ValueError(f"pass_at_k needs 0 <= c <= n and k >= 1, got n={n} c={c} k={k}")
    if k > n:
        return None
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def wilson(successes: int, n: int, level: float = LEVEL) -> Interval:
    """The rate successes/n with its Wilson score interval."""
    if n == 0:
        return Interval(None, None, None)
    low, high = wilson_interval(successes, n, level=level)
    return Interval(successes / n, low, high)


def bootstrap_mean(
    values: Sequence[float], seed: int | str, resamples: int = BOOTSTRAP_RESAMPLES
) -> Interval:
    """The mean with a 95% percentile bootstrap interval; `seed` makes it reproducible."""
    if not values:
        return Interval(None, None, None)
    mean = sum(values) / len(values)
    if len(set(values)) == 1:
        return Interval(mean, mean, mean)
    rng = random.Random(stable_int(seed))
    n = len(values)
    means = sorted(sum(rng.choices(values, k=n)) / n for _ in range(resamples))
    low = means[int(0.025 * (resamples - 1))]
    high = means[math.ceil(0.975 * (resamples - 1))]
    return Interval(mean, low, high)


def cohen_kappa(first: Sequence[bool], second: Sequence[bool]) -> float | None:
    """Cohen's kappa of two labellers' yes/no labels on the same units.

    None when it is undefined: no units, or both labellers gave one and the same label to every
    unit (chance agreement is then 1 and kappa is 0/0).
    """
    if len(first) != len(second):
        raise ValueError("both labellers must label the same units")
    n = len(first)
    if n == 0:
        return None
    observed = sum(a == b for a, b in zip(first, second, strict=True)) / n
    yes_a, yes_b = sum(first) / n, sum(second) / n
    chance = yes_a * yes_b + (1 - yes_a) * (1 - yes_b)
    if chance >= 1.0:
        return None
    return (observed - chance) / (1 - chance)


def stable_int(seed: int | str) -> int:
    """An integer seed from text, the same in every process (unlike `hash`)."""
    if isinstance(seed, int):
        return seed
    return int.from_bytes(hashlib.sha256(seed.encode()).digest()[:8], "big")
