"""The decision statistics against closed forms: TOST by hand, power from the noncentral t, Holm by hand."""

import math

import numpy as np
import pytest
from scipy import stats

from tis_ray.statistics import (
    SEED_STD_POINTS,
    compare_paired,
    holm,
    minimum_detectable_difference,
    paired_std_from_seed_std,
    seeds_needed,
    verdict,
)


def exact_power(difference: float, std: float, n: int, alpha: float = 0.05) -> float:
    """Power of the two-sided paired t-test from the noncentral t distribution, written out."""
    crit = stats.t.ppf(1 - alpha / 2, n - 1)
    nc = difference / std * math.sqrt(n)
    return stats.nct.sf(crit, n - 1, nc) + stats.nct.cdf(-crit, n - 1, nc)


def test_paired_test_and_tost_by_hand():
    ours, theirs = np.array([63.0, 66.0, 69.0]), np.array([60.0, 62.0, 64.0])  # diffs 3, 4, 5
    r = compare_paired(ours, theirs, margin=1.0)
    se = 1 / math.sqrt(3)  # std 1 over sqrt(n)
    assert (r.n, r.mean, r.std, r.t) == (3, pytest.approx(4.0), pytest.approx(1.0), pytest.approx(4 / se))
    assert r.p == pytest.approx(2 * stats.t.sf(4 / se, 2))
    # TOST: H0 mean <= -1 (t = 5/se, p = sf) and H0 mean >= +1 (t = 3/se, p = cdf); the larger p decides
    assert r.p_equivalence == pytest.approx(max(stats.t.sf(5 / se, 2), stats.t.cdf(3 / se, 2)))
    close = compare_paired([0.3, -0.2, 0.1, 0.0], [0.0, 0.0, 0.0, 0.0], margin=1.0)
    se = np.std([0.3, -0.2, 0.1, 0.0], ddof=1) / 2
    assert close.p_equivalence == pytest.approx(max(stats.t.sf((0.05 + 1) / se, 3), stats.t.cdf((0.05 - 1) / se, 3)))
    assert close.p_equivalence < 0.01  # a tight spread around 0.05 is inside +-1


def test_one_pair_or_no_spread_has_no_test():
    one = compare_paired([70.0], [69.0], margin=1.0)
    assert one.n == 1 and math.isnan(one.p) and math.isnan(one.mde)
    flat = compare_paired([70.0, 71.0], [69.0, 70.0], margin=1.0)  # both differences 1: std 0
    assert flat.std == 0 and math.isnan(flat.p)


def test_minimum_detectable_difference_has_the_power_it_claims():
    for std, n in ((1.0, 3), (2.5, 5), (0.34, 10)):
        mde = minimum_detectable_difference(std, n)
        assert exact_power(mde, std, n) == pytest.approx(0.8, abs=1e-6)
    # more seeds, smaller detectable difference; proportional to the std
    assert minimum_detectable_difference(1.0, 10) < minimum_detectable_difference(1.0, 5)
    assert minimum_detectable_difference(2.0, 5) == pytest.approx(2 * minimum_detectable_difference(1.0, 5))


def test_seeds_needed_is_the_first_n_with_enough_power():
    for difference, std in ((1.0, 0.34), (5.0, 17.5), (1.0, 1.0), (2.0, 3.0)):
        n = seeds_needed(difference, std)
        assert exact_power(difference, std, n) >= 0.8
        assert n == 2 or exact_power(difference, std, n - 1) < 0.8


def test_the_issue_numbers_mnli_a_handful_hans_about_a_hundred():
    mnli = seeds_needed(1.0, paired_std_from_seed_std(SEED_STD_POINTS["mnli_m/acc"]))
    hans = seeds_needed(5.0, paired_std_from_seed_std(SEED_STD_POINTS["hans/lexical_overlap/non_entailed"]))
    assert mnli <= 5 and 80 <= hans <= 120, (mnli, hans)
    # closed-form normal approximation of the HANS case: ((1.96 + 0.8416) * 17.48 / 5)^2 = 96.0, exact a bit more
    assert hans >= math.ceil((1.959964 + 0.841621) ** 2 * (math.sqrt(2) * 12.36 / 5) ** 2)


def test_holm_by_hand():
    # sorted 0.01, 0.02, 0.04 with m = 3: 0.03, max(0.03, 0.04), max(0.04, 0.04); NaN is not a test
    np.testing.assert_allclose(holm([0.04, 0.01, np.nan, 0.02]), [0.04, 0.03, np.nan, 0.04])
    np.testing.assert_allclose(holm([0.6, 0.3]), [0.6, 0.6])
    assert np.isnan(holm([np.nan])).all()


def test_verdicts():
    assert verdict(3, 2.0, 0.01, 0.9, 1.0) == "better"
    assert verdict(3, -2.0, 0.01, 0.9, 1.0) == "worse"
    assert verdict(5, 0.1, 0.6, 0.02, 1.0) == "equivalent within ±1"
    assert verdict(2, 0.1, 0.6, 0.3, 1.0) == "inconclusive"
    assert verdict(1, 0.1, np.nan, np.nan, 1.0) == "one seed"
