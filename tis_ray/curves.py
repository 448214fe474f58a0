"""Learning curves: accuracy against training-set size per sampler, and how much data random needs to match one.

The curve is a saturating power law, acc(x) = a - b * x^(-c), with x the subset's share of the training set:
the error of fine-tuned networks falls as a power of the data size towards an irreducible floor (Hestness et
al., 2017, "Deep learning scaling is predictable, empirically"; Rosenfeld et al., ICLR 2020), so a is the
accuracy the sampler saturates at, b and c how fast it gets there. Three parameters: a sampler needs trials at
three budgets or more, and with exactly three the curve passes through the means (nothing checks its shape);
every fit says so, and says when a parameter sits at its bound.

The interval of "the baseline needs X% of the data" is a parametric bootstrap: new trials drawn around the
baseline's fitted curve with the seed noise of its trials (pooled within budgets; its std itself drawn from its
chi-square law, so few seeds give wide intervals), the curve fitted again, and the sampler's mean drawn from its
own seeds' spread. A bootstrap over 2-3 seeds has only a handful of distinct resamples, which is why resampling
seeds covered 80-88% for a nominal 95% (bench/bench_statistics.py measures this interval's coverage).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

BOOTSTRAP = 200  # parametric bootstrap draws
MIN_BUDGETS = 3  # distinct subset sizes a fit needs (three parameters)
LOWER, UPPER = (0.0, 0.0, 1e-3), (1.0, np.inf, 3.0)  # bounds of (a, b, c)
NAMES = ("a", "b", "c")


def saturating_power_law(x, a: float, b: float, c: float):
    """Return a - b * x^(-c): accuracy at data share `x` (in (0, 1], may extrapolate past 1)."""
    return a - b * np.power(x, -c)


def fit_curve(x, acc, start: tuple[float, float, float] | None = None) -> tuple[float, float, float] | None:
    """Return the least-squares (a, b, c) of `saturating_power_law` through the points, or None when there
    are fewer than MIN_BUDGETS distinct sizes or the fit does not converge. a in [0, 1], b >= 0, c in (0, 3]."""
    from scipy.optimize import curve_fit

    x, acc = np.asarray(x, dtype=float), np.asarray(acc, dtype=float)
    keep = np.isfinite(x) & np.isfinite(acc) & (x > 0)
    x, acc = x[keep], acc[keep]
    if len(np.unique(x)) < MIN_BUDGETS:
        return None
    start = start or (min(1.0, acc.max() + 0.01), max(1e-3, acc.max() - acc.min()), 0.5)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            params, _ = curve_fit(saturating_power_law, x, acc, p0=start, bounds=(LOWER, UPPER), maxfev=20_000)
    except (RuntimeError, ValueError):
        return None
    return tuple(float(p) for p in params)


def fit_notes(params, n_budgets: int) -> str:
    """Return what a reader must know about a fit: 'exact' when it has no more budgets than parameters (the
    curve passes through the means), the parameters stuck at a bound ('a = 1 at its bound'), or ''."""
    if params is None:
        return ""
    notes = [f"exact: {n_budgets} budgets for 3 parameters"] if n_budgets <= len(NAMES) else []
    for name, value, low, high in zip(NAMES, params, LOWER, UPPER, strict=True):
        if np.isclose(value, low, rtol=0, atol=1e-6) or np.isclose(value, high, rtol=1e-6, atol=0):
            notes.append(f"{name} = {value:g} at its bound")
    return "; ".join(notes)


def _inside(params) -> tuple[float, float, float]:
    """Return `params` moved just inside the bounds (a start at a bound stalls the solver)."""
    return tuple(float(np.clip(p, lo + 1e-4, hi - 1e-4)) for p, lo, hi in zip(params, LOWER, UPPER, strict=True))


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


def seed_noise(part: pd.DataFrame, metric: str, params, n_full: int) -> tuple[float, int]:
    """Return (std, degrees of freedom) of one setting's trials around their mean: pooled within budgets when
    budgets have several seeds, else the residuals around the fitted curve (n points - 3); (NaN, 0) without."""
    groups = part.groupby("n_train")[metric]
    df = int((groups.count() - 1).clip(lower=0).sum())
    if df > 0:
        return float(np.sqrt((groups.var(ddof=1).fillna(0) * (groups.count() - 1)).sum() / df)), df
    df = len(part) - len(NAMES)
    if params is None or df <= 0:
        return float("nan"), 0
    residual = saturating_power_law(part["n_train"].to_numpy(float) / n_full, *params) - part[metric]
    return float(np.sqrt((residual ** 2).sum() / df)), df


def _fits_by_setting(done: pd.DataFrame, metric: str, n_full: int) -> dict[str, tuple | None]:
    return {setting: fit_curve(part["n_train"] / n_full, part[metric]) for setting, part in done.groupby("setting")}


def learning_curves(done: pd.DataFrame, metric: str, n_full: int, baseline: str, boot: int = BOOTSTRAP,
                    seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return (curves, savings) for completed trials (`setting`, `seed`, `n_train`, `metric` columns).

    curves: per setting a, b, c of the fit (NaN when it has too few budgets), its budgets, rmse and `notes`
    (`fit_notes`: exact, at a bound). savings: per non-baseline setting and budget, its mean accuracy and the
    data share the baseline's curve needs to reach it, with a 95% parametric-bootstrap interval (module
    docstring; NaN when the baseline's seed noise has no degrees of freedom) and the baseline fit's notes
    (`baseline_fit`). share > 1: beyond the full training set, an extrapolation; inf: above what the baseline
    saturates at."""
    fits = _fits_by_setting(done, metric, n_full)
    curves = pd.DataFrame([{"setting": s, "a": p[0] if p else np.nan, "b": p[1] if p else np.nan,
                            "c": p[2] if p else np.nan, "budgets": part["n_train"].nunique(),
                            "rmse": _rmse(p, part["n_train"] / n_full, part[metric]),
                            "notes": fit_notes(p, part["n_train"].nunique())}
                           for (s, p), (_, part) in zip(fits.items(), done.groupby("setting"), strict=True)])
    columns = ["setting", "n_train", "share", "accuracy", "baseline_share_needed", "ci_low", "ci_high", "baseline_fit"]
    base = fits.get(baseline)
    if base is None:
        return curves, pd.DataFrame(columns=columns)
    base_part = done[done["setting"] == baseline]
    sigma, df = seed_noise(base_part, metric, base, n_full)
    x = base_part["n_train"].to_numpy(float) / n_full
    rng = np.random.default_rng(seed)
    drawn_fits = []
    for _ in range(boot if df > 0 else 0):
        noise = sigma * np.sqrt(df / rng.chisquare(df))  # the std is itself an estimate from df values
        fit = fit_curve(x, saturating_power_law(x, *base) + rng.normal(0.0, noise, len(x)), start=_inside(base))
        if fit is not None:
            drawn_fits.append(fit)
    notes = curves.set_index("setting").loc[baseline, "notes"]
    rows = []
    for (setting, n), part in done.groupby(["setting", "n_train"]):
        if setting == baseline:
            continue
        values = part[metric].to_numpy(float)
        acc = float(values.mean())
        own_std, own_df = (float(values.std(ddof=1)), len(values) - 1) if len(values) > 1 else (sigma, df)
        needed = []
        for fit in drawn_fits:
            spread = own_std * np.sqrt(own_df / rng.chisquare(own_df)) if own_df > 0 else 0.0
            needed.append(share_needed(fit, acc + rng.normal(0.0, spread / np.sqrt(len(values)))))
        # "nearest": a drawn fit that never reaches the accuracy says inf, which interpolation would make NaN
        low, high = (np.percentile(needed, [2.5, 97.5], method="nearest") if needed else (np.nan, np.nan))
        rows.append({"setting": setting, "n_train": n, "share": n / n_full, "accuracy": acc,
                     "baseline_share_needed": share_needed(base, acc), "ci_low": low, "ci_high": high,
                     "baseline_fit": notes})
    return curves, pd.DataFrame(rows, columns=columns)
