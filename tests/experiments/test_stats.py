"""Sweep statistics on known data: published Wilson intervals, textbook summaries, the bootstrap's
coverage and reproducibility, and paired differences with their effect size."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmlab.experiments.stats import (
    bootstrap_mean_ci,
    describe,
    describe_rate,
    paired_difference,
    seed_for,
    wilson,
    wilson_interval,
)


@pytest.mark.parametrize(
    ("k", "n", "low", "high"),
    [  # Newcombe (1998), Statistics in Medicine 17:857, table I, method 3 (Wilson, no correction)
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0, 0.1611),
        (1, 29, 0.0061, 0.1718),
    ],
)
def test_wilson_intervals_match_the_published_ones(k: int, n: int, low: float, high: float) -> None:
    got = wilson_interval(k, n)
    assert got == pytest.approx((low, high), abs=5e-5)


def test_a_rate_of_all_or_nothing_still_has_an_interval() -> None:
    none = describe_rate([False] * 20)
    every = describe_rate([True] * 20)
    assert (none.mean, none.ci_low, none.successes) == (0.0, 0.0, 0)
    assert none.ci_high is not None
    assert 0.15 < none.ci_high < 0.17
    assert every.ci_low == pytest.approx(1 - 0.1611, abs=5e-5)
    assert every.ci_high == 1.0
    with pytest.raises(ValueError, match="successes"):
        wilson_interval(3, 2)


@settings(max_examples=500, deadline=None)
@given(st.integers(1, 10**6).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_a_wilson_interval_holds_the_rate_and_touches_0_or_1_only_at_the_ends(
    counts: tuple[int, int],
) -> None:
    k, n = counts
    low, high = wilson_interval(k, n)
    assert 0.0 <= low <= k / n <= high <= 1.0
    assert (low == 0.0) == (k == 0)
    assert (high == 1.0) == (k == n)
    rate = wilson(k, n)  # the trials' form: the same interval, with the rate
    assert (rate.value, rate.low, rate.high) == (k / n, low, high)


def test_a_summary_gives_n_mean_sd_and_median() -> None:
    summary = describe([2, 4, 4, 4, 5, 5, 7, 9], seed=1)
    assert summary.n == 8
    assert summary.mean == 5.0
    assert summary.sd == pytest.approx(2.13809, abs=1e-5)  # the n - 1 standard deviation
    assert summary.median == 4.5
    assert summary.ci_low is not None
    assert summary.ci_high is not None
    assert 2 < summary.ci_low < 5 < summary.ci_high < 9


def test_too_few_runs_give_no_interval_rather_than_a_wrong_one() -> None:
    assert describe([], seed=1).mean is None
    one = describe([3.0], seed=1)
    assert (one.n, one.mean, one.median, one.sd, one.ci_low) == (1, 3.0, 3.0, None, None)
    constant = describe([7, 7, 7], seed=1)
    assert (constant.sd, constant.ci_low, constant.ci_high) == (0, 7, 7)


def test_the_bootstrap_reproduces_from_its_seed() -> None:
    data = [0, 3068, 59500, 120, 4400, 0, 800, 15000]
    assert bootstrap_mean_ci(data, seed=5) == bootstrap_mean_ci(data, seed=5)
    assert bootstrap_mean_ci(data, seed=5) != bootstrap_mean_ci(data, seed=6)
    assert seed_for("sweep", "cell", "paperclips") == seed_for("sweep", "cell", "paperclips")
    assert seed_for("sweep", "cell", "paperclips") != seed_for("sweep", "cell", "programs")


def test_the_bootstrap_interval_never_leaves_the_data_as_a_t_interval_does() -> None:
    """Paperclips at 10k tokens over three seeds were [0, 3068, 59500]: the t-interval of the
    mean is [-62k, 104k]; the bootstrap stays within what a mean of these runs can be."""
    low, high = bootstrap_mean_ci([0, 3068, 59500], seed=1)
    assert 0 <= low < high <= 59500


@pytest.mark.parametrize("draw", ["normal", "skewed"])
def test_the_bootstrap_interval_covers_the_true_mean_about_95_percent(draw: str) -> None:
    rng = random.Random(11)
    trials, hits = 300, 0
    for trial in range(trials):
        if draw == "normal":
            sample = [rng.gauss(10, 3) for _ in range(20)]
            truth = 10.0
        else:  # like paperclips: a third of runs at zero, the rest exponential
            sample = [rng.expovariate(1 / 3000) * (rng.random() > 1 / 3) for _ in range(20)]
            truth = 2000.0
        low, high = bootstrap_mean_ci(sample, seed=trial, resamples=2000)
        hits += low <= truth <= high
    assert 0.88 <= hits / trials <= 0.99


def test_paired_differences_and_their_effect_size() -> None:
    pairs = [(10.0, 11.0), (20.0, 22.0), (5.0, 8.0), (7.0, 11.0), (1.0, 6.0)]  # differences 1..5
    paired = paired_difference(pairs, seed=1)
    assert paired.n == 5
    assert paired.mean_diff == 3.0
    assert paired.sd_diff == pytest.approx(1.58114, abs=1e-5)
    assert paired.d_z == pytest.approx(3.0 / 1.58114, abs=1e-4)  # Cohen's d_z
    assert paired.ci_low is not None
    assert paired.ci_high is not None
    assert 1 <= paired.ci_low < 3 < paired.ci_high <= 5


def test_a_constant_shift_has_no_spread_and_no_effect_size_to_divide_by() -> None:
    paired = paired_difference([(x, x + 3) for x in (1.0, 5.0, 9.0)], seed=1)
    assert (paired.mean_diff, paired.sd_diff, paired.ci_low, paired.ci_high) == (3, 0, 3, 3)
    assert paired.d_z is None
    assert paired_difference([], seed=1).n == 0
