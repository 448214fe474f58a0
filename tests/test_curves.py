"""Learning curves on points drawn from a known saturating power law: parameters and data needs recovered."""

import numpy as np
import pandas as pd
import pytest

from tis_ray.curves import fit_curve, learning_curves, saturating_power_law, share_needed

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
