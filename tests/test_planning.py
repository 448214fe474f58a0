"""Seed planning: the defaults' closed form, a pilot's pooled paired std by hand, the CLI."""

import math

import pandas as pd
import pytest

from tis_ray.planning import pooled_paired_std, seed_plan
from tis_ray.spec import load_spec
from tis_ray.statistics import seeds_needed


def pilot(setting="kmeans(n_clusters=8)"):
    # two cells of one comparison: n 3 with std 1, n 2 with std 2.1213 (variance 4.5)
    return pd.DataFrame([
        {"setting": setting, "budget": 10.0, "metric": "mnli_m/acc", "n": 3, "std": 1.0},
        {"setting": setting, "budget": 50.0, "metric": "mnli_m/acc", "n": 2, "std": math.sqrt(4.5)},
        {"setting": setting, "budget": 90.0, "metric": "mnli_m/acc", "n": 1, "std": float("nan")},
    ])


def test_pooled_paired_std_by_hand():
    pooled = pooled_paired_std(pilot())
    # (2 x 1 + 1 x 4.5) / 3 degrees of freedom; the one-pair cell has none
    assert pooled[("kmeans(n_clusters=8)", "mnli_m/acc")] == pytest.approx(math.sqrt(6.5 / 3))


def test_plan_from_defaults_and_from_a_pilot():
    spec = load_spec("experiments/demo.yaml")
    plan = seed_plan(spec, mnli_difference=1.0, hans_difference=5.0)
    assert set(plan["comparison"]) == {"kmeans(n_clusters=8) vs random", "cartography vs random"}
    lo = plan[plan["metric"] == "hans/lexical_overlap/non_entailed"].iloc[0]
    assert lo["paired_std"] == pytest.approx(math.sqrt(2) * 12.36) and lo["std_from"] == "default"
    assert lo["seeds_needed"] == seeds_needed(5.0, math.sqrt(2) * 12.36) and lo["seeds_in_spec"] == 2
    with_pilot = seed_plan(spec, pilot=pilot()).set_index(["comparison", "metric"])
    own = with_pilot.loc[("kmeans(n_clusters=8) vs random", "mnli_m/acc")]
    assert own["std_from"] == "pilot (this comparison)" and own["paired_std"] == pytest.approx(math.sqrt(6.5 / 3))
    assert own["seeds_needed"] == seeds_needed(1.0, math.sqrt(6.5 / 3))
    other = with_pilot.loc[("cartography vs random", "mnli_m/acc")]  # not in the pilot: its other comparisons
    assert other["std_from"] == "pilot (all comparisons)" and other["paired_std"] == pytest.approx(own["paired_std"])
    hans = with_pilot.loc[("cartography vs random", "hans/acc")]  # the pilot has no HANS: the default
    assert hans["std_from"] == "default"


def test_plan_command_prints_the_table(capsys):
    from tis_ray.cli import main

    assert main(["plan", "experiments/demo.yaml", "--difference", "2"]) == 0
    out = capsys.readouterr().out
    assert "most demanding: hans/lexical_overlap/non_entailed" in out
    assert f"|         2.00 |         0.34 | default    |              {seeds_needed(2.0, math.sqrt(2) * 0.24)} |" in out


def test_notebook_plan_is_the_command_s_table():
    import tis_ray

    spec = load_spec("experiments/demo.yaml")
    pd.testing.assert_frame_equal(tis_ray.plan(spec, difference=2.0), seed_plan(spec, mnli_difference=2.0))
