"""Datamodels and LDS on outcomes generated from a known linear model: effects recovered, LDS at its closed form."""

import math
import re

import numpy as np
import pytest

from tis_ray.datamodels import (
    fit_datamodel,
    lds,
    lds_with_interval,
    masks_from_subsets,
    split_trials,
    top_k_stability,
)


def linear_world(trials=1500, pool=120, noise=0.05, seed=0):
    rng = np.random.default_rng(seed)
    masks = rng.random((trials, pool)) < 0.5
    effects = np.zeros(pool)
    effects[:8] = [0.3, 0.25, 0.2, 0.2, -0.2, -0.25, 0.15, -0.15]  # a few examples matter, the rest do not
    outcomes = 0.5 + masks @ effects + rng.normal(0, noise, trials)
    return masks, outcomes, effects


def test_masks_from_subsets():
    masks = masks_from_subsets([np.array([0, 2]), np.array([1])], 4)
    assert masks.tolist() == [[True, False, True, False], [False, True, False, False]]


@pytest.mark.parametrize("estimator", ["ridge", "lasso"])
def test_datamodel_recovers_the_effects_of_a_known_linear_model(estimator):
    masks, outcomes, effects = linear_world()
    model = fit_datamodel(masks, outcomes, estimator=estimator)
    np.testing.assert_allclose(model.effects, effects, atol=0.02)
    # ridge spreads a little of the mean over the 112 null examples; the intercept absorbs the rest
    assert model.intercept == pytest.approx(0.5, abs=0.02 if estimator == "lasso" else 0.05)
    assert model.heldout_r2 > 0.95 and model.heldout_spearman > 0.95 and model.n_heldout == 300
    stable = top_k_stability(masks, outcomes, model.alpha, k=4, boot=10, estimator=estimator)
    assert stable["steady_share"] == 1.0  # the four largest effects are the top four in every resample


def test_lds_matches_its_closed_form_for_gaussian_like_sums():
    # masks Bernoulli(1/2): cov(X tau, X w) = tau.w / 4, var(X tau) = |tau|^2 / 4, var(y) = |w|^2 / 4 + sigma^2;
    # the sums are near-normal, so Spearman = (6 / pi) asin(pearson / 2)
    rng = np.random.default_rng(1)
    trials, pool, sigma = 4000, 300, 1.0
    masks = rng.random((trials, pool)) < 0.5
    w = rng.normal(0, 0.2, pool)
    outcomes = masks @ w + rng.normal(0, sigma, trials)
    tau = w + rng.normal(0, 0.2, pool)
    pearson = (tau @ w / 4) / math.sqrt((tau @ tau / 4) * (w @ w / 4 + sigma**2))
    assert lds(tau, masks, outcomes) == pytest.approx(6 / math.pi * math.asin(pearson / 2), abs=0.03)
    value, low, high = lds_with_interval(tau, masks, outcomes, boot=200)
    assert low < value < high and high - low < 0.1
    shuffled = rng.permutation(tau)
    assert abs(lds(shuffled, masks, outcomes)) < abs(value) - 0.2
    assert math.isnan(lds(np.zeros(pool), masks, outcomes))  # a constant score ranks nothing


def two_budget_world(per_budget=60, pool=80, seed=0, effects=None, noise=0.05):
    """Subsets of 30% and 70% of the pool; the outcome grows with the subset's size (concavely) and, when given,
    with per-example `effects`."""
    rng = np.random.default_rng(seed)
    masks, budgets = [], []
    for pct in (0.3, 0.7):
        for _ in range(per_budget):
            mask = np.zeros(pool, dtype=bool)
            mask[rng.choice(pool, int(pct * pool), replace=False)] = True
            masks.append(mask)
            budgets.append(100 * pct)
    masks, budgets = np.array(masks), np.array(budgets)
    w = np.zeros(pool) if effects is None else effects
    outcomes = 0.4 * np.sqrt(masks.mean(axis=1)) + masks @ w + rng.normal(0, noise, len(masks))
    return masks, outcomes, budgets


