"""Which training examples matter, measured by retraining: datamodels and the linear datamodeling score.

A run of many trials on random subsets of one pool is a dataset of (inclusion mask, outcome) pairs:

- a **datamodel** (Ilyas et al., "Datamodels: predicting predictions from training data", ICML 2022) regresses
  the outcome (an accuracy, a margin) on the mask; its coefficient for example j estimates the effect of
  including j. Here: regularised least squares, the penalty chosen by cross-validation over trials, the fit
  judged on trials it never saw. `ridge` (L2, scikit-learn's RidgeCV, the default) keeps every example's effect;
  `lasso` (L1, LassoCV, the paper's) sets most to exactly 0, which ties the small effects of a few hundred
  trials (on the planted-truth benchmark ridge ranks the planted pairs better at 300 trials, ROC AUC 0.86 vs
  0.77, and both reach 0.94 at 600: bench/RESULTS.md);
- the **linear datamodeling score** (LDS) of a score, always on held-out trials and within subsets of one size
  (a subset's summed score grows with its size, as accuracy does: pooled over budgets, any positive score would
  look predictive), the budgets pooled by a trial-weighted average:
  - the *aggregate LDS* of a per-example score tau [pool] for one target: Spearman's rho between the sum of tau
    over each subset and the target measured after retraining on it;
  - the *per-example LDS* (Park et al., "TRAK", ICML 2023) of attributions [evaluation examples, pool]: per
    evaluation example, Spearman's rho between the sum of its row over each subset and its margin after
    retraining, averaged over the examples.
  1 means the score ranks subsets exactly as retraining does; 0, not at all.

Subsets of several budgets get one unpenalised intercept each in the fit (the outcome need not be linear in
the subset's size).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

HELD_OUT = 0.2  # share of trials kept out of the fit to judge it (and for the LDS)
BOOTSTRAP = 50  # resamples of trials for the stability of the top examples
TOP_K = 20
ESTIMATORS = ("ridge", "lasso")
RIDGE_ALPHAS = np.logspace(-3, 5, 33)


def _regressor(estimator: str, alpha: float | None = None, seed: int = 0, cv: int = 5):
    """Return the scikit-learn regressor: cross-validated when `alpha` is None, else with that penalty."""
    from sklearn.linear_model import Lasso, LassoCV, Ridge, RidgeCV

    if estimator not in ESTIMATORS:
        raise ValueError(f"unknown estimator {estimator!r}; known: {', '.join(ESTIMATORS)}")
    if estimator == "ridge":
        return RidgeCV(alphas=RIDGE_ALPHAS, cv=cv) if alpha is None else Ridge(alpha=alpha)
    return LassoCV(cv=cv, random_state=seed, max_iter=20_000) if alpha is None else Lasso(alpha=alpha, max_iter=20_000)


def masks_from_subsets(subsets: list[np.ndarray], pool_size: int) -> np.ndarray:
    """Return the [trials, pool_size] bool inclusion matrix of subsets given as index arrays."""
    masks = np.zeros((len(subsets), pool_size), dtype=bool)
    for row, indices in enumerate(subsets):
        masks[row, indices] = True
    return masks


def split_trials(n_trials: int, held_out: float = HELD_OUT, seed: int = 0,
                 budgets: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Return (fit rows, held-out rows): a seeded split of the trials, `held_out` of each budget (of all trials
    when `budgets` is None) and at least 3 of each held out."""
    strata = np.zeros(n_trials) if budgets is None else np.asarray(budgets)
    rng = np.random.default_rng(seed)
    held = []
    for value in np.unique(strata):
        rows = rng.permutation(np.flatnonzero(strata == value))
        held.append(rows[:max(3, int(round(held_out * len(rows))))])
    test = np.sort(np.concatenate(held))
    return np.setdiff1d(np.arange(n_trials), test), test


