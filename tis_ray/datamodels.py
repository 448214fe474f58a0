"""Which training examples matter, measured by retraining: datamodels and the linear datamodeling score.

A run of many trials on random subsets of one pool is a dataset of (inclusion mask, outcome) pairs:

- a **datamodel** (Ilyas et al., "Datamodels: predicting predictions from training data", ICML 2022) regresses
  the outcome (an accuracy, a margin) on the mask; its coefficient for example j estimates the effect of
  including j. Here: regularised least squares, the penalty chosen by cross-validation over trials, the fit
  judged on trials it never saw. `ridge` (L2, scikit-learn's RidgeCV, the default) keeps every example's effect;
  `lasso` (L1, LassoCV, the paper's) sets most to exactly 0, which ties the small effects of a few hundred
  trials (on the planted-truth benchmark ridge ranks the planted pairs better at 300 trials, ROC AUC 0.86 vs
  0.77, and both reach 0.94 at 600: bench/RESULTS.md);
- the **linear datamodeling score** (LDS; Park et al., "TRAK", ICML 2023) of any per-example score tau: on
  held-out trials, the Spearman correlation between the sum of tau over each subset and the outcome measured
  after retraining on it. 1 means the score ranks subsets exactly as retraining does; 0, not at all.
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


def split_trials(n_trials: int, held_out: float = HELD_OUT, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Return (fit rows, held-out rows): a seeded split of the trials, at least 3 held out."""
    order = np.random.default_rng(seed).permutation(n_trials)
    k = max(3, int(round(held_out * n_trials)))
    return np.sort(order[k:]), np.sort(order[:k])


@dataclass
class Datamodel:
    """Per-example effects on one target, the intercept, the chosen penalty and the held-out fit quality."""

    effects: np.ndarray  # [pool_size] the change in the outcome from including each example
    intercept: float
    alpha: float  # the penalty cross-validation chose
    heldout_r2: float
    heldout_spearman: float
    n_fit: int
    n_heldout: int

    def predict(self, masks: np.ndarray) -> np.ndarray:
        """Return the predicted outcome of each subset (rows of `masks`)."""
        return masks.astype(np.float64) @ self.effects + self.intercept


def fit_datamodel(masks: np.ndarray, outcomes: np.ndarray, seed: int = 0, held_out: float = HELD_OUT,
                  cv: int = 5, estimator: str = "ridge") -> Datamodel:
    """Return the datamodel of `outcomes` [trials] on `masks` [trials, pool]: `estimator` (ridge or lasso) with
    its penalty chosen by `cv`-fold cross-validation over the fit trials, judged on the held-out trials, then
    refitted on every trial with the chosen penalty."""
    from scipy.stats import spearmanr
    from sklearn.metrics import r2_score

    x, y = masks.astype(np.float64), np.asarray(outcomes, dtype=np.float64)
    fit_rows, test_rows = split_trials(len(y), held_out, seed)
    search = _regressor(estimator, seed=seed, cv=min(cv, len(fit_rows))).fit(x[fit_rows], y[fit_rows])
    predicted = search.predict(x[test_rows])
    r2 = float(r2_score(y[test_rows], predicted))
    rho = float(spearmanr(predicted, y[test_rows])[0]) if np.ptp(predicted) > 0 else float("nan")
    full = _regressor(estimator, alpha=float(search.alpha_)).fit(x, y)
    return Datamodel(full.coef_.copy(), float(full.intercept_), float(search.alpha_), r2, rho, len(fit_rows),
                     len(test_rows))


def top_k_stability(masks: np.ndarray, outcomes: np.ndarray, alpha: float, k: int = TOP_K,
                    boot: int = BOOTSTRAP, seed: int = 0, estimator: str = "ridge") -> dict[str, float]:
    """Return how stable the k most helpful examples are: refit with penalty `alpha` on `boot` resamples of
    the trials (with replacement) and give the mean Jaccard overlap of each resample's top k with the full fit's,
    and the share of the full fit's top k found in at least 80% of the resamples' top k."""
    x, y = masks.astype(np.float64), np.asarray(outcomes, dtype=np.float64)
    top = set(np.argsort(-_regressor(estimator, alpha).fit(x, y).coef_, kind="stable")[:k].tolist())
    rng = np.random.default_rng(seed)
    counts: dict[int, int] = {}
    overlaps = []
    for _ in range(boot):
        rows = rng.integers(0, len(y), len(y))
        coef = _regressor(estimator, alpha).fit(x[rows], y[rows]).coef_
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


def subset_sums(scores: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Return each subset's summed score (missing scores count 0): the LDS's linear prediction."""
    return masks.astype(np.float64) @ np.nan_to_num(np.asarray(scores, dtype=np.float64), posinf=0.0, neginf=0.0)


def lds(scores: np.ndarray, masks: np.ndarray, outcomes: np.ndarray) -> float:
    """Return the linear datamodeling score of per-example `scores`: Spearman's rho between each subset's
    summed score and its measured outcome, over the rows of `masks` (NaN when either side is constant)."""
    return rank_correlation(subset_sums(scores, masks), outcomes)


def correlation_with_interval(predicted: np.ndarray, outcomes: np.ndarray, boot: int = 1000,
                              seed: int = 0) -> tuple[float, float, float]:
    """Return (Spearman's rho, 2.5th, 97.5th percentile), the interval from a bootstrap over the trials."""
    predicted, outcomes = np.asarray(predicted, dtype=np.float64), np.asarray(outcomes, dtype=np.float64)
    value = rank_correlation(predicted, outcomes)
    rng = np.random.default_rng(seed)
    draws = [rank_correlation(predicted[rows], outcomes[rows])
             for rows in (rng.integers(0, len(outcomes), len(outcomes)) for _ in range(boot))]
    draws = [d for d in draws if np.isfinite(d)]
    low, high = (np.percentile(draws, [2.5, 97.5]) if draws else (np.nan, np.nan))
    return value, float(low), float(high)


def lds_with_interval(scores: np.ndarray, masks: np.ndarray, outcomes: np.ndarray, boot: int = 1000,
                      seed: int = 0) -> tuple[float, float, float]:
    """Return (LDS, 2.5th, 97.5th percentile) with the interval from a bootstrap over the trials."""
    return correlation_with_interval(subset_sums(scores, masks), outcomes, boot, seed)


def cross_fitted_effects(masks: np.ndarray, outcomes: np.ndarray, folds: int = 2, seed: int = 0,
                         estimator: str = "ridge") -> list[tuple[np.ndarray, np.ndarray]]:
    """Return [(effects fitted without fold f, rows of fold f)]: a datamodel's own LDS is measured only on trials
    its fit never saw."""
    order = np.random.default_rng(seed).permutation(len(outcomes))
    out = []
    for fold in np.array_split(order, folds):
        rest = np.setdiff1d(order, fold)
        model = fit_datamodel(masks[rest], np.asarray(outcomes)[rest], seed=seed, estimator=estimator)
        out.append((model.effects, np.sort(fold)))
    return out


def cross_fitted_predictions(masks: np.ndarray, outcomes: np.ndarray, folds: int = 2, seed: int = 0,
                             estimator: str = "ridge") -> np.ndarray:
    """Return every trial's outcome as predicted by the summed effects of a datamodel fitted without its fold."""
    predicted = np.empty(len(outcomes))
    for effects, rows in cross_fitted_effects(masks, outcomes, folds, seed, estimator):
        predicted[rows] = subset_sums(effects, masks[rows])
    return predicted
