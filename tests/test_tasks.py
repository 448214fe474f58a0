"""Tasks of one's own, end to end on the synthetic task files (`tis-ray demo-task`): a 2-label single-sentence
task read as a hub dataset (a local folder load_dataset opens), a 4-label pair task from JSONL files, and the
NLI demo with two named out-of-distribution sets, one grouped by a column. One Ray session runs the three
sweeps; every test here reads them."""

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from tis_ray.cli import main
from tis_ray.data.synthetic_tasks import FOUR_WAY_LABELS, SENTENCE_LABELS, write_demo_task

pytestmark = pytest.mark.slow

EXPERIMENTS = Path(__file__).parents[1] / "experiments"
SPECS = ("own_task_demo", "four_way_demo", "nli_ood_demo")


@pytest.fixture(scope="module")
def tasks(tmp_path_factory):
    """{spec name: run directory} of the three shipped task specs, run at test size from a folder holding the
    demo task files."""
    import ray

    tmp = tmp_path_factory.mktemp("tasks")
    write_demo_task(tmp / "demo-task", n_train=400, n_eval=120)
    runs = {}
    (tmp / "experiments").mkdir()
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp)
        try:
            for name in SPECS:
                raw = yaml.safe_load((EXPERIMENTS / f"{name}.yaml").read_text())
                raw["storage_path"] = str(tmp / "runs")
                spec = tmp / "experiments" / f"{name}.yaml"  # the specs' paths (../demo-task/...) follow the file
                spec.write_text(yaml.safe_dump(raw))
                assert main(["sweep", str(spec), "--num-cpus", "2"]) == 0, name
                runs[name] = tmp / "runs" / raw["name"]
                assert main(["report", str(runs[name])]) == 0, name
        finally:
            ray.shutdown()
    return tmp, runs


def results(run_dir: Path) -> pd.DataFrame:
    table = pd.read_parquet(run_dir / "results.parquet")
    assert set(table["status"]) == {"completed"}, table[["trial_id", "status", "error"]]
    return table


def outcomes(run_dir: Path, trial: str, eval_set: str) -> np.ndarray:
    return np.load(run_dir / trial / "outcomes" / f"{eval_set}.npy", allow_pickle=False).astype(np.float64)


def test_single_sentence_task_trains_a_two_label_head_and_scores_each_group(tasks):
    tmp, runs = tasks
    run_dir = runs["own_task_demo"]
    table = results(run_dir)
    assert len(table) == 8 and set(table["sampler"]) == {"random", "kmeans"}
    # the test split, independently: its gold labels from the CSV, each trial's correctness from its outcomes
    gold = pd.read_csv(tmp / "demo-task" / "sentences" / "test.csv")["label"].to_numpy()
    for row in table.to_dict("records"):
        correct = outcomes(run_dir, row["trial_id"], "test")[:, 1]
        assert row["test/acc"] == pytest.approx(correct.mean(), abs=1e-6)
        for label in SENTENCE_LABELS:
            assert row[f"test/{label}"] == pytest.approx(correct[gold == label].mean(), abs=1e-6)
        subset = json.loads((run_dir / row["trial_id"] / "subset.json").read_text())
        assert set(subset["label_counts"]) <= {"0", "1"}
    # negation words decide the label: all of the data learns it, out of domain too
    full = table[table["data_pct"] == 1.0]
    assert full["test/acc"].min() > 0.9 and full["animals/acc"].min() > 0.8
    data = json.loads(next((run_dir / "prepared" / "data").glob("*/data.json")).read_text())
    assert data["task"] == {"labels": list(SENTENCE_LABELS), "text_columns": ["text"], "nli": False}
    assert data["train_overlap"] is None  # the HANS-composition statistics are NLI's only


def test_four_label_pair_task_with_dynamics_samplers(tasks):
    _, runs = tasks
    run_dir = runs["four_way_demo"]
    table = results(run_dir)
    assert len(table) == 12 and set(table["sampler"]) == {"random", "el2n", "forgetting"}
    dynamics = np.load(run_dir / "prepared" / "dynamics" / "probs.npy", allow_pickle=False)
    assert dynamics.shape[-1] == len(FOUR_WAY_LABELS)  # the reference run's softmax over the 4 labels
    np.testing.assert_allclose(dynamics.sum(axis=-1), 1.0, atol=1e-3)
    for row in table.to_dict("records"):
        subset = json.loads((run_dir / row["trial_id"] / "subset.json").read_text())
        assert {int(k) for k in subset["label_counts"]} <= set(range(4))
        correct = outcomes(run_dir, row["trial_id"], "dev")[:, 1]
        assert row["dev/acc"] == pytest.approx(correct.mean(), abs=1e-6)
    assert "dev/unrelated" in table
    assert table.loc[table["data_pct"] == 1.0, "dev/acc"].mean() > 0.35  # well above the 4-way chance of 0.25
    report = (run_dir / "report" / "index.md").read_text()
    assert "dev/acc" in report and "figures/accuracy.png" in report and "figures/dev_groups.png" in report
    assert "hans_entailed.png" not in report and "HANS columns" not in report  # no HANS set here


