"""Sweeps under local Ray: shared preparation, export, resume, and bad input stopped before any trial."""

import io
import json
import os
import re
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import small_spec_dict

from tis_ray.cli import main
from tis_ray.export import export_table

pytestmark = pytest.mark.slow


def write_spec(tmp_path, **overrides):
    raw = small_spec_dict(storage_path=str(tmp_path / "runs"), **overrides)
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.fixture(scope="module")
def finished_sweep(tmp_path_factory):
    import ray

    tmp = tmp_path_factory.mktemp("sweep")
    # tracked offline: MLflow into a local file store, W&B runs written locally (WANDB_DIR), nothing sent
    spec = write_spec(tmp, name="s", train={"epochs": 2}, clustering={"embedding_epochs": 1}, grid={
        "seeds": [1, 2], "data_pct": [0.5], "budget_rounding": "floor",
        "samplers": [{"type": "random"}, {"type": "kmeans", "mode": "proportional", "n_clusters": 4},
                     {"type": "kmeans", "mode": "whole_clusters", "n_clusters": 4}]},
        tracking={"mlflow": (tmp / "mlruns").as_uri(), "wandb": {"project": "tis-ray-test", "mode": "offline"}})
    console = ConsoleCopy()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WANDB_DIR", str(tmp))
        patch.setenv("WANDB_SILENT", "true")
        patch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 keeps the file store in maintenance mode
        patch.setattr("sys.stderr", console.tee(sys.stderr))  # where Ray prints its workers' lines
        patch.setattr("sys.stdout", console.tee(sys.stdout))
        try:
            assert main(["sweep", str(spec), "--num-cpus", "2"]) == 0
        finally:
            ray.shutdown()
    (tmp / "console.txt").write_text("".join(console.parts))
    return spec, tmp / "runs" / "s", Path(os.environ["TIS_RAY_CACHE"])  # the module's cache


class ConsoleCopy:
    """What the driver prints on its console, copied as it passes (Ray's log printer writes to whatever
    sys.stderr / sys.stdout are when a worker's lines arrive)."""

    def __init__(self):
        self.parts: list[str] = []

    def tee(self, stream):
        copy = self

        class Tee(io.TextIOBase):
            def write(self, text):
                copy.parts.append(text)
                return stream.write(text)

            def flush(self):
                stream.flush()

            def isatty(self):
                return False

        return Tee()


def test_every_epoch_line_of_every_trial_reaches_the_console(finished_sweep):
    _, run_dir, _ = finished_sweep
    console = (run_dir.parents[1] / "console.txt").read_text()
    epoch_lines = re.findall(r"\[tis-ray (s\d+-\S+)\] epoch (\d+): ", console)
    # 6 trials x 2 epochs, each line on its own: none merged by Ray's log deduplication ('[repeated 2x ...]')
    assert len(epoch_lines) == 6 * 2 and len(set(epoch_lines)) == 12, console[-3000:]
    assert "repeated" not in console
    # Tune's progress table names each trial in full as its folder (and tis-ray status) does
    folders = [p.name for p in run_dir.iterdir() if (p / "params.json").exists()]
    assert len(folders) == 6
    for name in folders:
        assert re.search(rf"\|\s*{re.escape(name)}\s*\|", console), name


def test_every_trial_completed_once_with_its_metrics(finished_sweep):
    _, run_dir, _ = finished_sweep
    table = pd.read_parquet(run_dir / "results.parquet")
    assert len(table) == 6 and set(table["status"]) == {"completed"}
    assert sorted(table["setting"].unique()) == ["kmeans(mode=whole_clusters, n_clusters=4)",
                                                 "kmeans(n_clusters=4)", "random"]
    budgeted = table[table["setting"] != "kmeans(mode=whole_clusters, n_clusters=4)"]
    assert set(budgeted["n_train"]) == {600} and budgeted["subset_sha256"].nunique() == 4
    for column in ("mnli_m/acc", "mnli_mm/acc", "hans/lexical_overlap/non_entailed", "node_id", "train_time_s"):
        assert table[column].notna().all(), column
    per_epoch = export_table(run_dir, per_epoch=True)
    assert len(per_epoch) == 12 and sorted(per_epoch["epoch"].unique()) == [1, 2]


