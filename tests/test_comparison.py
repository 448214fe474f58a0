"""Epoch protocols and the comparison with the original's numbers, on a results table worked out by hand."""

import json

import numpy as np
import pandas as pd
import pytest

from tis_ray.comparison import ONE_RUN, SEPARATE, compare_with_expected, epoch_table, epoch_table_per_seed
from tis_ray.spec import ExpectedSpec

WHOLE = {"type": "kmeans", "mode": "whole_clusters", "n_clusters": 16}  # n_clusters 16 is the default


def acc(run_epochs, epoch, seed):
    """The accuracy a k-epoch run of a seed reports after `epoch`: each run its own curve."""
    return 0.50 + 0.05 * run_epochs + 0.01 * epoch + (0.002 if seed == 0 else 0.0)


@pytest.fixture
def table():
    rows = []
    for seed in (42, 0):
        for run_epochs in (1, 2, 3):  # an axis over train.epochs: the original's protocol
            for epoch in range(1, run_epochs + 1):
                point_overrides = {"train.epochs": run_epochs}
                rows.append({"trial_id": f"s{seed}-e{run_epochs}", "status": "completed",
                             "setting": f"kmeans(mode=whole_clusters) train.epochs={run_epochs}",
                             "sampler": "kmeans", "sampler_params": json.dumps({"mode": "whole_clusters",
                                                                                "n_clusters": 16}),
                             "overrides": json.dumps(point_overrides), "seed": seed, "data_pct": 0.02,
                             "n_examples": None, "epoch": epoch, "mnli_m/acc": acc(run_epochs, epoch, seed),
                             "mnli_mm/acc": acc(run_epochs, epoch, seed) + 0.01})
    return pd.DataFrame(rows)


def test_epoch_table_labels_each_protocol(table):
    t = epoch_table(table, default_epochs=3)
    setting = "kmeans(mode=whole_clusters)"  # n_clusters 16 is the default: left out of the label
    # separate runs: epoch 2 is the 2-epoch run's final epoch, mean of seeds 42 and 0 in %
    assert t.loc[(setting, 2.0, SEPARATE, 2), ("MNLI-m", "mean")] == pytest.approx(100 * (0.62 + 0.001))
    # one run: epoch 2 of the 3-epoch run
    assert t.loc[(setting, 2.0, ONE_RUN, 2), ("MNLI-m", "mean")] == pytest.approx(100 * (0.67 + 0.001))
    assert t.loc[(setting, 2.0, ONE_RUN, 2), ("MNLI-m", "std")] == pytest.approx(100 * np.std([0, 0.002], ddof=1))
    assert t.loc[(setting, 2.0, SEPARATE, 3), ("seeds", "n")] == 2
    assert sorted(t.xs(SEPARATE, level="protocol").index.get_level_values("epoch")) == [1, 2, 3]
    per_seed = epoch_table_per_seed(table, default_epochs=3)
    assert per_seed.loc[(setting, 2.0, SEPARATE, 1), "seed 0"] == pytest.approx(100 * (0.56 + 0.002))


def test_a_single_run_per_setting_is_only_one_run(table):
    three = table[table["overrides"] == json.dumps({"train.epochs": 3})]
    t = epoch_table(three.assign(overrides="{}", setting="kmeans"), default_epochs=3)
    assert set(t.index.get_level_values("protocol")) == {ONE_RUN}


def test_compare_with_expected_by_hand(table):
    expected = ExpectedSpec(rows=[
        # written without the default n_clusters: still the same sampler
        {"sampler": {"type": "kmeans", "mode": "whole_clusters"}, "data_pct": 0.02, "seed": 42, "epochs": 2,
         "mnli_m": 60.0, "mnli_mm": 61.0, "flag": "with bug"},
        {"sampler": WHOLE, "data_pct": 0.02, "epochs": 3, "mnli_m": 66.0},  # no seed: our mean over seeds
        {"sampler": WHOLE, "data_pct": 0.02, "epochs": 5, "mnli_m": 70.0},  # nothing of ours trained 5 epochs
        {"sampler": WHOLE, "data_pct": 0.04, "epochs": 2, "mnli_m": 70.0},  # another budget
    ])
    out = compare_with_expected(table, expected, default_epochs=3)
    first = out.iloc[0]
    assert first["MNLI-m ours"] == pytest.approx(62.0) and first["MNLI-m diff"] == pytest.approx(2.0)
    assert first["MNLI-mm ours"] == pytest.approx(63.0) and first["MNLI-mm diff"] == pytest.approx(2.0)
    assert first["protocol"] == SEPARATE and first["seeds"] == 1 and first["flag"] == "with bug"
    second = out.iloc[1]
    assert second["MNLI-m ours"] == pytest.approx(100 * (0.68 + 0.001)) and second["seed"] == "mean"
    assert second["seeds"] == 2 and np.isnan(second["MNLI-mm original"])
    assert out.iloc[2]["protocol"] == "—" and np.isnan(out.iloc[2]["MNLI-m ours"])
    assert np.isnan(out.iloc[3]["MNLI-m ours"])


def test_without_an_epochs_axis_the_cell_reads_epoch_k_of_one_run(table):
    three = table[table["overrides"] == json.dumps({"train.epochs": 3})].assign(overrides="{}")
    expected = ExpectedSpec(rows=[{"sampler": WHOLE, "data_pct": 0.02, "seed": 0, "epochs": 1, "mnli_m": 50.0}])
    out = compare_with_expected(three, expected, default_epochs=3)
    assert out.iloc[0]["protocol"] == ONE_RUN
    assert out.iloc[0]["MNLI-m ours"] == pytest.approx(100 * (0.66 + 0.002))
