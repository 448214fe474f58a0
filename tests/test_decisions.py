"""One sweep, shared by every test here, that exercises the report's deciding parts end to end: verdicts for
MNLI and HANS, learning curves, selection cost, HANS composition of subsets, stability under other seeds,
class-balanced scores, and seed planning from the run as a pilot."""

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import small_spec_dict

from tis_ray.cli import main
from tis_ray.data.synthetic import counter_example_rows

pytestmark = pytest.mark.slow

COUNTER = 60  # planted high-overlap non-entailed training pairs


@pytest.fixture(scope="module")
def decided(tmp_path_factory):
    import ray

    tmp = tmp_path_factory.mktemp("decisions")
    raw = small_spec_dict(
        name="d", storage_path=str(tmp / "runs"), train={"epochs": 2},
        data={"synthetic": {"n_train": 1200, "n_eval": 300, "hans_per_cell": 30, "counter_examples": COUNTER}},
        dynamics={"seeds": [1, 2]}, clustering={"stability_seeds": [5]},
        grid={"seeds": [1, 2], "data_pct": [0.1, 0.25, 0.5],
              "samplers": [{"type": "random"}, {"type": "loss", "balance": "class"},
                           {"type": "kmeans", "n_clusters": 4}]})
    spec = tmp / "d.yaml"
    spec.write_text(yaml.safe_dump(raw))
    try:
        assert main(["sweep", str(spec), "--num-cpus", "2"]) == 0
    finally:
        ray.shutdown()
    run_dir = tmp / "runs" / "d"
    assert main(["report", str(run_dir)]) == 0
    return spec, run_dir, (run_dir / "report" / "index.md").read_text()


def test_every_trial_records_the_hans_composition_of_its_subset(decided):
    _, run_dir, _ = decided
    table = pd.read_parquet(run_dir / "results.parquet")
    assert len(table) == 18 and set(table["status"]) == {"completed"}
    planted = set(counter_example_rows(1200, COUNTER, 0).tolist())
    for trial in table["trial_id"]:
        indices = np.load(run_dir / trial / "subset_indices.npy", allow_pickle=False)
        record = json.loads((run_dir / trial / "subset.json").read_text())
        expected = len(planted & set(indices.tolist()))  # the synthetic corpus has no others
        assert record["hans_composition"]["high_overlap_non_entailed"] == expected
        assert table.set_index("trial_id").loc[trial, "subset/high_overlap_non_entailed"] == expected
        assert record["hans_composition"]["lexical_overlap"]["entailment"] == 1.0  # built from premise words
        assert record["hans_composition"]["rule"] == "mccoy2019-whitespace"  # tis_ray.overlap.OVERLAP_RULE
    assert set(table["schedule"]) == {"epochs"} and (table["n_train_full"] == 1200).all()


def test_class_balanced_scores_take_the_label_shares_of_the_training_set(decided):
    _, run_dir, _ = decided
    table = pd.read_parquet(run_dir / "results.parquet")
    labels = np.load(run_dir / "prepared" / "dynamics" / "labels.npy")  # model ids in MNLI order here
    shares = np.bincount(labels, minlength=3) / len(labels)
    for trial in table.loc[table["setting"] == "loss(balance=class)", "trial_id"]:
        record = json.loads((run_dir / trial / "subset.json").read_text())
        counts = np.array([record["label_counts"].get(str(k), 0) for k in range(3)])
        assert np.abs(counts - shares * counts.sum()).max() < 1  # largest remainder: within one of the share


def test_report_verdicts_cover_mnli_and_hans_with_holm_over_the_table(decided):
    _, run_dir, text = decided
    paired = pd.read_csv(run_dir / "report" / "tables" / "paired_vs_random.csv")
    assert set(paired["metric"]) == {"mnli_m/acc", "mnli_mm/acc", "hans/acc", "hans/lexical_overlap/non_entailed",
                                     "hans/subsequence/non_entailed", "hans/constituent/non_entailed"}
    assert len(paired) == 2 * 3 * 6  # 2 samplers x 3 budgets x 6 metrics
    tested = paired["p"].notna()
    ordered = paired.loc[tested].sort_values("p")
    m = int(tested.sum())  # Holm over every tested comparison of the table: the smallest p times m
    assert ordered["p_holm"].iloc[0] == pytest.approx(min(1.0, m * ordered["p"].iloc[0]))
    assert set(paired["verdict"]) <= {"better", "worse", "inconclusive", "equivalent within ±1",
                                      "equivalent within ±5", "one seed", "identical",
                                      *(f"{d}, within ±{m} (equivalent)" for d in ("better", "worse") for m in (1, 5))}
    assert paired["family"].max() == m  # the Bonferroni intervals and the mde are at alpha / m
    assert (paired["ci_high_bonferroni"] - paired["ci_low_bonferroni"] >= paired["ci_high"] - paired["ci_low"])[
        tested].all()
    assert "## Sampler − baseline at the same budget and seed (points)" in text and "mde" in text
    assert "Schedule: epochs." in text


