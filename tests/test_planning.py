"""Seed planning: the defaults' closed form, a pilot's pooled paired std per budget by hand, the Holm family, the
CLI."""

import math

import pandas as pd
import pytest

from tis_ray.planning import holm_family_size, pooled_paired_std, seed_plan
from tis_ray.spec import load_spec
from tis_ray.statistics import minimum_detectable_difference, paired_t_power, seeds_needed


def pilot(setting="kmeans(n_clusters=8)"):
    # two cells of one comparison: n 3 with std 1, n 2 with std 2.1213 (variance 4.5)
    return pd.DataFrame([
        {"setting": setting, "budget": 10.0, "metric": "mnli_m/acc", "n": 3, "std": 1.0},
        {"setting": setting, "budget": 50.0, "metric": "mnli_m/acc", "n": 2, "std": math.sqrt(4.5)},
        {"setting": setting, "budget": 90.0, "metric": "mnli_m/acc", "n": 1, "std": float("nan")},
    ])


def test_pooled_paired_std_by_hand():
    over_budgets = pooled_paired_std(pilot(), ("setting", "metric"))
    # (2 x 1 + 1 x 4.5) / 3 degrees of freedom; the one-pair cell has none
    assert over_budgets[("kmeans(n_clusters=8)", "mnli_m/acc")] == pytest.approx(math.sqrt(6.5 / 3))
    per_budget = pooled_paired_std(pd.concat([pilot(), pilot("cartography")]))
    assert per_budget[("kmeans(n_clusters=8)", "mnli_m/acc", 50.0)] == pytest.approx(math.sqrt(4.5))
    across = pooled_paired_std(pd.concat([pilot(), pilot("cartography").assign(std=[3.0, 1.0, float("nan")])]),
                               ("metric", "budget"))
    assert across[("mnli_m/acc", 10.0)] == pytest.approx(math.sqrt((2 * 1 + 2 * 9) / 4))
    identical = pooled_paired_std(pd.concat([pilot(), pilot("cartography").assign(std=0.0)]), ("metric", "budget"))
    assert identical[("mnli_m/acc", 10.0)] == pytest.approx(1.0)  # identical arms (std 0) are not pooled


def test_holm_family_is_the_report_s():
    spec = load_spec("experiments/demo.yaml")  # 2 samplers vs random, budgets 10%, 30% (100% untested), 6 metrics
    assert holm_family_size(spec, 6) == 24
    per_sampler = spec.model_copy(update={"report": spec.report.model_copy(update={"holm": "sampler"})})
    assert holm_family_size(per_sampler, 6) == 2


def test_plan_from_defaults_and_from_a_pilot():
    spec = load_spec("experiments/demo.yaml")
    plan = seed_plan(spec, mnli_difference=1.0, hans_difference=5.0)
    assert set(plan["comparison"]) == {"kmeans(n_clusters=8) vs random", "cartography vs random"}
    assert set(plan["budget"]) == {10.0, 30.0} and len(plan) == 2 * 2 * 6
    assert (plan["family"] == 24).all() and plan["alpha_per_test"].iloc[0] == pytest.approx(0.05 / 24)
    lo = plan[plan["metric"] == "hans/lexical_overlap/non_entailed"].iloc[0]
    assert lo["paired_std"] == pytest.approx(math.sqrt(2) * 12.36)
    assert lo["std_from"] == "full-data BERT-base (McCoy et al. 2020)"
    assert lo["seeds_needed"] == seeds_needed(5.0, math.sqrt(2) * 12.36, alpha=0.05 / 24) == 193
    assert lo["seeds_in_spec"] == 2
    mnli = plan[plan["metric"] == "mnli_m/acc"].iloc[0]
    assert mnli["mde_with_spec_seeds"] == pytest.approx(minimum_detectable_difference(mnli["paired_std"], 2, 0.05 / 24))
    assert mnli["power_with_spec_seeds"] == pytest.approx(paired_t_power(1.0 / mnli["paired_std"], 2, 0.05 / 24))
    with_pilot = seed_plan(spec, pilot=pilot()).set_index(["comparison", "metric", "budget"])
    own = with_pilot.loc[("kmeans(n_clusters=8) vs random", "mnli_m/acc", 10.0)]  # the pilot's cell at 10%: std 1
    assert own["std_from"] == "pilot (this comparison, this budget)" and own["paired_std"] == pytest.approx(1.0)
    assert own["seeds_needed"] == seeds_needed(1.0, 1.0, alpha=0.05 / 24)
    other = with_pilot.loc[("cartography vs random", "mnli_m/acc", 10.0)]  # not in the pilot: its other comparisons
    assert other["std_from"] == "pilot (all comparisons, this budget)" and other["paired_std"] == pytest.approx(1.0)
    at30 = with_pilot.loc[("kmeans(n_clusters=8) vs random", "mnli_m/acc", 30.0)]  # no pilot cell at 30%
    assert at30["std_from"] == "pilot (this comparison, pooled over budgets)"
    assert at30["paired_std"] == pytest.approx(math.sqrt(6.5 / 3))
    hans = with_pilot.loc[("cartography vs random", "hans/acc", 10.0)]  # the pilot has no HANS: the default
    assert hans["std_from"] == "full-data BERT-base (McCoy et al. 2020)"


def test_plan_command_prints_the_table(capsys):
    from tis_ray.cli import main

    assert main(["plan", "experiments/demo.yaml", "--difference", "2"]) == 0
    out = capsys.readouterr().out
    assert "a family of 24 comparisons" in out and "alpha / 24 = 0.00208" in out
    assert "most demanding: hans/lexical_overlap/non_entailed" in out and "needs 193 seeds" in out
    needed = seeds_needed(2.0, math.sqrt(2) * 0.24, alpha=0.05 / 24)
    assert f"|         2.00 |         0.34 | full-data BERT-base (McCoy et al. 2020) |       24 |          0.00208 " \
           f"|              {needed} |" in out


def test_notebook_plan_is_the_command_s_table():
    import tis_ray

    spec = load_spec("experiments/demo.yaml")
    pd.testing.assert_frame_equal(tis_ray.plan(spec, difference=2.0), seed_plan(spec, mnli_difference=2.0))