def test_a_random_score_on_mixed_budgets_has_lds_near_0_within_budgets():
    # planted truth: no example matters, only the subset's size; any positive score's sum tracks the size
    pooled, within = [], []
    for rep in range(40):
        masks, outcomes, budgets = two_budget_world(seed=rep)
        score = np.random.default_rng(100 + rep).random(masks.shape[1])
        pooled.append(lds(score, masks, outcomes))
        within.append(lds(score, masks, outcomes, budgets))
    assert np.mean(pooled) > 0.6  # what mixing budgets reports
    assert abs(np.mean(within)) < 3 * np.std(within) / math.sqrt(len(within))
    masks, outcomes, budgets = two_budget_world(seed=7)
    value, low, high = lds_with_interval(np.random.default_rng(1).random(80), masks, outcomes, budgets, boot=300)
    assert low < 0 < high and high - low < 0.6


def test_the_stratified_lds_is_the_trial_weighted_mean_of_each_budgets_spearman():
    from scipy.stats import spearmanr

    masks, outcomes, budgets = two_budget_world(per_budget=30, effects=np.linspace(-0.05, 0.05, 80))
    keep = np.r_[np.arange(0, 30), np.arange(30, 50)]  # 30 trials at 30%, 20 at 70%
    score = np.linspace(-1, 1, 80) + np.random.default_rng(2).normal(0, 0.5, 80)
    low_rho = spearmanr(masks[:30] @ score, outcomes[:30])[0]
    high_rho = spearmanr(masks[30:50] @ score, outcomes[30:50])[0]
    expected = (30 * low_rho + 20 * high_rho) / 50
    assert lds(score, masks[keep], outcomes[keep], budgets[keep]) == pytest.approx(expected, abs=1e-12)


def test_per_example_lds_equals_a_straightforward_computation():
    from scipy.stats import spearmanr

    rng = np.random.default_rng(3)
    masks, _, budgets = two_budget_world(per_budget=12, pool=20)
    attributions = rng.normal(size=(5, 20))  # one row per evaluation example
    margins = masks @ attributions.T + rng.normal(0, 1.0, (len(masks), 5))
    margins[:, 4] = 0.25  # an example whose margin never moves: it has no correlation and is left out
    expected = []
    for example in range(4):
        per_budget = []
        for value in np.unique(budgets):
            rows = budgets == value
            predicted = [attributions[example][m].sum() for m in masks[rows]]
            per_budget.append(spearmanr(predicted, margins[rows, example])[0])
        expected.append(np.mean(per_budget))  # equal trials per budget: the plain mean
    value, low, high = lds_with_interval(attributions, masks, margins, budgets, boot=200)
    assert value == pytest.approx(np.mean(expected), abs=1e-12)
    assert low < value < high


def test_the_split_holds_out_a_fifth_of_each_budget():
    budgets = np.array([30.0] * 50 + [70.0] * 20)
    fit_rows, held = split_trials(len(budgets), budgets=budgets)
    assert (budgets[held] == 30).sum() == 10 and (budgets[held] == 70).sum() == 4
    assert not set(fit_rows) & set(held) and len(fit_rows) + len(held) == 70


def test_the_datamodel_has_an_intercept_per_budget_and_is_judged_on_trials_it_never_saw():
    from sklearn.linear_model import Ridge

    effects = np.zeros(80)
    effects[:6] = [0.2, 0.15, 0.1, -0.1, -0.15, -0.2]
    masks, outcomes, budgets = two_budget_world(per_budget=400, effects=effects, noise=0.02)
    model = fit_datamodel(masks, outcomes, budgets=budgets)
    np.testing.assert_allclose(model.effects, effects, atol=0.02)
    # the size term 0.4 sqrt(pct) is no linear function of the effects: each budget gets its own intercept
    for pct in (0.3, 0.7):
        assert model.intercepts[100 * pct] == pytest.approx(0.4 * math.sqrt(pct), abs=0.03)
    assert not set(model.fit_rows) & set(model.heldout_rows) and model.n_heldout == 160
    # the judged effects: a ridge with the same penalty on the fit trials, centred within budgets, alone
    x = masks[model.fit_rows].astype(float)
    y = outcomes[model.fit_rows].copy()
    for value in (30.0, 70.0):
        rows = budgets[model.fit_rows] == value
        x[rows] -= x[rows].mean(axis=0)
        y[rows] -= y[rows].mean()
    alone = Ridge(alpha=model.alpha, fit_intercept=False).fit(x, y).coef_
    np.testing.assert_allclose(model.fit_effects, alone, atol=1e-10)
    assert model.heldout_r2 > 0.8


