import numpy as np
import pytest
from scipy.stats import binomtest

from hf_slm.evaluation import accuracy_summary, beats_chance, binomial_ci


def test_wilson_interval_for_60_of_100():
    low, high = binomial_ci(60, 100)
    assert (low, high) == pytest.approx((0.5020, 0.6906), abs=1e-4)
    assert low < 0.6 < high


@pytest.mark.parametrize("method", ["wilson", "exact"])
@pytest.mark.parametrize(("k", "n"), [(0, 10), (3, 7), (60, 100), (10, 10), (700, 1000)])
def test_intervals_match_scipy_binomtest_and_contain_the_estimate(k, n, method):
    expected = binomtest(k, n).proportion_ci(confidence_level=0.9, method=method)
    low, high = binomial_ci(k, n, confidence=0.9, method=method)
    assert (low, high) == pytest.approx((expected.low, expected.high), abs=1e-9)
    assert low <= k / n <= high


def test_fractional_successes_from_ties_lie_between_neighbours():
    low, high = binomial_ci(5.5, 10)
    assert binomial_ci(5, 10)[0] < low < binomial_ci(6, 10)[0]
    assert binomial_ci(5, 10)[1] < high < binomial_ci(6, 10)[1]


def test_accuracy_summary_and_beats_chance():
    summary = accuracy_summary(np.r_[np.ones(70), np.zeros(29), 0.5])
    assert summary["n"] == 100 and summary["accuracy"] == pytest.approx(0.705)
    assert summary["ci_low"] < 0.705 < summary["ci_high"]
    assert beats_chance(summary)
    assert not beats_chance(accuracy_summary([1, 0, 1, 1]))
    assert not beats_chance(summary, chance=0.7)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="n >= 1"):
        binomial_ci(0, 0)
    with pytest.raises(ValueError, match="CI method"):
        binomial_ci(1, 2, method="bayes")
    with pytest.raises(ValueError, match="zero pairs"):
        accuracy_summary([])
