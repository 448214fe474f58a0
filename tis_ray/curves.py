"""Learning curves: accuracy against training-set size per sampler, and how much data random needs to match one.

The curve is a saturating power law, acc(x) = a - b * x^(-c), with x the subset's share of the training set:
the error of fine-tuned networks falls as a power of the data size towards an irreducible floor (Hestness et
al., 2017, "Deep learning scaling is predictable, empirically"; Rosenfeld et al., ICLR 2020), so a is the
accuracy the sampler saturates at, b and c how fast it gets there. Three parameters: a sampler needs trials at
three budgets or more. Uncertainty comes from a bootstrap over seeds: seeds drawn with replacement, every
trial of a drawn seed kept, the curves fitted again.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

BOOTSTRAP = 200  # resamples of the seeds
MIN_BUDGETS = 3  # distinct subset sizes a fit needs (three parameters)


def saturating_power_law(x, a: float, b: float, c: float):
    """Return a - b * x^(-c): accuracy at data share `x` (in (0, 1], may extrapolate past 1)."""
    return a - b * np.power(x, -c)


def fit_curve(x, acc) -> tuple[float, float, float] | None:
    """Return the least-squares (a, b, c) of `saturating_power_law` through the points, or None when there
    are fewer than MIN_BUDGETS distinct sizes or the fit does not converge. a in [0, 1], b >= 0, c in (0, 3]."""
    from scipy.optimize import curve_fit

    x, acc = np.asarray(x, dtype=float), np.asarray(acc, dtype=float)
    keep = np.isfinite(x) & np.isfinite(acc) & (x > 0)
    x, acc = x[keep], acc[keep]
    if len(np.unique(x)) < MIN_BUDGETS:
        return None
    start = (min(1.0, acc.max() + 0.01), max(1e-3, acc.max() - acc.min()), 0.5)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            params, _ = curve_fit(saturating_power_law, x, acc, p0=start, bounds=([0, 0, 1e-3], [1, np.inf, 3]),
                                  maxfev=20_000)
    except (RuntimeError, ValueError):
        return None
    return tuple(float(p) for p in params)


def _rmse(params, x, acc) -> float:
    """Return the root mean squared residual of the trials around the fitted curve (NaN without a fit)."""
    if params is None:
        return float("nan")
    return float(np.sqrt(np.mean((saturating_power_law(np.asarray(x, float), *params) - np.asarray(acc)) ** 2)))


def share_needed(params: tuple[float, float, float], acc: float) -> float:
    """Return the data share at which the curve `params` reaches `acc`; inf when `acc` is at or above its
    asymptote a (the curve never gets there), 0 when the curve is flat (b = 0) and already there."""
    a, b, c = params
    if acc >= a:
        return float("inf")
    if b == 0:
        return 0.0
    return float((b / (a - acc)) ** (1 / c))


def _fits_by_setting(done: pd.DataFrame, metric: str, n_full: int) -> dict[str, tuple | None]:
    return {setting: fit_curve(part["n_train"] / n_full, part[metric]) for setting, part in done.groupby("setting")}


def learning_curves(done: pd.DataFrame, metric: str, n_full: int, baseline: str, boot: int = BOOTSTRAP,
                    seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return (curves, savings) for completed trials (`setting`, `seed`, `n_train`, `metric` columns).

    curves: per setting a, b, c of the fit (NaN when it has too few budgets). savings: per non-baseline
    setting and budget, its mean accuracy and the data share the baseline's curve needs to reach it, with a
    95% bootstrap interval over seeds (share > 1: beyond the full training set, an extrapolation; inf: above
    what the baseline saturates at)."""
    fits = _fits_by_setting(done, metric, n_full)
    curves = pd.DataFrame([{"setting": s, "a": p[0] if p else np.nan, "b": p[1] if p else np.nan,
                            "c": p[2] if p else np.nan, "budgets": part["n_train"].nunique(),
                            "rmse": _rmse(p, part["n_train"] / n_full, part[metric])}
                           for (s, p), (_, part) in zip(fits.items(), done.groupby("setting"), strict=True)])
    columns = ["setting", "n_train", "share", "accuracy", "baseline_share_needed", "ci_low", "ci_high"]
    base = fits.get(baseline)
    if base is None:
        return curves, pd.DataFrame(columns=columns)
    means = done.groupby(["setting", "n_train"])[metric].mean()
    rng = np.random.default_rng(seed)
    seeds = np.array(sorted(done["seed"].unique()))
    draws = []
    for _ in range(boot if len(seeds) > 1 else 0):
        drawn = rng.choice(seeds, size=len(seeds), replace=True)
        sample = pd.concat([done[done["seed"] == s] for s in drawn])
        base_fit = fit_curve(sample.loc[sample["setting"] == baseline, "n_train"] / n_full,
                             sample.loc[sample["setting"] == baseline, metric])
        if base_fit is not None:
            draws.append((base_fit, sample.groupby(["setting", "n_train"])[metric].mean()))
    rows = []
    for (setting, n), acc in means.items():
        if setting == baseline:
            continue
        needed = [share_needed(fit, boot_means[(setting, n)]) for fit, boot_means in draws
                  if (setting, n) in boot_means.index]
        # "nearest": a bootstrap fit that never reaches the accuracy says inf, which interpolation would make NaN
        low, high = (np.percentile(needed, [2.5, 97.5], method="nearest") if needed else (np.nan, np.nan))
        rows.append({"setting": setting, "n_train": n, "share": n / n_full, "accuracy": acc,
                     "baseline_share_needed": share_needed(base, acc), "ci_low": low, "ci_high": high})
    return curves, pd.DataFrame(rows, columns=columns)