def test_a_per_example_ridge_fit_averages_to_the_fit_of_the_mean():
    # ridge is linear in the outcome: the mean of per-example effects is the effect on the mean margin
    rng = np.random.default_rng(4)
    masks, _, budgets = two_budget_world(per_budget=40)
    margins = masks @ rng.normal(0, 0.05, (80, 3)) + rng.normal(0, 0.1, (len(masks), 3))
    per_example = fit_datamodel(masks, margins, budgets=budgets)
    assert per_example.effects.shape == (3, 80)
    from tis_ray.datamodels import _fitted

    mean_effects, _, _ = _fitted("ridge", masks.astype(float), margins.mean(axis=1), budgets,
                                 alpha=per_example.alpha)
    np.testing.assert_allclose(per_example.effects.mean(axis=0), mean_effects, atol=1e-10)


def test_the_plans_closed_form_matches_simulated_mean_differences_and_the_ridge_datamodel():
    from sklearn.metrics import roc_auc_score

    from tis_ray.datamodel_power import auc_of_trials, planted_trials, simulate, trials_for_auc

    # the closed form is the AUC of the mean-difference estimator: check it on planted trials directly
    masks, outcomes, truth = planted_trials(400, 200, 0.5, 10, 0.25, seed=0)
    inside = np.array([outcomes[masks[:, j]].mean() - outcomes[~masks[:, j]].mean() for j in range(200)])
    assert roc_auc_score(truth, inside) == pytest.approx(auc_of_trials(400, 0.25, 0.5, 10), abs=0.06)
    needed = trials_for_auc(0.25, 0.5, 10, auc=0.9)
    assert auc_of_trials(needed, 0.25, 0.5, 10) >= 0.9 > auc_of_trials(needed - 1, 0.25, 0.5, 10)
    # the datamodel tis-ray attribute fits does at least about as well (bench/RESULTS.md: within 0.03)
    got = simulate(needed, 200, 0.5, 10, 0.25)
    assert got["auc"] > 0.87


def test_plan_on_a_datamodels_spec_says_how_many_trials_a_target_needs(capsys):
    from tis_ray.cli import main

    assert main(["plan", "experiments/datamodels_demo.yaml"]) == 0
    out = capsys.readouterr().out
    assert "Datamodel trials (tis-ray attribute)" in out and "1% of the pool (300 examples)" in out
    # 3 planted of 300, e / sigma 0.5, halves: 2 z^2 (4 + 0.25 x 2) / 0.25 with z = 1.2816 -> 60 trials
    assert re.search(r"\|\s*50%\s*\|\s*0\.5\s*\|\s*3\s*\|\s*60\s*\|", out)
    assert main(["plan", "experiments/demo.yaml"]) == 0  # samplers compared over a few seeds: no datamodels
    assert "Datamodel trials" not in capsys.readouterr().out


def test_held_out_r2_credits_nothing_to_the_budgets_own_means():
    from sklearn.metrics import r2_score

    from tis_ray.datamodels import within_budget_r2

    actual = np.array([1.0, 2, 3, 10, 11, 12])
    budgets = np.array([30.0, 30, 30, 70, 70, 70])
    means = np.array([2.0, 2, 2, 11, 11, 11])  # a model that knows only each budget's mean
    assert r2_score(actual, means) > 0.95 and within_budget_r2(actual, means, budgets) == pytest.approx(0.0)
    assert within_budget_r2(actual, actual, budgets) == 1.0
    guess = actual + np.array([0.5, -0.5, 0, 0, 1, -1])  # squared error 2.5 against 2 + 2 within budgets
    assert within_budget_r2(actual, guess, budgets) == pytest.approx(1 - 2.5 / 4)
    assert within_budget_r2(actual, guess, np.zeros(6)) == pytest.approx(r2_score(actual, guess))
