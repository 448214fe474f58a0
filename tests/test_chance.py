"""Arms at chance level (tis_ray.chance), against numbers worked out by hand."""

import json

import numpy as np
import pandas as pd
import pytest

from tis_ray.chance import chance_ceiling, chance_level_arms, chance_level_comparisons, majority_shares


def test_the_ceiling_is_the_upper_end_of_the_majority_answers_95_percent_interval():
    assert chance_ceiling(0.5, 100) == pytest.approx(0.5 + 1.96 * 0.05)  # sqrt(0.25 / 100) = 0.05: 0.598
    assert chance_ceiling(0.6, 150) == pytest.approx(0.6784)  # sqrt(0.24 / 150) = 0.04; 0.6 + 1.96 x 0.04


def run_dir_with_labels(tmp_path, labels) -> str:
    data = tmp_path / "run" / "prepared" / "data" / "tok0"
    (data / "eval_meta").mkdir(parents=True)
    pd.DataFrame({"label": labels}).to_parquet(data / "eval_meta" / "test.parquet")
    (data / "data.json").write_text(json.dumps({"eval_meta": {"test": "eval_meta/test.parquet"}}))
    return str(tmp_path / "run")


def test_arms_within_noise_of_the_majority_share_are_flagged_and_so_are_their_verdicts(tmp_path):
    # 100 test examples, 60 of label 0: p = 0.6, ceiling 0.6 + 1.96 x sqrt(0.24 / 100) = 0.69602
    shares = majority_shares(run_dir_with_labels(tmp_path, [0] * 60 + [1] * 40))
    assert shares == {"test": (0.6, 100)}
    done = pd.DataFrame({
        "setting": ["random", "random", "kmeans", "kmeans", "random", "random", "kmeans", "kmeans"],
        "budget": [10.0] * 4 + [100.0] * 4,
        "seed": [1, 2] * 4,
        # means: random@10 0.69 (<= 0.69602: chance), kmeans@10 0.80, random@100 0.70 (above), kmeans@100 0.695
        "test/acc": [0.68, 0.70, 0.79, 0.81, 0.69, 0.71, 0.69, 0.70],
    })
    arms = chance_level_arms(done, shares).set_index(["setting", "budget"])
    assert arms["ceiling"].iloc[0] == pytest.approx(0.6 + 1.96 * np.sqrt(0.24 / 100))
    assert arms["accuracy"].to_dict() == pytest.approx({("kmeans", 10.0): 0.80, ("kmeans", 100.0): 0.695,
                                                        ("random", 10.0): 0.69, ("random", 100.0): 0.70})
    assert arms["chance_level"].to_dict() == {("kmeans", 10.0): False, ("kmeans", 100.0): True,
                                              ("random", 10.0): True, ("random", 100.0): False}
    paired = pd.DataFrame({"setting": ["kmeans"] * 3, "budget": [10.0, 100.0, 100.0],
                           "metric": ["test/acc", "test/acc", "other/acc"]})
    flags = chance_level_comparisons(paired, done, done["setting"] == "random", chance_level_arms(done, shares))
    # at 10 the baseline is at chance, at 100 the sampler; another set's metric is not judged by test's labels
    assert flags.tolist() == [True, True, False]


def test_a_run_without_prepared_labels_has_no_shares(tmp_path):
    assert majority_shares(str(tmp_path)) == {}
    assert chance_level_arms(pd.DataFrame({"setting": ["a"], "budget": [1.0], "test/acc": [0.5]}), {}).empty