def test_shared_preparation_happens_once(finished_sweep):
    _, run_dir, cache = finished_sweep
    prepared = run_dir / "prepared"
    # train, matched, mismatched, HANS: tokenized once each (one tokenizer), by the driver's preparation
    assert len(list((prepared / "data" / "tokenized").iterdir())) == 4
    # trials read what the preparation wrote: nothing was tokenized or cached outside the run directory
    assert not cache.exists() or not any(cache.rglob("*"))
    # two kmeans samplers with the same n_clusters share one clustering
    clusterings = list((prepared / "clusters").iterdir())
    assert len(clusterings) == 1 and clusterings[0].name.startswith("kmeans-n_clusters4-")
    folders = set(json.loads((run_dir / "prepared.json").read_text())["clusters_by_sampler"].values())
    assert len(folders) == 1
    # each kmeans trial records its per-cluster counts; proportional ones follow the cluster sizes exactly
    for subset in run_dir.glob("*/subset.json"):
        record = json.loads(subset.read_text())
        if record["sampler_params"].get("mode") == "proportional":  # defaults written out in subset.json
            assert sum(record["cluster_counts"].values()) == 600


def test_trial_folders_are_named_by_grid_point(finished_sweep):
    _, run_dir, _ = finished_sweep
    table = pd.read_parquet(run_dir / "results.parquet")
    names = sorted(p.parent.name for p in run_dir.glob("*/params.json"))
    assert names == sorted(table["trial_id"]) and len(names) == 6
    prefixes = sorted(name.rsplit("-", 1)[0] for name in names)  # without Tune's trial id
    assert prefixes == sorted(f"s{seed}-pct0.5-{sampler}" for seed in (1, 2) for sampler in
                              ("random", "kmeans_k=4", "kmeans_mode=whole_clusters_k=4"))


def test_the_originals_whole_cluster_rule_in_a_sweep(finished_sweep):
    import numpy as np

    _, run_dir, _ = finished_sweep
    labels = np.load(next((run_dir / "prepared" / "clusters").glob("kmeans-*/labels.npy")), allow_pickle=False)
    # by hand: clusters 0, 1, 2, 3 in that order while the running total stays below int(1200 * 0.5) = 600
    sizes = np.bincount(labels, minlength=4)
    taken = [k for k in range(4) if sizes[: k + 1].sum() < 600 and all(sizes[: j + 1].sum() < 600 for j in range(k))]
    records = [json.loads(p.read_text()) for p in run_dir.glob("*/subset.json")]
    whole = [r for r in records if r["sampler"].get("mode") == "whole_clusters"]
    assert len(whole) == 2 and whole[0]["sha256"] == whole[1]["sha256"]  # the same subset for both seeds
    for record in whole:
        assert record["selection"]["clusters_taken"] == taken
        assert "get_cluster_indices_by_pct" in record["selection"]["rule"]
        assert record["n"] == sizes[taken].sum() < record["budget"] == 600 and record["budget_rounding"] == "floor"


def test_resume_of_a_finished_sweep_reruns_nothing(finished_sweep, monkeypatch):
    import ray

    spec, run_dir, _ = finished_sweep
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # as the sweep it resumes had
    before = {p: p.read_text() for p in run_dir.glob("*/result.json")}
    try:
        assert main(["sweep", str(spec), "--resume", "--num-cpus", "2"]) == 0
    finally:
        ray.shutdown()
    assert {p: p.read_text() for p in run_dir.glob("*/result.json")} == before


def test_rerun_without_resume_is_refused(finished_sweep, capsys, monkeypatch):
    spec, run_dir, _ = finished_sweep
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    assert main(["sweep", str(spec)]) == 2
    assert "exists: pass --resume" in capsys.readouterr().err


