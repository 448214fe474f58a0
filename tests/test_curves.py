"""Learning curves on points drawn from a known saturating power law: parameters and data needs recovered."""

import numpy as np
import pandas as pd
import pytest

from tis_ray.curves import fit_curve, fit_notes, learning_curves, saturating_power_law, share_needed

TRUE = (0.8, 0.1, 0.5)  # acc(x) = 0.8 - 0.1 / sqrt(x): 0.7 at the full set, 0.6 at a quarter of it


def test_fit_recovers_a_known_curve_and_inverts_it_in_closed_form():
    x = np.array([0.05, 0.1, 0.2, 0.5, 1.0])
    params = fit_curve(x, saturating_power_law(x, *TRUE))
    np.testing.assert_allclose(params, TRUE, rtol=1e-4)
    assert share_needed(TRUE, 0.7) == pytest.approx(1.0)  # (0.1 / 0.1)^2
    assert share_needed(TRUE, 0.6) == pytest.approx(0.25)  # (0.1 / 0.2)^2
    assert share_needed(TRUE, 0.85) == float("inf")  # above the asymptote: never
    assert fit_curve([0.1, 0.2, 0.1], [0.5, 0.6, 0.5]) is None  # two distinct sizes for three parameters


def test_random_needs_a_quarter_of_the_data_to_match_a_sampler_at_ten_percent():
    rng = np.random.default_rng(0)
    n_full, rows = 10_000, []
    for seed in range(4):
        for share in (0.05, 0.1, 0.2, 0.5, 1.0):
            acc = saturating_power_law(share, *TRUE) + rng.normal(0, 0.002)
            rows.append({"setting": "random", "seed": seed, "n_train": int(share * n_full), "acc": acc})
        # the sampler at 10% is as good as random at 25%: 0.6
        rows.append({"setting": "smart", "seed": seed, "n_train": 1000, "acc": 0.6 + rng.normal(0, 0.002)})
    curves, savings = learning_curves(pd.DataFrame(rows), "acc", n_full, "random", boot=100)
    fitted = curves.set_index("setting")
    np.testing.assert_allclose(fitted.loc["random", ["a", "b", "c"]].astype(float), TRUE, atol=0.02)
    assert np.isnan(fitted.loc["smart", "a"])  # one budget: no curve of its own
    row = savings.iloc[0]
    assert row["setting"] == "smart" and row["share"] == pytest.approx(0.1)
    assert row["baseline_share_needed"] == pytest.approx(0.25, rel=0.1)
    assert row["ci_low"] < 0.25 < row["ci_high"] and row["ci_high"] - row["ci_low"] < 0.1


def test_notes_say_when_the_fit_is_exact_or_at_a_bound():
    x = np.array([0.1, 0.3, 1.0])
    exact = fit_curve(x, saturating_power_law(x, *TRUE))
    np.testing.assert_allclose(saturating_power_law(x, *exact), saturating_power_law(x, *TRUE), atol=1e-9)
    assert fit_notes(exact, 3) == "exact: 3 budgets for 3 parameters"
    assert fit_notes(TRUE, 5) == ""
    # accuracy still rising fast at the full set: the asymptote wants to pass 1 and stops there
    steep = fit_curve(np.array([0.05, 0.1, 0.2, 0.5, 1.0]), np.array([0.2, 0.4, 0.6, 0.85, 0.99]))
    assert "a = 1 at its bound" in fit_notes(steep, 5)


def simulated_trials(rng, budgets, seeds, noise=0.01):
    """Trials of random on TRUE at `budgets` and of a sampler at 10% as good as random at 25%."""
    rows = []
    for seed in range(seeds):
        for share in budgets:
            rows.append({"setting": "random", "seed": seed, "n_train": int(share * 10_000),
                         "acc": saturating_power_law(share, *TRUE) + rng.normal(0, noise)})
        rows.append({"setting": "smart", "seed": seed, "n_train": 1000,
                     "acc": saturating_power_law(0.25, *TRUE) + rng.normal(0, noise)})
    return pd.DataFrame(rows)


def test_no_interval_without_seed_noise_and_a_small_coverage_check():
    rng = np.random.default_rng(3)
    curves, savings = learning_curves(simulated_trials(rng, (0.1, 0.3, 1.0), seeds=1), "acc", 10_000, "random")
    assert np.isnan(savings.iloc[0]["ci_low"]) and savings.iloc[0]["baseline_fit"].startswith("exact")
    # the parametric interval holds the planted 25% in (nearly) every one of 20 simulated sweeps of 3 seeds
    hits = 0
    for i in range(20):
        row = learning_curves(simulated_trials(rng, (0.05, 0.1, 0.2, 0.5, 1.0), seeds=3), "acc", 10_000, "random",
                              boot=100, seed=i)[1].iloc[0]
        hits += row["ci_low"] <= 0.25 <= row["ci_high"]
    assert hits >= 18, hits  # bench/bench_statistics.py measures it over many more
