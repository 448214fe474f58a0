"""The decision statistics against closed forms: TOST by hand, power from the noncentral t, Holm by hand."""

import math

import numpy as np
import pytest
from scipy import stats

from tis_ray.statistics import (
    SEED_STD_POINTS,
    bonferroni_interval,
    compare_paired,
    equivalence_power_bound,
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


def integrated_power(effect: float, n: int, alpha: float) -> float:
    """Power of the two-sided paired t-test by direct integration over the sample variance, no noncentral t:
    T = (Z + effect sqrt n) / sqrt(V / df), V ~ chi2(df); P(|T| > c) = E[Phi(nc - c s) + Phi(-nc - c s)],
    s = sqrt(V / df)."""
    from scipy import integrate

    df, nc = n - 1, effect * math.sqrt(n)
    crit = stats.t.ppf(1 - alpha / 2, df)

    def integrand(v):
        s = math.sqrt(v / df)
        return (stats.norm.cdf(nc - crit * s) + stats.norm.cdf(-nc - crit * s)) * stats.chi2.pdf(v, df)

    hi = stats.chi2.ppf(1 - 1e-13, df)
    # the chi2(1) density is infinite at 0: split there so quad's endpoints handle it
    return sum(integrate.quad(integrand, a, b, limit=400, epsabs=1e-12, epsrel=1e-10)[0]
               for a, b in ((0, 1e-6), (1e-6, 1.0), (1.0, hi)) if b > a)


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


@pytest.mark.parametrize("alpha", [0.05, 0.01, 0.05 / 24])
@pytest.mark.parametrize("n", [2, 3, 4, 5, 8, 30])
def test_minimum_detectable_difference_on_a_grid_against_direct_integration(n, alpha):
    previous = 0.0
    for power in (0.5, 0.8, 0.9, 0.99):
        effect = minimum_detectable_difference(1.0, n, alpha, power)
        assert integrated_power(effect, n, alpha) == pytest.approx(power, abs=2e-6), (n, alpha, power)
        assert effect > previous  # more power needs a larger difference: statsmodels' 3.39 < 3.92 was not
        previous = effect
    assert minimum_detectable_difference(1.0, n + 1, alpha) < minimum_detectable_difference(1.0, n, alpha)


def test_the_issue_s_small_n_case_and_a_simulation():
    std = paired_std_from_seed_std(SEED_STD_POINTS["mnli_m/acc"])  # 0.339
    assert minimum_detectable_difference(std, 2, power=0.9) == pytest.approx(5.03, abs=0.01)
    assert minimum_detectable_difference(std, 2, power=0.8) == pytest.approx(3.92, abs=0.01)
    # a simulated paired t-test at n = 3, alpha 0.01 rejects the MDE at 80% power as often as claimed
    rng = np.random.default_rng(0)
    mde = minimum_detectable_difference(1.0, 3, alpha=0.01)
    diffs = rng.normal(mde, 1.0, size=(200_000, 3))
    t = diffs.mean(1) / (diffs.std(1, ddof=1) / math.sqrt(3))
    assert np.mean(np.abs(t) > stats.t.ppf(0.995, 2)) == pytest.approx(0.8, abs=0.005)


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


def test_holm_first_step_plans_the_issue_s_numbers():
    from tis_ray.statistics import paired_t_power

    mnli = paired_std_from_seed_std(SEED_STD_POINTS["mnli_m/acc"])
    hans = paired_std_from_seed_std(SEED_STD_POINTS["hans/lexical_overlap/non_entailed"])
    # 24 comparisons: the per-comparison plan's 4 MNLI seeds give ~21% power at alpha 0.05 / 24
    assert paired_t_power(1.0 / mnli, 4, 0.05 / 24) == pytest.approx(0.21, abs=0.01)
    assert paired_t_power(5.0 / hans, 98, 0.05 / 24) == pytest.approx(0.38, abs=0.01)
    assert seeds_needed(5.0, hans, alpha=0.05 / 24) == 193
    assert integrated_power(1.0 / mnli, seeds_needed(1.0, mnli, alpha=0.05 / 24), 0.05 / 24) >= 0.8


def test_bonferroni_interval_and_equivalence_bound():
    low, high = bonferroni_interval(4.0, 1.0, 3, 0.05, family=1)
    assert high - 4.0 == pytest.approx(stats.t.ppf(0.975, 2) / math.sqrt(3))
    low, high = bonferroni_interval(4.0, 1.0, 3, 0.05, family=10)
    assert 4.0 - low == pytest.approx(stats.t.ppf(1 - 0.0025, 2) / math.sqrt(3))
    assert all(math.isnan(v) for v in bonferroni_interval(0.0, 0.0, 3))
    # TOST's bound against a simulation of both one-sided tests on one sample (true difference 0.2, margin 1)
    rng = np.random.default_rng(1)
    diffs = rng.normal(0.2, 1.0, size=(100_000, 6))
    se = diffs.std(1, ddof=1) / math.sqrt(6)
    crit = stats.t.ppf(0.95, 5)
    shown = np.mean(((diffs.mean(1) + 1) / se > crit) & ((diffs.mean(1) - 1) / se < -crit))
    bound = equivalence_power_bound(0.2, 1.0, 6, 1.0)
    assert 0 < bound <= shown + 0.005 and shown - bound < 0.1


def test_verdicts():
    assert verdict(3, 2.0, 0.01, 0.9, 1.0) == "better"
    assert verdict(3, -2.0, 0.01, 0.9, 1.0) == "worse"
    assert verdict(5, 0.1, 0.6, 0.02, 1.0) == "equivalent within ±1"
    assert verdict(2, 0.1, 0.6, 0.3, 1.0) == "inconclusive"
    assert verdict(1, 0.1, np.nan, np.nan, 1.0) == "one seed"
    # +0.4 to +0.6 on MNLI, margin 1: a difference shown, and shown inside the margin
    both = compare_paired([70.4, 70.5, 70.6, 70.5], [70.0, 70.0, 70.0, 70.0], margin=1.0)
    assert both.p < 0.05 and both.p_equivalence < 0.05
    assert verdict(both.n, both.mean, both.p, both.p_equivalence, 1.0, std=both.std) == "better, within ±1 (equivalent)"
    assert verdict(4, -0.5, 0.001, 0.001, 1.0) == "worse, within ±1 (equivalent)"
    # the same subset (every sampler at 100%): equal per-seed values, no test, and the verdict says so
    same = compare_paired([80.0, 81.0, 79.5], [80.0, 81.0, 79.5], margin=1.0)
    assert math.isnan(same.p) and verdict(same.n, same.mean, same.p, same.p_equivalence, 1.0, std=same.std) == "identical"
    flat = compare_paired([71.0, 72.0], [70.0, 71.0], margin=1.0)  # a constant non-zero difference is not identical
    assert verdict(flat.n, flat.mean, flat.p, flat.p_equivalence, 1.0, std=flat.std) == "inconclusive"


def test_holm_matches_statsmodels():
    from statsmodels.stats.multitest import multipletests

    rng = np.random.default_rng(0)
    for size in (1, 2, 7, 40):
        p = rng.uniform(0, 0.2, size) ** 2
        np.testing.assert_allclose(holm(p), multipletests(p, method="holm")[1], rtol=1e-12)
