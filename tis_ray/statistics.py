"""Paired comparisons that decide: difference, equivalence, the smallest difference a cell could see, seeds needed.

A comparison is a set of paired differences (sampler minus baseline, same budget and seed), in points. For it:

- the paired t-test (is the difference non-zero?) and its 95% confidence interval;
- TOST, two one-sided paired t-tests against a margin m (is the difference inside (-m, +m)?), from statsmodels;
- the minimum detectable difference: the true difference that a two-sided paired t-test at this n, this
  paired std and this level would find with 80% power (`paired_t_power`: the noncentral t, both tails; solved
  by a bracketed root, as statsmodels' solver returns its bracket's end at small n without a warning);
- after Holm's correction over a family of comparisons, one verdict: better, worse, equivalent within ±m, both
  (a difference shown, and shown inside the margin), identical (no difference at all), or inconclusive.

`seeds_needed` turns a difference worth detecting and a std of the paired differences into seeds per arm. For a
family of m comparisons the planner and the detectable difference use alpha / m, Holm's first (strictest) step.
Without a pilot run, the stds below are the spread of 100 full-data BERT-base MNLI fine-tunes that differ only
in seed (McCoy, Min & Linzen, "BERTs of a feather do not generalize together", BlackboxNLP 2020; per-run table:
tommccoy1/hans, berts_of_a_feather/berts_of_a_feather_accuracies_by_run.csv): a full-data model's spread, applied
to every budget, where subsets usually spread wider (a pilot's per-budget spread is better: tis_ray.planning).
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass

import numpy as np

ALPHA = 0.05
POWER = 0.8

# Std across seeds in accuracy points of 100 full-data BERT-base fine-tunes on MNLI (McCoy et al., 2020), per metric of
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
SEED_STD_SOURCE = ("100 full-data BERT-base MNLI fine-tunes differing only in seed (McCoy et al., 'BERTs of a "
                   "feather', 2020; tommccoy1/hans berts_of_a_feather_accuracies_by_run.csv)")


def paired_std_from_seed_std(seed_std: float) -> float:
    """Return the std of a paired difference of two arms that each vary with `seed_std` and are uncorrelated
    across arms (sqrt(2) x): conservative when a shared seed makes the arms move together."""
    return math.sqrt(2.0) * seed_std


def holm(p_values) -> np.ndarray:
    """Return Holm-Bonferroni adjusted p-values (NaN stays NaN and does not count as a test): the i-th smallest
    of m is multiplied by m - i + 1, capped at 1 and never below the one before it."""
    p = np.asarray(p_values, dtype=float)
    adjusted = np.full(len(p), np.nan)
    tested = np.flatnonzero(~np.isnan(p))
    order = tested[np.argsort(p[tested], kind="stable")]
    steps = np.minimum(1.0, (len(order) - np.arange(len(order))) * p[order])
    adjusted[order] = np.maximum.accumulate(steps) if len(order) else steps
    return adjusted


def paired_t_power(effect: float, n: int, alpha: float = ALPHA) -> float:
    """Return the power of a two-sided paired t-test with `n` pairs at level `alpha` when the true mean difference
    is `effect` paired stds: P(|T'| > t_crit), T' noncentral t with n - 1 df and noncentrality effect * sqrt(n),
    both tails counted."""
    from scipy import stats

    df, noncentrality = n - 1, abs(effect) * math.sqrt(n)
    critical = float(stats.t.ppf(1 - alpha / 2, df))
    upper = float(stats.nct.sf(critical, df, noncentrality))
    lower = float(stats.nct.cdf(-critical, df, noncentrality))
    if not math.isfinite(lower):  # scipy's nct.cdf returns NaN far in its tail; the mirrored sf does not
        lower = float(stats.nct.sf(critical, df, -noncentrality))
    return upper + lower


def minimum_detectable_difference(std: float, n: int, alpha: float = ALPHA, power: float = POWER) -> float:
    """Return the smallest true mean difference (in the units of `std`, the std of the paired differences) that
    a two-sided paired t-test with `n` pairs at level `alpha` detects with probability `power`; NaN for n < 2 or
    no std."""
    if n < 2 or not std > 0 or not np.isfinite(std):
        return float("nan")
    return _detectable_effect(int(n), float(alpha), float(power)) * std


@functools.lru_cache(maxsize=4096)
def _detectable_effect(n: int, alpha: float, power: float) -> float:
    """Return the effect (in paired stds) at which `paired_t_power` is `power`: the root in a bracket that is
    widened until it holds the target."""
    from scipy.optimize import brentq

    if not alpha < power < 1:
        raise ValueError(f"power must be in (alpha, 1), got {power} at alpha {alpha}")
    high = 1.0
    while paired_t_power(high, n, alpha) < power:  # power rises to 1 with the effect: the bracket closes
        high *= 2
    return float(brentq(lambda e: paired_t_power(e, n, alpha) - power, 0.0, high, xtol=1e-12, rtol=1e-12))


def seeds_needed(difference: float, std: float, alpha: float = ALPHA, power: float = POWER) -> int:
    """Return the seeds (pairs) a two-sided paired t-test at level `alpha` needs to detect a true mean
    `difference` with probability `power`, when the paired differences have std `std` (the smallest n, at
    least 2)."""
    if not difference > 0 or not std > 0:
        raise ValueError(f"difference and std must be positive, got {difference} and {std}")
    from scipy.stats import norm

    effect = difference / std
    # the normal approximation is a lower bound; step up to the first n whose exact power is enough
    n = max(2, math.floor(((norm.ppf(1 - alpha / 2) + norm.ppf(power)) / effect) ** 2))
    while n > 2 and paired_t_power(effect, n - 1, alpha) >= power:
        n -= 1
    while paired_t_power(effect, n, alpha) < power:
        n += 1
    return n


def equivalence_power_bound(difference: float, std: float, n: int, margin: float, alpha: float = ALPHA) -> float:
    """Return a lower bound on the probability that TOST (two one-sided paired t-tests at level `alpha` against
    ±`margin`) shows equivalence when the true mean difference is `difference` and the paired std `std`:
    P(lower test rejects) + P(upper test rejects) - 1 (each from the noncentral t; Bonferroni's inequality,
    since both tests share one sample), at least 0."""
    from scipy import stats

    df, scale = n - 1, std / math.sqrt(n)
    critical = float(stats.t.ppf(1 - alpha, df))
    lower = float(stats.nct.sf(critical, df, (difference + margin) / scale))  # H0: mean <= -margin rejected
    upper = float(stats.nct.sf(critical, df, (margin - difference) / scale))  # H0: mean >= +margin rejected
    return max(0.0, lower + upper - 1.0)


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
    mde: float  # minimum detectable difference at 80% power, at level alpha

    def as_dict(self) -> dict:
        """Return the fields as a plain dict (a table row)."""
        return asdict(self)


def compare_paired(ours, theirs, margin: float, alpha: float = ALPHA, power: float = POWER) -> PairedResult:
    """Return the PairedResult of paired samples `ours` and `theirs` (same length, one pair per seed) for the
    equivalence `margin` (same units), the interval and detectable difference at `alpha`. With one pair, or
    identical differences, the tests are NaN."""
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


def bonferroni_interval(mean: float, std: float, n: int, alpha: float = ALPHA, family: int = 1) -> tuple[float, float]:
    """Return the (low, high) t interval of a mean paired difference at level 1 - alpha / family: with `family`
    comparisons, all intervals hold together with probability >= 1 - alpha (Bonferroni); NaN without a spread."""
    from scipy import stats

    if n < 2 or not std > 0 or family < 1:
        return float("nan"), float("nan")
    half = float(stats.t.ppf(1 - alpha / (2 * family), n - 1)) * std / math.sqrt(n)
    return mean - half, mean + half


def verdict(n: int, mean: float, p_adjusted: float, p_equivalence_adjusted: float, margin: float,
            alpha: float = ALPHA, std: float = float("nan")) -> str:
    """Return the verdict of one comparison from its Holm-adjusted p-values: 'better' / 'worse' (a difference
    shown), 'equivalent within ±m' (inside the margin shown), 'better, within ±m (equivalent)' (both shown: a
    real difference too small to matter), 'identical' (every paired difference 0: the arms are the same, as every
    sampler at 100% is), 'inconclusive' (neither shown), or 'one seed'."""
    if n < 2:
        return "one seed"
    if std == 0 and mean == 0:
        return "identical"
    equivalent = p_equivalence_adjusted < alpha
    if p_adjusted < alpha:
        direction = "better" if mean > 0 else "worse"
        return f"{direction}, within ±{margin:g} (equivalent)" if equivalent else direction
    if equivalent:
        return f"equivalent within ±{margin:g}"
    return "inconclusive"
