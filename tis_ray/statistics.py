"""Paired comparisons that decide: difference, equivalence, the smallest difference a cell could see, seeds needed.

A comparison is a set of paired differences (sampler minus baseline, same budget and seed), in points. For it:

- the paired t-test (is the difference non-zero?) and its 95% confidence interval;
- TOST, two one-sided paired t-tests against a margin m (is the difference inside (-m, +m)?), from statsmodels;
- the minimum detectable difference: the true difference that a two-sided paired t-test at this n and this
  paired std would find with 80% power (statsmodels' TTestPower, the noncentral t);
- after Holm's correction over a family of comparisons, one verdict: better, worse, equivalent within ±m, or
  inconclusive (neither shown).

`seeds_needed` turns a difference worth detecting and a std of the paired differences into seeds per arm.
Without a pilot run, the stds below are the spread of 100 BERT-base MNLI fine-tunes that differ only in seed
(McCoy, Min & Linzen, "BERTs of a feather do not generalize together", BlackboxNLP 2020; per-run table:
tommccoy1/hans, berts_of_a_feather/berts_of_a_feather_accuracies_by_run.csv).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

ALPHA = 0.05
POWER = 0.8

# Std across seeds in accuracy points of 100 BERT-base fine-tunes on MNLI (McCoy et al., 2020), per metric of
# ours; HANS per heuristic on the entailed (E) and non-entailed (NE) halves.
SEED_STD_POINTS = {
    "mnli_m/acc": 0.24,  # MNLI dev (matched) accuracy
    "mnli_mm/acc": 0.24,  # not in the table; matched's spread is assumed
    "hans/acc": 2.36,
    "hans/lexical_overlap/entailed": 1.14,
    "hans/subsequence/entailed": 0.37,
    "hans/constituent/entailed": 0.57,
    "hans/lexical_overlap/non_entailed": 12.36,
    "hans/subsequence/non_entailed": 2.42,
    "hans/constituent/non_entailed": 4.06,
}
SEED_STD_SOURCE = ("100 BERT-base MNLI fine-tunes differing only in seed (McCoy et al., 'BERTs of a feather', "
                   "2020; tommccoy1/hans berts_of_a_feather_accuracies_by_run.csv)")


def paired_std_from_seed_std(seed_std: float) -> float:
    """Return the std of a paired difference of two arms that each vary with `seed_std` and are uncorrelated
    across arms (sqrt(2) x): conservative when a shared seed makes the arms move together."""
    return math.sqrt(2.0) * seed_std


def holm(p_values) -> np.ndarray:
    """Return Holm-Bonferroni adjusted p-values (NaN stays NaN and does not count as a test)."""
    p = np.asarray(p_values, dtype=float)
    adjusted = np.full(len(p), np.nan)
    tested = np.flatnonzero(~np.isnan(p))
    if len(tested):
        from statsmodels.stats.multitest import multipletests

        adjusted[tested] = multipletests(p[tested], method="holm")[1]
    return adjusted


def minimum_detectable_difference(std: float, n: int, alpha: float = ALPHA, power: float = POWER) -> float:
    """Return the smallest true mean difference (in the units of `std`, the std of the paired differences) that
    a two-sided paired t-test with `n` pairs detects with probability `power`; NaN for n < 2 or no std."""
    if n < 2 or not std > 0 or not np.isfinite(std):
        return float("nan")
    from statsmodels.stats.power import TTestPower

    effect = TTestPower().solve_power(effect_size=None, nobs=n, alpha=alpha, power=power, alternative="two-sided")
    return float(effect) * std


def seeds_needed(difference: float, std: float, alpha: float = ALPHA, power: float = POWER) -> int:
    """Return the seeds (pairs) a two-sided paired t-test needs to detect a true mean `difference` with
    probability `power`, when the paired differences have std `std` (the smallest n, at least 2)."""
    if not difference > 0 or not std > 0:
        raise ValueError(f"difference and std must be positive, got {difference} and {std}")
    from statsmodels.stats.power import TTestPower

    def achieved(n: int) -> float:
        return float(TTestPower().power(effect_size=difference / std, nobs=n, alpha=alpha, alternative="two-sided"))

    # the normal approximation is a lower bound; step up to the first n whose exact power is enough
    from scipy.stats import norm

    n = max(2, math.floor(((norm.ppf(1 - alpha / 2) + norm.ppf(power)) * std / difference) ** 2))
    while n > 2 and achieved(n - 1) >= power:
        n -= 1
    while achieved(n) < power:
        n += 1
    return n


@dataclass
class PairedResult:
    """One comparison: differences in points, the tests' p-values before correction, the detectable difference."""

    n: int
    mean: float
    std: float
    ci_low: float
    ci_high: float
    t: float
    p: float  # paired t-test, two-sided, H0: mean difference = 0
    p_equivalence: float  # TOST, H0: |mean difference| >= margin
    margin: float
    mde: float  # minimum detectable difference at 80% power

    def as_dict(self) -> dict:
        """Return the fields as a plain dict (a table row)."""
        return asdict(self)


def compare_paired(ours, theirs, margin: float, alpha: float = ALPHA, power: float = POWER) -> PairedResult:
    """Return the PairedResult of paired samples `ours` and `theirs` (same length, one pair per seed) for the
    equivalence `margin` (same units). With one pair, or identical differences, the tests are NaN."""
    from scipy import stats

    ours, theirs = np.asarray(ours, dtype=float), np.asarray(theirs, dtype=float)
    diffs = ours - theirs
    n, mean = len(diffs), float(diffs.mean())
    std = float(diffs.std(ddof=1)) if n > 1 else float("nan")
    t = p = p_eq = low = high = float("nan")
    if n > 1 and std > 0:
        t, p = (float(v) for v in stats.ttest_rel(ours, theirs))
        half = float(stats.t.ppf(1 - alpha / 2, n - 1)) * std / math.sqrt(n)
        low, high = mean - half, mean + half
        from statsmodels.stats.weightstats import ttost_paired

        p_eq = float(ttost_paired(ours, theirs, -margin, margin)[0])
    return PairedResult(n, mean, std, low, high, t, p, p_eq, margin, minimum_detectable_difference(std, n, alpha, power))


def verdict(n: int, mean: float, p_adjusted: float, p_equivalence_adjusted: float, margin: float,
            alpha: float = ALPHA) -> str:
    """Return the verdict of one comparison from its Holm-adjusted p-values: 'better' / 'worse' (a difference
    shown), 'equivalent within ±m' (inside the margin shown), 'inconclusive' (neither), or 'one seed'."""
    if n < 2:
        return "one seed"
    if p_adjusted < alpha:
        return "better" if mean > 0 else "worse"
    if p_equivalence_adjusted < alpha:
        return f"equivalent within ±{margin:g}"
    return "inconclusive"