def test_report_learning_curves_cost_composition_and_stability(decided):
    _, run_dir, text = decided
    tables = run_dir / "report" / "tables"
    curves = pd.read_csv(tables / "learning_curves.csv").set_index("setting")
    assert curves.loc["random", "budgets"] == 3 and 0 < curves.loc["random", "a"] <= 1
    assert curves.loc["random", "notes"].startswith("exact: 3 budgets")  # the fit passes through the means
    assert "**Read with care**: random's curve is exact" in text or "data_savings" not in text
    assert "## Learning curves and data savings (MNLI-m)" in text and "figures/learning_curves.png" in text
    # selection cost: the dynamics sampler pays both reference runs (seeds 1 and 2), KMeans the run, embeddings
    # and clustering, its stability refit apart
    cost = pd.read_csv(tables / "selection_cost.csv").set_index("setting")
    prepared = run_dir / "prepared"
    seconds = {str(p.parent.relative_to(prepared)): json.loads(p.read_text()).get("seconds")
               for p in prepared.rglob("step.json")}
    assert cost.loc["random", "selection_s"] == 0 and cost.loc["random", "steps"] == "none"
    assert cost.loc["loss(balance=class)", "steps"] == "reference_model, dynamics/seeds/2"
    assert cost.loc["loss(balance=class)", "selection_s"] == pytest.approx(
        seconds["reference_model"] + seconds["dynamics/seeds/2"])
    clusters = cost.loc["kmeans(n_clusters=4)", "steps"].split(", ")[-1]
    assert cost.loc["kmeans(n_clusters=4)", "steps"] == f"reference_model, embeddings, {clusters}"
    refit = json.loads((prepared / clusters / "meta.json").read_text())["stability"]["seconds"]
    assert 0 < refit < seconds[clusters]
    assert cost.loc["kmeans(n_clusters=4)", "selection_s"] == pytest.approx(
        seconds["reference_model"] + seconds["embeddings"] + seconds[clusters] - refit)
    assert pd.read_csv(tables / "stability_cost.csv")["seconds"].tolist() == pytest.approx([refit])
    assert cost["timed"].all() and cost["cost_not_recorded"].isna().all()  # '' reads back as NaN
    assert "figures/accuracy_vs_compute.png" in text
    # what each subset holds for HANS
    assert "## What each subset holds for HANS" in text and "figures/hans_vs_composition.png" in text
    # stability: two reference seeds, and KMeans refitted under seed 5
    ranks = pd.read_csv(tables / "rank_stability.csv").set_index("score")
    assert (ranks["seeds"] == 2).all() and -1 <= ranks.loc["confidence", "spearman_mean"] <= 1
    overlap = pd.read_csv(tables / "subset_stability.csv")
    assert overlap["setting"].tolist() == ["loss(balance=class)"] and 0 <= overlap["jaccard_min"].iloc[0] <= 1
    clusters = pd.read_csv(tables / "cluster_stability.csv")
    assert len(clusters) == 1 and clusters["seeds"].iloc[0] == 1 and -1 <= clusters["ari_mean"].iloc[0] <= 1
    assert (run_dir / "prepared" / "dynamics" / "seeds" / "2" / "probs.npy").is_file()


def test_averaged_dynamics_are_the_mean_of_the_two_runs(decided):
    from tis_ray.dynamics import DynamicsEnsemble, load_dynamics

    _, run_dir, _ = decided
    both = load_dynamics(run_dir / "prepared" / "dynamics")
    assert isinstance(both, DynamicsEnsemble) and both.seeds == (1, 2)
    first, second = both.members
    np.testing.assert_allclose(both.mean_loss(), (first.mean_loss() + second.mean_loss()) / 2, rtol=1e-6)
    assert not np.allclose(first.mean_loss(), second.mean_loss())  # two seeds, two runs


def test_plan_with_the_run_as_pilot(decided, capsys):
    from tis_ray.planning import pilot_paired_table, pooled_paired_std
    from tis_ray.statistics import seeds_needed

    spec, run_dir, _ = decided
    assert main(["plan", str(spec), "--pilot", str(run_dir)]) == 0
    out = capsys.readouterr().out
    paired = pilot_paired_table(str(run_dir), "random")
    m = len(paired)  # the plan's family: 2 samplers x 3 budgets x 6 metrics (the report's when all are tested)
    assert f"a family of {m} comparisons" in out and m == 36
    stds = pooled_paired_std(paired).loc[("kmeans(n_clusters=4)", "mnli_m/acc")]  # per budget, where arms differ
    lines = [[cell.strip() for cell in line.split("|")[1:-1]] for line in out.splitlines() if line.startswith("| ")]
    header, rows = lines[0], [dict(zip(lines[0], cells, strict=True)) for cells in lines[2:]]
    assert "std_from" in header
    for budget in (10.0, 25.0, 50.0):
        row = next(r for r in rows if r["comparison"] == "kmeans(n_clusters=4) vs random"
                   and r["metric"] == "mnli_m/acc" and r["budget"] == f"{budget:.2f}")
        if budget in stds.index:  # that budget's own spread
            assert row["std_from"] == "pilot (this comparison, this budget)"
            assert int(row["seeds_needed"]) == seeds_needed(1.0, stds[budget], alpha=0.05 / m)
        else:  # tiny-albert can give identical arms at a budget: no spread there, a wider pool instead
            assert row["std_from"] != "pilot (this comparison, this budget)"
    assert len(stds) and (stds > 0).all()
