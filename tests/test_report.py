"""Reports from a fixed synthetic results table whose means, stds and paired differences are worked by hand."""

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from tis_ray.report import build_report, final_rows, mean_std_table, paired_vs_random

HANS = {f"hans/{h}/{k}": 0.5 for h in ("lexical_overlap", "subsequence", "constituent")
        for k in ("entailed", "non_entailed")}


def row(trial_id, sampler, seed, pct, acc, epoch=1, status="completed"):
    return {"trial_id": trial_id, "status": status, "setting": sampler, "sampler": sampler.split("(")[0],
            "overrides": "{}", "seed": seed, "data_pct": pct, "n_examples": None, "epoch": epoch,
            "mnli_m/acc": acc, "mnli_mm/acc": acc - 0.01, "error": None, **HANS}


@pytest.fixture
def table():
    rows, i = [], 0
    # random at 10%: 0.60, 0.62, 0.64 (seeds 1, 2, 3); kmeans: 0.63, 0.66, 0.69 -> paired diffs 3, 4, 5 points
    for sampler, accs in (("random", (0.60, 0.62, 0.64)), ("kmeans(n_clusters=4)", (0.63, 0.66, 0.69))):
        for seed, acc in zip((1, 2, 3), accs, strict=True):
            rows.append(row(f"t{i}", sampler, seed, 0.1, acc - 0.1, epoch=1))
            rows.append(row(f"t{i}", sampler, seed, 0.1, acc, epoch=2))
            i += 1
    # at 50% kmeans has only two seeds, the third failed: 0.80 / 0.82 vs random 0.81 / 0.80
    for sampler, accs in (("random", (0.81, 0.80, 0.79)), ("kmeans(n_clusters=4)", (0.80, 0.82))):
        for seed, acc in zip((1, 2, 3), accs, strict=False):
            rows.append(row(f"t{i}", sampler, seed, 0.5, acc, epoch=2))
            i += 1
    rows.append(row(f"t{i}", "kmeans(n_clusters=4)", 3, 0.5, np.nan, status="failed"))
    return pd.DataFrame(rows)


def test_mean_std_and_seed_counts_by_hand(table):
    done = final_rows(table)
    done = done[done["status"] == "completed"]
    stats = mean_std_table(done, n_seeds_expected=3)
    random10 = stats.loc[("random", 10.0)]
    assert random10[("MNLI-m", "mean")] == pytest.approx(0.62)
    assert random10[("MNLI-m", "std")] == pytest.approx(0.02)  # sample std of 0.60, 0.62, 0.64
    kmeans50 = stats.loc[("kmeans(n_clusters=4)", 50.0)]
    assert kmeans50[("MNLI-m", "mean")] == pytest.approx(0.81) and kmeans50[("seeds", "n")] == 2


def test_paired_difference_to_random_by_hand(table):
    from scipy import stats

    from tis_ray.statistics import minimum_detectable_difference

    done = final_rows(table)
    done = done[done["status"] == "completed"]
    paired = paired_vs_random(done, metrics=["mnli_m/acc"], holm_family="sampler").set_index("budget")
    at10 = paired.loc[10.0]  # diffs 3, 4, 5 points: mean 4, std 1, t = 4 / (1 / sqrt 3)
    assert (at10["n"], at10["mean"], at10["std"]) == (3, pytest.approx(4.0), pytest.approx(1.0))
    assert at10["t"] == pytest.approx(4 * np.sqrt(3))
    p10 = 2 * stats.t.sf(4 * np.sqrt(3), df=2)  # 0.0202
    assert at10["p"] == pytest.approx(p10)
    half = stats.t.ppf(0.975, 2) / np.sqrt(3)  # 4.303 / sqrt 3 = 2.484
    assert (at10["ci_low"], at10["ci_high"]) == (pytest.approx(4 - half), pytest.approx(4 + half))
    # the sampler's family: its 2 tested budgets; the Bonferroni interval and the mde at alpha / 2
    assert at10["family"] == 2
    wide = stats.t.ppf(1 - 0.05 / 4, 2) / np.sqrt(3)
    assert (at10["ci_low_bonferroni"], at10["ci_high_bonferroni"]) == (pytest.approx(4 - wide), pytest.approx(4 + wide))
    assert at10["mde"] == pytest.approx(minimum_detectable_difference(1.0, 3, alpha=0.025))
    at50 = paired.loc[50.0]  # diffs -1 and +2 points: mean 0.5, std 2.1213, t = 0.5 / 1.5 = 0.3333
    p50 = 2 * stats.t.sf(1 / 3, df=1)  # 0.795
    assert (at50["n"], at50["mean"], at50["p"]) == (2, pytest.approx(0.5), pytest.approx(p50))
    # Holm over the sampler's 2 budgets: the smaller p doubled (0.0404), the larger kept but never below it
    assert at10["p_holm"] == pytest.approx(2 * p10) and at50["p_holm"] == pytest.approx(p50)
    assert at10["verdict"] == "better" and at50["verdict"] == "inconclusive"
    # over the whole table (MNLI-m and MNLI-mm, whose diffs are the same): 4 tests, 10% needs p < 0.0125
    table_wide = paired_vs_random(done, metrics=["mnli_m/acc", "mnli_mm/acc"])
    assert len(table_wide) == 4 and set(table_wide["verdict"]) == {"inconclusive"}
    # sorted p10, p10, p50, p50 -> 4 p10, max(4 p10, 3 p10), min(1, 2 p50) = 1, max(1, p50)
    np.testing.assert_allclose(sorted(table_wide["p_holm"]), [4 * p10, 4 * p10, 1.0, 1.0])
    # HANS is compared too; its columns here are flat 0.5 for every trial: no spread, no test
    hans = paired_vs_random(done).query("metric == 'hans/lexical_overlap/non_entailed'")
    assert len(hans) == 2 and hans["p"].isna().all() and (hans["mean"] == 0).all()
    assert set(hans["verdict"]) == {"identical"}  # equal per-seed values: the same subset, not 'inconclusive'
    assert set(table_wide["family"]) == {4}