def test_dry_run_of_a_prepared_run_shows_what_each_clustering_found(finished_sweep, capsys):
    spec, run_dir, _ = finished_sweep
    assert main(["sweep", str(spec), "--dry-run"]) == 0
    out = capsys.readouterr().out
    meta = json.loads(next((run_dir / "prepared" / "clusters").glob("*/meta.json")).read_text())
    assert meta["n_clusters"] == 4 and meta["n_noise"] == 0 and sum(meta["size_histogram"].values()) == 4
    assert "kmeans-n_clusters4-" in out and "4 clusters (largest " in out and "0.0% noise" in out


def test_dry_run_lists_every_trial_and_the_shared_steps_without_running(tmp_path, capsys):
    import ray

    spec = write_spec(tmp_path, name="plan", grid={
        "seeds": [1, 2], "data_pct": [0.1, 0.5],
        "samplers": [{"type": "random"}, {"type": "kmeans", "n_clusters": 4},
                     {"type": "kmeans", "mode": "round_robin", "n_clusters": 4}],
        "extra": {"model.freeze_base": [False, True]}})
    assert main(["sweep", str(spec), "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    # 2 seeds x 2 budgets x 3 samplers x 2 freeze settings
    assert lines[0].startswith("sweep plan: 24 trials = 2 seeds x 2 budgets x 3 samplers x 2 model.freeze_base")
    assert "1 clustering: kmeans-n_clusters4-" in lines[3]  # both kmeans samplers share it
    paths_at = next(i for i, line in enumerate(lines) if line.startswith("paths (relative ones"))
    rows = lines[5:paths_at]
    assert len(rows) == 24
    assert lines[paths_at + 1] == f"  run directory: {tmp_path / 'runs' / 'plan'}"
    assert rows[0].split() == ["1", "1", "data_pct=0.1", "random", "model.freeze_base=false"]
    assert sum("round_robin" in row for row in rows) == 8
    assert not (tmp_path / "runs").exists() and not ray.is_initialized()


def test_relative_paths_are_fixed_at_load_and_trials_find_them(tmp_path, monkeypatch):
    import ray

    project = tmp_path / "project"
    (project / "data").mkdir(parents=True)
    from tis_ray.data import synthetic

    for name, seed in (("train", 1), ("matched", 2)):
        pairs = synthetic.generate_nli(300, seed=seed)
        rows = [f"{p}\t{h}\t{y}" for p, h, y in zip(pairs["premise"], pairs["hypothesis"], pairs["label"], strict=True)]
        (project / "data" / f"{name}.tsv").write_text("premise\thypothesis\tlabel\n" + "\n".join(rows) + "\n")
    raw = small_spec_dict(name="rel", storage_path="runs", train={"epochs": 1},
                          data={"source": "files", "train_file": "data/train.tsv", "matched_file": "data/matched.tsv",
                                "hans": None}, eval_sets=["mnli_m"])
    (project / "spec.yaml").write_text(yaml.safe_dump(raw))
    monkeypatch.chdir(project)  # the user's working directory; Tune's trials run in others
    try:
        assert main(["sweep", "spec.yaml", "--num-cpus", "2"]) == 0
    finally:
        ray.shutdown()
    run_dir = project / "runs" / "rel"
    resolved = yaml.safe_load((run_dir / "spec.resolved.yaml").read_text())
    assert resolved["data"]["train_file"] == str(project / "data" / "train.tsv")
    assert resolved["storage_path"] == str(project / "runs")
    assert set(export_table(run_dir)["status"]) == {"completed"}


def test_status_of_a_finished_sweep(finished_sweep, capsys):
    _, run_dir, _ = finished_sweep
    assert main(["status", str(run_dir)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("6 trials: 6 done, 0 running, 0 failed, 0 pending; elapsed ")
    assert "ETA" not in out[0]  # nothing left
    assert out[1].split()[:4] == ["state", "trial", "seed", "epoch"]
    assert sum(line.split()[0] == "done" for line in out[2:]) == 6


def test_notebook_api_gives_the_export_and_matches_tunes_own_dataframe(finished_sweep):
    import ray
    from ray import tune

    import tis_ray
    from tis_ray.sweep import tune_trial

    spec, run_dir, _ = finished_sweep
    table = tis_ray.load(run_dir)
    assert table.equals(export_table(run_dir)) and tis_ray.load(run_dir / "results.parquet").shape == table.shape
    assert len(tis_ray.load(run_dir, per_epoch=True)) == 12
    try:  # Ray's own view of the same run: its ResultGrid, restored from the run directory
        trainable = tune.with_resources(tune_trial, {"cpu": 1})
        grid = tune.Tuner.restore(str(run_dir), trainable=trainable).get_results()
        tune_frame = grid.get_dataframe()
    finally:
        ray.shutdown()
    ours = table.set_index("trial_id")
    for _, row in tune_frame.iterrows():  # the final metrics of every trial agree where the two overlap
        trial = next(t for t in ours.index if t.endswith(row["trial_id"]))
        for column in ("mnli_m/acc", "mnli_mm/acc", "train/loss", "epoch"):
            assert ours.loc[trial, column] == pytest.approx(row[column]), (trial, column)
    assert len(tune_frame) == len(table) == 6


def test_mlflow_has_one_run_per_trial_with_the_grid_point_and_every_epoch(finished_sweep):
    from mlflow.tracking import MlflowClient

    _, run_dir, _ = finished_sweep
    client = MlflowClient((run_dir.parents[1] / "mlruns").as_uri())
    experiment = client.get_experiment_by_name("s")
    runs = client.search_runs([experiment.experiment_id])
    table = export_table(run_dir).set_index("trial_id")
    assert sorted(r.info.run_name for r in runs) == sorted(table.index)
    for run in runs:
        row = table.loc[run.info.run_name]
        point = {"setting": row["setting"], "sampler": row["sampler"], "sampler_params": row["sampler_params"],
                 "overrides": "{}", "seed": str(row["seed"]), "budget_kind": "data_pct", "data_pct": "0.5"}
        # parameters: the grid point and what the trial says about itself; metrics: what it measured, nothing else
        assert run.data.params == {**point, "model": "tiny-albert", "device": "cpu", "precision": row["precision"],
                                   "schedule": "epochs", "freeze_base": "False", "node_id": row["node_id"],
                                   "subset_sha256": row["subset_sha256"]}  # node_ip is a key Tune sets itself
        metrics = set(run.data.metrics)
        assert {"mnli_m/acc", "hans/acc", "train/loss", "n_train", "epoch", "train_time_s"} <= metrics
        assert not metrics & {"seed", "data_pct", "training_iteration", "timestamp", "pid", "final"}
        assert not [m for m in metrics if m.startswith("config")]
        history = client.get_metric_history(run.info.run_id, "mnli_m/acc")
        assert [m.step for m in history] == [1, 2]
        assert history[-1].value == pytest.approx(row["mnli_m/acc"])
        assert run.info.status == "FINISHED"


def test_wandb_offline_writes_one_run_per_trial(finished_sweep):
    _, run_dir, _ = finished_sweep
    offline = sorted((run_dir.parents[1] / "wandb").glob("offline-run-*"))
    assert len(offline) == 6
    assert all(list(folder.glob("run-*.wandb")) for folder in offline)


def test_same_run_fills_the_defaults_a_recorded_spec_predates():
    from tis_ray.spec import build_spec, dump_spec
    from tis_ray.sweep import same_run

    spec = build_spec(small_spec_dict())
    recorded = yaml.safe_load(dump_spec(spec))
    for section, field in (("train", "schedule"), ("data", "pool_size"), ("dynamics", "seeds"), (None, "eval_sets")):
        (recorded[section] if section else recorded).pop(field)  # fields a run directory of an older tis_ray lacks
    recorded["data"]["columns"] = {"premise": "premise", "hypothesis": "hypothesis", "label": "label"}
    recorded["provenance"] = {"train": "generated:0"}  # what the run recorded: not compared
    assert same_run(yaml.safe_dump(recorded), spec)
    recorded["grid"]["seeds"] = [7]
    assert not same_run(yaml.safe_dump(recorded), spec)
    assert not same_run("grid: {data_pct: [2]}", spec)  # no longer validates
