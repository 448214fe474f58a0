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
    done = final_rows(table)
    paired = paired_vs_random(done[done["status"] == "completed"]).set_index("budget")
    at10 = paired.loc[10.0]
    assert (at10["n"], at10["mean"], at10["std"]) == (3, pytest.approx(4.0), pytest.approx(1.0))
    assert at10["verdict"] == "above random"  # 4 > 2 * 1 / sqrt(3)
    at50 = paired.loc[50.0]  # diffs: -1 and +2 points
    assert (at50["n"], at50["mean"]) == (2, pytest.approx(0.5)) and at50["verdict"] == "within seed noise"


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
    for name in ("mean_std", "paired_vs_random", "epochs", "seed_1", "seed_2", "seed_3"):
        assert (tmp_path / "report" / "tables" / f"{name}.md").is_file()
        assert (tmp_path / "report" / "tables" / f"{name}.csv").is_file()