def test_a_small_significant_difference_inside_the_margin_reads_both():
    rows = []
    for seed, base in enumerate((0.700, 0.710, 0.705, 0.695, 0.702, 0.708), start=1):
        rows.append(row(f"r{seed}", "random", seed, 0.1, base))
        rows.append(row(f"k{seed}", "kmeans(n_clusters=4)", seed, 0.1, base + 0.005 + 0.001 * (seed % 2)))
    done = final_rows(pd.DataFrame(rows))
    paired = paired_vs_random(done, metrics=["mnli_m/acc"]).iloc[0]  # +0.5 / +0.6 points, margin 1
    assert paired["p_holm"] < 0.05 and paired["p_equivalence_holm"] < 0.05
    assert paired["verdict"] == "better, within ±1 (equivalent)"


def test_budget_free_settings_appear_in_every_table(tmp_path):
    rows = [{**row(f"c{seed}", "kmeans(clusters_to_take=2, mode=num_clusters)", seed, None, acc), "n_train": n}
            for seed, acc, n in ((1, 0.7, 410), (2, 0.72, 388))]
    source = tmp_path / "results.parquet"
    pd.DataFrame(rows).to_parquet(source)
    text = build_report(source, tmp_path / "report").read_text()
    assert "| kmeans(clusters_to_take=2, mode=num_clusters) | own size | 71.00 ± 1.41 |" in text
    assert "| 388–410 " in text  # n_train per seed differs: the table says so


def test_report_files_figures_and_partial_sweep(table, tmp_path):
    source = tmp_path / "results.parquet"
    table.to_parquet(source)
    index = build_report(source, tmp_path / "report")
    text = index.read_text()
    # 6 trials at 10% (two epoch rows each) + 5 at 50% completed, 1 failed: counted per trial, not per row
    assert "11 of 12 trials completed; 1 failed or unfinished" in text
    assert "2/3 (missing)" in text  # the kmeans 50% cell says it averages fewer seeds
    assert "| kmeans(n_clusters=4) |    10.00 | 66.00 ± 3.00 | 65.00 ± 3.00 |" in text  # 0.63 / 0.66 / 0.69
    assert "| setting              |   data % |" in text
    assert "Failed or unfinished trials" in text and "| t11 " in text
    for name in ("mnli_accuracy", "hans_entailed", "hans_non_entailed", "sampler_vs_random", "accuracy_vs_epoch"):
        path = tmp_path / "report" / "figures" / f"{name}.png"
        assert f"figures/{name}.png" in text
        image = np.asarray(Image.open(path).convert("L"))
        assert image.shape[0] > 300 and image.std() > 10  # drawn, not blank
    assert "| kmeans(n_clusters=4) |    10.00 | +4.00 (inconclusive) |" in text  # 4 points, Holm over the table
    for name in ("mean_std", "paired_vs_random", "verdicts", "epochs", "seed_1", "seed_2", "seed_3"):
        assert (tmp_path / "report" / "tables" / f"{name}.md").is_file()
        assert (tmp_path / "report" / "tables" / f"{name}.csv").is_file()


