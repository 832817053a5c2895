"""The trial tables' statistics against values worked out by hand or by brute force."""

from __future__ import annotations

import itertools
import math

import pytest

from swarmlab.experiments.stats import bootstrap_mean, cohen_kappa, pass_at_k, wilson


def brute_pass_at_k(outcomes: list[bool], k: int) -> float:
    """The share of all k-subsets of the trials that hold at least one success."""
    subsets = list(itertools.combinations(outcomes, k))
    return sum(any(s) for s in subsets) / len(subsets)


@pytest.mark.parametrize(("n", "c"), [(5, 0), (5, 1), (6, 3), (8, 7), (7, 7), (10, 2)])
def test_pass_at_k_is_the_chance_a_k_subset_holds_a_success(n: int, c: int) -> None:
    outcomes = [True] * c + [False] * (n - c)
    for k in range(1, n + 1):
        got = pass_at_k(n, c, k)
        assert got == pytest.approx(brute_pass_at_k(outcomes, k)), (n, c, k)
    assert pass_at_k(n, c, 1) == pytest.approx(c / n)


def test_pass_at_k_is_not_estimated_beyond_the_trials_run() -> None:
    assert pass_at_k(3, 1, 5) is None
    assert pass_at_k(10, 3, 5) == pytest.approx(1 - math.comb(7, 5) / math.comb(10, 5))
    with pytest.raises(ValueError, match="0 <= c <= n"):
        pass_at_k(3, 4, 1)


def test_wilson_intervals_match_published_values() -> None:
    # 95% Wilson score intervals (z = 1.96): 0/10, 5/10 and 9/10.
    zero = wilson(0, 10)
    assert (zero.value, zero.low) == (0.0, 0.0)
    assert zero.high == pytest.approx(0.2775, abs=1e-4)
    half = wilson(5, 10)
    assert half.low == pytest.approx(0.2366, abs=1e-4)
    assert half.high == pytest.approx(0.7634, abs=1e-4)
    most = wilson(9, 10)
    assert most.low == pytest.approx(0.5958, abs=1e-4)
    assert most.high == pytest.approx(0.9821, abs=1e-4)
    assert wilson(0, 0).value is None


def test_bootstrap_intervals_are_seeded_and_hold_the_mean() -> None:
    values = [0.0, 1.0, 1.0, 3.0, 7.0, 2.0]
    first = bootstrap_mean(values, "cond:metric")
    assert first == bootstrap_mean(values, "cond:metric"), "same seed, same interval"
    assert first.value == pytest.approx(14 / 6)
    assert first.value is not None
    assert first.low is not None
    assert first.high is not None
    assert 0.0 <= first.low < first.value < first.high <= 7.0
    other = bootstrap_mean(values, "another seed")
    assert other.value == first.value
    same = bootstrap_mean([2.0, 2.0, 2.0], 1)
    assert (same.low, same.value, same.high) == (2.0, 2.0, 2.0)
    assert bootstrap_mean([], 1).value is None


def test_cohen_kappa_on_a_worked_example() -> None:
    # 50 units: both yes 20, A yes / B no 5, A no / B yes 10, both no 15.
    # Observed agreement 0.7; chance 0.5 * 0.6 + 0.5 * 0.4 = 0.5; kappa (0.7 - 0.5) / 0.5 = 0.4.
    a = [True] * 20 + [True] * 5 + [False] * 10 + [False] * 15
    b = [True] * 20 + [False] * 5 + [True] * 10 + [False] * 15
    assert cohen_kappa(a, b) == pytest.approx(0.4)
    assert cohen_kappa(a, a) == pytest.approx(1.0)
    assert cohen_kappa(a, [not x for x in a]) == pytest.approx(-1.0)
    assert cohen_kappa([True, True], [True, True]) is None, "chance agreement 1: undefined"
    assert cohen_kappa([], []) is None
