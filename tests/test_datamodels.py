"""Datamodels and LDS on outcomes generated from a known linear model: effects recovered, LDS at its closed form."""

import math

import numpy as np
import pytest

from tis_ray.datamodels import (
    cross_fitted_effects,
    fit_datamodel,
    lds,
    lds_with_interval,
    masks_from_subsets,
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


def test_cross_fitted_effects_never_see_the_trials_they_are_scored_on():
    masks, outcomes, effects = linear_world(trials=600)
    parts = cross_fitted_effects(masks, outcomes, folds=2)
    rows = np.concatenate([fold for _, fold in parts])
    assert sorted(rows.tolist()) == list(range(600))
    for fitted, fold in parts:
        assert lds(fitted, masks[fold], outcomes[fold]) > 0.9