def test_data_maps_of_the_reference_run_and_of_each_dynamics_subset(tmp_path):
    import json

    from tis_ray.dynamics import Dynamics, save_dynamics
    from tis_ray.report import data_map_regions

    rng = np.random.default_rng(0)
    probs = rng.dirichlet([1.0, 1.0, 1.0], size=(3, 300)).astype(np.float32)
    labels = rng.integers(0, 3, 300)
    dynamics = Dynamics(probs, rng.random((3, 300)).astype(np.float32), labels)
    save_dynamics(dynamics, tmp_path / "prepared" / "dynamics", fingerprint="f", model="m", seed=0, seconds=0.0)
    subset = np.sort(np.argsort(-dynamics.variability())[:60])  # the 60 most variable: all ambiguous
    point = {"seed": 1, "data_pct": 0.2, "n_examples": None, "sampler": {"type": "cartography"}, "overrides": {}}
    trial = tmp_path / "t_00000"
    trial.mkdir()
    (trial / "params.json").write_text(json.dumps({"point": point}))
    (trial / "result.json").write_text(json.dumps({"epoch": 1, "final": 1, "mnli_m/acc": 0.5, "n_train": 60,
                                                   **HANS}) + "\n")
    np.save(trial / "subset_indices.npy", subset, allow_pickle=False)
    text = build_report(tmp_path, tmp_path / "report").read_text()
    assert "## Data map of the reference run" in text
    regions = data_map_regions(dynamics)
    assert [int(m.sum()) for m in regions.values()] == [100, 100, 100]  # a third of 300 each
    assert int(regions["ambiguous"][subset].sum()) == 60
    expected_row = (f"| cartography |      1 |  60 |          60 |     {int(regions['hard'][subset].sum()):2d} |"
                    f"     {int(regions['easy'][subset].sum()):2d} |")
    assert expected_row in text, text
    for name in ("data_map", "data_map_cartography"):
        image = np.asarray(Image.open(tmp_path / "report" / "figures" / f"{name}.png").convert("L"))
        assert image.shape[0] > 300 and image.std() > 10  # drawn, not blank


def test_the_baseline_is_a_setting_and_ambiguity_is_one_line(table):
    from tis_ray.errors import TisRayError
    from tis_ray.report import baseline_sampler

    done = final_rows(table)
    done = done[done["status"] == "completed"].copy()
    done["sampler_params"] = "{}"
    plain = done[done["sampler"] == "random"]
    nested = plain.assign(sampler_params='{"nested": true}', setting="random(nested=True)",
                          trial_id=plain["trial_id"] + "n")
    both = pd.concat([done, nested])
    # an exact setting wins: the plain arm is the baseline, the nested one is compared with it (same numbers)
    assert baseline_sampler(both) == "random"
    paired = paired_vs_random(both, metrics=["mnli_m/acc"])
    assert set(paired["setting"]) == {"kmeans(n_clusters=4)", "random(nested=True)"}
    assert (paired[paired["setting"] == "random(nested=True)"]["mean"] == 0).all()
    # two random settings and none plain: the type alone does not say which
    unnested = plain.assign(sampler_params='{"nested": false}', setting="random(nested=False)")
    two = pd.concat([done[done["sampler"] != "random"], nested, unnested])
    with pytest.raises(TisRayError, match=r"report baseline 'random' matches 2 samplers \(random\(nested=False\), "
                                          r"random\(nested=True\)\): name one"):
        paired_vs_random(two)
    assert set(paired_vs_random(two, baseline="random(nested=True)")["setting"]) == {"kmeans(n_clusters=4)",
                                                                                      "random(nested=False)"}
    only_nested = pd.concat([done[done["sampler"] != "random"], nested])
    assert baseline_sampler(only_nested) == "random(nested=True)"  # one random setting: the type names it


def test_a_baseline_that_names_no_sampler_is_refused_with_the_closest():
    from tis_ray.errors import TisRayError
    from tis_ray.report import check_baseline

    settings = ["random", "random(nested=True)", "kmeans(n_clusters=8)"]
    for named in ("random", "random(nested=True)", "kmeans", "kmeans(n_clusters=8)"):
        check_baseline(settings, named)
    with pytest.raises(TisRayError, match=r"report baseline 'kmenas' is not a sampler of these results; they have "
                                          r"kmeans\(n_clusters=8\), random, random\(nested=True\); did you mean "
                                          r"'kmeans'\?"):
        check_baseline(settings, "kmenas")
    with pytest.raises(TisRayError, match=r"they have random$"):  # nothing close: no guess
        check_baseline(["random"], "zzz")