def _within_budget(x: np.ndarray, y: np.ndarray, budgets: np.ndarray | None):
    """Return (x, y) centred within each budget, and per budget the means of x and y: partialling out one
    unpenalised intercept per budget, so the effects come from differences between subsets of one size."""
    strata = np.zeros(len(y)) if budgets is None else np.asarray(budgets)
    x, y = x.copy(), y.copy()
    means = {}
    for value in np.unique(strata):
        rows = strata == value
        means[value] = (x[rows].mean(axis=0), y[rows].mean(axis=0))
        x[rows] -= means[value][0]
        y[rows] -= means[value][1]
    return x, y, means


@dataclass
class Datamodel:
    """Per-example effects on one target (or one row of effects per evaluation example), an intercept per
    budget, the chosen penalty and the fit quality on trials the fit never saw."""

    effects: np.ndarray  # [pool] (or [examples, pool]) the change in the outcome from including each example
    intercepts: dict  # budget -> intercept (one key, 0.0, when the trials were not given budgets)
    alpha: float  # the penalty cross-validation chose
    heldout_r2: float  # against each budget's mean (tis_ray.datamodels.within_budget_r2)
    heldout_spearman: float  # within budgets, pooled by trials (averaged over examples for a per-example fit)
    n_fit: int
    n_heldout: int
    fit_effects: np.ndarray  # the effects fitted on the fit trials only: the ones judged on the held-out trials
    fit_rows: np.ndarray
    heldout_rows: np.ndarray

    @property
    def intercept(self) -> float:
        """Return the intercept of the only budget (the mean over budgets when there are several)."""
        return float(np.mean([np.mean(v) for v in self.intercepts.values()]))

    def predict(self, masks: np.ndarray, budgets: np.ndarray | None = None) -> np.ndarray:
        """Return the predicted outcome of each subset (rows of `masks`), with its budget's intercept."""
        keys = [0.0] * len(masks) if budgets is None else list(budgets)
        return masks.astype(np.float64) @ self.effects.T + np.array([self.intercepts[k] for k in keys])


def _fitted(estimator: str, x: np.ndarray, y: np.ndarray, budgets, alpha=None, seed=0, cv=5):
    """Return (effects, {budget: intercept}, alpha) of `estimator` on x, y with an intercept per budget."""
    xc, yc, means = _within_budget(x, y, budgets)
    model = _regressor(estimator, alpha, seed=seed, cv=cv)
    model.set_params(fit_intercept=False)
    model.fit(xc, yc)
    coef = np.asarray(model.coef_, dtype=np.float64)
    intercepts = {k: my - (coef @ mx) for k, (mx, my) in means.items()}
    return coef, intercepts, float(getattr(model, "alpha_", alpha))