def test_nli_with_named_out_of_distribution_sets_maps_two_way_labels_and_groups(tasks):
    tmp, runs = tasks
    run_dir = runs["nli_ood_demo"]
    table = results(run_dir)
    styled = pd.read_csv(tmp / "demo-task" / "hans_style.tsv", sep="\t")
    for fields in table.to_dict("records"):
        correct = outcomes(run_dir, fields["trial_id"], "hans_style")[:, 1]
        assert fields["hans_style/acc"] == pytest.approx(correct.mean(), abs=1e-6)
        for (heuristic, gold), rows in styled.groupby(["heuristic", "gold_label"]).groups.items():
            assert fields[f"hans_style/{heuristic}/{gold}"] == pytest.approx(correct[rows].mean(), abs=1e-6)
        for heuristic, rows in styled.groupby("heuristic").groups.items():
            assert fields[f"hans_style/{heuristic}"] == pytest.approx(correct[rows].mean(), abs=1e-6)
        assert 0 <= fields["animals/acc"] <= 1 and "hans/lexical_overlap/non_entailed" in fields
        assert (run_dir / fields["trial_id"] / "hans_predictions.txt").is_file()  # the built-in HANS, as ever
    # the margins of the 2-way set: positive exactly where the prediction falls in the gold label's mapping
    trial = table["trial_id"].iloc[0]
    margins = outcomes(run_dir, trial, "hans_style")
    assert ((margins[:, 0] > 0) == (margins[:, 1] == 1)).all()
    paired = pd.read_csv(run_dir / "report" / "tables" / "paired_vs_random.csv")
    compared = set(paired["metric"])
    assert {"mnli_m/acc", "hans/acc", "animals/acc", "hans_style/acc",
            "hans_style/lexical_overlap/non-entailment"} <= compared
    assert "hans_style/lexical_overlap" not in compared  # compare names what is tested
    margins_by_metric = paired.groupby("metric")["margin"].first()
    assert margins_by_metric["hans_style/acc"] == 5.0 and margins_by_metric["animals/acc"] == 1.0
    assert margins_by_metric["hans/acc"] == 5.0
    report = (run_dir / "report" / "index.md").read_text()
    assert "figures/accuracy.png" in report and "figures/hans_style_groups.png" in report


def test_every_revision_is_recorded_and_a_changed_one_stops_a_resume(tasks, capsys):
    tmp, runs = tasks
    run_dir = runs["own_task_demo"]
    spec = yaml.safe_load((run_dir / "spec.resolved.yaml").read_text())
    prepared = json.loads((run_dir / "prepared.json").read_text())
    provenance = spec["provenance"]
    assert provenance == prepared["revisions"]
    assert set(provenance) == {"train", "test", "animals", "model"}
    assert provenance["model"].startswith("tiny-albert")
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", provenance["animals"])
    import hashlib

    animals = (tmp / "demo-task" / "sentences_animals.csv").read_bytes()
    assert provenance["animals"] == f"sha256:{hashlib.sha256(animals).hexdigest()}"
    table = results(run_dir)
    assert (table["revision/train"] == provenance["train"]).all()
    # the training data changes under the run: --resume refuses, naming the source and both revisions
    train = tmp / "demo-task" / "sentences" / "train.csv"
    before = train.read_bytes()
    train.write_bytes(before + b"the doctor never saw the lawyer,negative,people\n")
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.chdir(tmp)
            capsys.readouterr()
            assert main(["sweep", str(tmp / "experiments" / "own_task_demo.yaml"), "--resume"]) == 2
    finally:
        train.write_bytes(before)
    error = capsys.readouterr().err.strip().splitlines()[-1]
    # the folder is the dataset: both of its splits changed
    assert re.search(r"cannot resume .*: test and train changed since the run started \(test was read at "
                     r"sha256:\w+, is now at sha256:\w+\)", error), error


def test_a_task_of_ones_own_is_named_by_its_own_sets_in_the_report_and_its_figures(tasks, tmp_path, monkeypatch):
    from matplotlib.text import Text

    from tis_ray import report, report_sections

    tmp, runs = tasks
    labels = []  # every text drawn on every figure: titles, axis labels, tick labels, legends
    save = report._save

    def save_reading_labels(fig, path):
        labels.extend(text.get_text() for text in fig.findobj(Text) if text.get_text())
        return save(fig, path)

    monkeypatch.setattr(report, "_save", save_reading_labels)
    monkeypatch.setattr(report_sections, "_save", save_reading_labels)
    index = report.build_report(runs["own_task_demo"], tmp_path / "report")
    written = [index.read_text(), *(p.read_text() for p in (tmp_path / "report" / "tables").glob("*.md"))]
    assert any(label.startswith("test accuracy") for label in labels)  # the axes of the primary metric
    assert not [text for text in [*labels, *written] if "MNLI" in text]
    # chance level: the majority share of the test split, read here from its CSV, and 95% binomial noise on it
    gold = pd.read_csv(tmp / "demo-task" / "sentences" / "test.csv")["label"]
    majority, n = gold.value_counts(normalize=True).max(), len(gold)
    arms = pd.read_csv(tmp_path / "report" / "tables" / "chance_level.csv")
    test_arms = arms[arms["set"] == "test"]
    assert len(test_arms) == 4 and np.allclose(test_arms["majority"], majority)
    ceiling = majority + 1.96 * np.sqrt(majority * (1 - majority) / n)
    assert test_arms["chance_level"].tolist() == (test_arms["accuracy"] <= ceiling).tolist()
    if test_arms["chance_level"].any():  # tiny-albert at 25% may still answer one label: its verdicts say so
        assert "## Chance level" in written[0] and "‡" in written[0]