def within_budget_r2(actual: np.ndarray, predicted: np.ndarray, budgets: np.ndarray) -> float:
    """Return R² against each budget's own mean: 1 - (squared error) / (squared deviation from the mean of the
    trial's budget), averaged over outputs; with one budget, the usual R². The budgets' different means are
    not credited to the per-example effects."""
    actual = np.asarray(actual, dtype=np.float64).reshape(len(actual), -1)
    predicted = np.asarray(predicted, dtype=np.float64).reshape(len(actual), -1)
    centred = actual.copy()
    for value in np.unique(budgets):
        rows = budgets == value
        centred[rows] -= actual[rows].mean(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return float(np.mean(1 - ((actual - predicted) ** 2).sum(axis=0) / (centred**2).sum(axis=0)))


def fit_datamodel(masks: np.ndarray, outcomes: np.ndarray, seed: int = 0, held_out: float = HELD_OUT,
                  cv: int = 5, estimator: str = "ridge", budgets: np.ndarray | None = None) -> Datamodel:
    """Return the datamodel of `outcomes` ([trials], or [trials, examples] for one fit per evaluation example,
    ridge only) on `masks` [trials, pool]: `estimator` (ridge or lasso) with an unpenalised intercept per budget
    (`budgets`: each trial's subset size or data %; None: one budget) and its penalty chosen by `cv`-fold
    cross-validation over the fit trials, judged on the held-out trials (a split of each budget), then refitted
    on every trial with the chosen penalty."""
    x, y = masks.astype(np.float64), np.asarray(outcomes, dtype=np.float64)
    if y.ndim == 2 and estimator != "ridge":
        raise ValueError("a fit per evaluation example is ridge only")
    keys = np.zeros(len(y)) if budgets is None else np.asarray(budgets, dtype=np.float64)
    fit_rows, test_rows = split_trials(len(y), held_out, seed, keys if budgets is not None else None)
    fit_coef, fit_intercepts, alpha = _fitted(estimator, x[fit_rows], y[fit_rows], keys[fit_rows], seed=seed,
                                              cv=min(cv, len(fit_rows)))
    predicted = x[test_rows] @ fit_coef.T + np.array([fit_intercepts[k] for k in keys[test_rows]])
    r2 = within_budget_r2(y[test_rows], predicted, keys[test_rows])
    actual = y[test_rows].reshape(len(test_rows), -1)
    rho = float(np.nanmean(stratified_spearman(predicted.reshape(len(test_rows), -1), actual, keys[test_rows])))
    coef, intercepts, _ = _fitted(estimator, x, y, keys, alpha=alpha)
    return Datamodel(coef, intercepts, alpha, r2, rho, len(fit_rows), len(test_rows), fit_coef, fit_rows,
                     test_rows)


def top_k_stability(masks: np.ndarray, outcomes: np.ndarray, alpha: float, k: int = TOP_K,
                    boot: int = BOOTSTRAP, seed: int = 0, estimator: str = "ridge",
                    budgets: np.ndarray | None = None) -> dict[str, float]:
    """Return how stable the k most helpful examples are: refit with penalty `alpha` (an intercept per budget)
    on `boot` resamples of the trials (with replacement, within budgets) and give the mean Jaccard overlap of each
    resample's top k with the full fit's, and the share of the full fit's top k found in at least 80% of the
    resamples' top k."""
    x, y = masks.astype(np.float64), np.asarray(outcomes, dtype=np.float64)
    strata = np.zeros(len(y)) if budgets is None else np.asarray(budgets, dtype=np.float64)
    top = set(np.argsort(-_fitted(estimator, x, y, strata, alpha)[0], kind="stable")[:k].tolist())
    rng = np.random.default_rng(seed)
    groups = [np.flatnonzero(strata == v) for v in np.unique(strata)]
    counts: dict[int, int] = {}
    overlaps = []
    for _ in range(boot):
        rows = np.concatenate([rng.choice(g, len(g)) for g in groups])
        coef = _fitted(estimator, x[rows], y[rows], strata[rows], alpha)[0]
        again = set(np.argsort(-coef, kind="stable")[:k].tolist())
        overlaps.append(len(top & again) / len(top | again))
        for j in again & top:
            counts[j] = counts.get(j, 0) + 1
    steady = sum(1 for j in top if counts.get(j, 0) >= 0.8 * boot)
    return {"k": k, "bootstrap": boot, "jaccard_mean": float(np.mean(overlaps)), "steady_share": steady / k}


def rank_correlation(predicted: np.ndarray, outcomes: np.ndarray) -> float:
    """Return Spearman's rho of predicted and measured outcomes (NaN when either side is constant)."""
    from scipy.stats import spearmanr

    predicted, outcomes = np.asarray(predicted, dtype=np.float64), np.asarray(outcomes, dtype=np.float64)
    if np.ptp(predicted) == 0 or np.ptp(outcomes) == 0:
        return float("nan")
    return float(spearmanr(predicted, outcomes)[0])


def columnwise_spearman(predicted: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """Return Spearman's rho of each column of `predicted` with the same column of `actual` ([rows, columns]
    each; NaN for a column constant on either side or with fewer than 3 rows): Pearson's r of average ranks."""
    from scipy.stats import rankdata

    if len(predicted) < 3:
        return np.full(predicted.shape[1], np.nan)
    a = rankdata(predicted, axis=0)
    b = rankdata(actual, axis=0)
    a -= a.mean(axis=0)
    b -= b.mean(axis=0)
    denominator = np.sqrt((a * a).sum(axis=0) * (b * b).sum(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, (a * b).sum(axis=0) / np.where(denominator > 0, denominator, 1), np.nan)


def stratified_spearman(predicted: np.ndarray, actual: np.ndarray, budgets: np.ndarray | None) -> np.ndarray:
    """Return per column the Spearman correlation within each budget, pooled by a stratified average weighted
    by the budget's rows (budgets where the column is constant, or with under 3 rows, left out; NaN if none)."""
    strata = np.zeros(len(predicted)) if budgets is None else np.asarray(budgets)
    total = np.zeros(predicted.shape[1])
    weight = np.zeros(predicted.shape[1])
    for value in np.unique(strata):
        rows = strata == value
        rho = columnwise_spearman(predicted[rows], actual[rows])
        usable = np.isfinite(rho)
        total[usable] += rows.sum() * rho[usable]
        weight[usable] += rows.sum()
    with np.errstate(invalid="ignore"):
        return np.where(weight > 0, total / np.where(weight > 0, weight, 1), np.nan)


def lds_summary(predicted: np.ndarray, actual: np.ndarray, budgets: np.ndarray | None = None, boot: int = 1000,
                seed: int = 0) -> tuple[float, float, float]:
    """Return (LDS, 2.5th, 97.5th percentile): the mean over columns (evaluation examples; one column: an
    aggregate target) of the within-budget Spearman correlation of predicted and actual outcomes over the rows
    (held-out subsets), with a bootstrap over the rows resampled within each budget."""
    predicted = np.asarray(predicted, dtype=np.float64).reshape(len(predicted), -1)
    actual = np.asarray(actual, dtype=np.float64).reshape(len(actual), -1)
    strata = np.zeros(len(actual)) if budgets is None else np.asarray(budgets)

    def mean_rho(rows):
        rho = stratified_spearman(predicted[rows], actual[rows], strata[rows])
        return float(np.nanmean(rho)) if np.isfinite(rho).any() else float("nan")

    value = mean_rho(np.arange(len(actual)))
    rng = np.random.default_rng(seed)
    groups = [np.flatnonzero(strata == v) for v in np.unique(strata)]
    draws = [mean_rho(np.concatenate([rng.choice(g, len(g)) for g in groups])) for _ in range(boot)]
    draws = [d for d in draws if np.isfinite(d)]
    low, high = (np.percentile(draws, [2.5, 97.5]) if draws else (np.nan, np.nan))
    return value, float(low), float(high)


def subset_sums(scores: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Return each subset's summed score (missing scores count 0): the LDS's linear prediction; for scores of
    one row per evaluation example ([examples, pool]) a [subsets, examples] array."""
    clean = np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    return masks.astype(np.float64) @ clean.T


def lds(scores: np.ndarray, masks: np.ndarray, outcomes: np.ndarray, budgets: np.ndarray | None = None) -> float:
    """Return the aggregate linear datamodeling score of per-example `scores`: Spearman's rho between each
    subset's summed score and its measured outcome, within each budget and pooled by a stratified average over
    the rows of `masks` (NaN when either side is constant)."""
    return float(stratified_spearman(subset_sums(scores, masks)[:, None], np.asarray(outcomes, float)[:, None],
                                     budgets)[0])


def lds_with_interval(scores: np.ndarray, masks: np.ndarray, outcomes: np.ndarray,
                      budgets: np.ndarray | None = None, boot: int = 1000,
                      seed: int = 0) -> tuple[float, float, float]:
    """Return (LDS, 2.5th, 97.5th percentile), the interval from a bootstrap over the trials within budgets.

    `scores` [pool] and `outcomes` [trials]: the aggregate LDS; `scores` [examples, pool] and `outcomes`
    [trials, examples]: the per-example LDS of Park et al. (2023), averaged over the examples."""
    return lds_summary(subset_sums(scores, masks), outcomes, budgets, boot, seed)
