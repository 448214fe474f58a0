"""Export reads Tune's per-trial files alone: hand-written run directories stand in for real sweeps."""

import json

import pandas as pd
import pytest

from tis_ray.cli import main
from tis_ray.errors import TisRayError
from tis_ray.export import export_table, write_table


def trial(run_dir, trial_id, params, results, error=None):
    d = run_dir / trial_id
    d.mkdir(parents=True)
    (d / "params.json").write_text(json.dumps(params))
    (d / "result.json").write_text("".join(json.dumps(r) + "\n" for r in results))
    if error:
        (d / "error.txt").write_text(f"Traceback (most recent call last):\n  ...\n{error}\n")


def epoch(e, acc, final=0, **extra):
    return {"epoch": e, "mnli_m/acc": acc, "final": final, "n_train": 10, "training_iteration": e, **extra}


@pytest.fixture
def run_dir(tmp_path):
    base = {"budget": {"data_pct": 0.5}, "overrides": {}}
    trial(tmp_path, "a_00000", {**base, "seed": 1, "sampler": {"type": "random"}},
          [epoch(1, 0.4), epoch(2, 0.6, final=1)])
    # killed after epoch 1, retried from scratch: epochs 1-2 appear again and the last attempt wins
    trial(tmp_path, "a_00001", {**base, "seed": 2, "sampler": {"type": "random"}},
          [epoch(1, 0.3), epoch(1, 0.35), epoch(2, 0.7, final=1)], error="ray.exceptions.ActorDiedError: killed")
    trial(tmp_path, "a_00002", {**base, "seed": 1, "sampler": {"type": "kmeans", "mode": "centroid", "n_clusters": 4}},
          [], error="tis_ray.errors.SamplingError: budget 9 is more than the 4 examples in the clusters")
    trial(tmp_path, "a_00003", {**base, "seed": 2, "sampler": {"type": "kmeans", "mode": "centroid", "n_clusters": 4}},
          [epoch(1, 0.5)])
    (tmp_path / "a_00003" / "result.json").write_text((tmp_path / "a_00003" / "result.json").read_text() + '{"epo')
    return tmp_path


def test_one_row_per_trial_with_status_and_error(run_dir):
    table = export_table(run_dir).set_index("trial_id")
    assert table.loc["a_00000", "mnli_m/acc"] == 0.6 and table.loc["a_00000", "status"] == "completed"
    assert table.loc["a_00001", "mnli_m/acc"] == 0.7 and table.loc["a_00001", "status"] == "completed"
    assert table.loc["a_00002", "status"] == "failed"
    assert table.loc["a_00002", "error"].startswith("tis_ray.errors.SamplingError: budget 9")
    assert table.loc["a_00003", "status"] == "incomplete" and table.loc["a_00003", "epoch"] == 1
    assert table.loc["a_00002", "setting"] == "kmeans(mode=centroid, n_clusters=4)"
    assert json.loads(table.loc["a_00002", "sampler_params"]) == {"mode": "centroid", "n_clusters": 4}
    assert "training_iteration" not in table.columns


def test_per_epoch_rows_deduplicate_retried_epochs(run_dir):
    table = export_table(run_dir, per_epoch=True)
    retried = table[table["trial_id"] == "a_00001"]
    assert retried["epoch"].tolist() == [1, 2] and retried["mnli_m/acc"].tolist() == [0.35, 0.7]
    assert len(table) == 2 + 2 + 1 + 1


def test_parquet_and_csv_roundtrip_via_cli(run_dir, tmp_path):
    assert main(["export", str(run_dir), "--format", "csv", "--out", str(tmp_path / "t.csv")]) == 0
    assert len(pd.read_csv(tmp_path / "t.csv")) == 4
    path = write_table(export_table(run_dir), tmp_path / "t.parquet")
    assert pd.read_parquet(path)["status"].tolist().count("completed") == 2
    assert not list(tmp_path.glob(".*.tmp"))


def test_not_a_run_directory(tmp_path):
    with pytest.raises(TisRayError, match="no trials found"):
        export_table(tmp_path)
    with pytest.raises(TisRayError, match="no such run directory"):
        export_table(tmp_path / "missing")


def test_never_started_grid_points_get_rows_from_the_same_grid_point_type(tmp_path):
    from tis_ray.spec import SPEC_FILE, GridPoint, build_spec, dump_spec

    spec = build_spec({"grid": {"seeds": [1, 2], "n_examples": [8], "samplers": [{"type": "stratified"}]}})
    (tmp_path / SPEC_FILE).write_text(dump_spec(spec))
    started = GridPoint(seed=1, n_examples=8, sampler={"type": "stratified"})
    trial(tmp_path, "b_00000", {"point": started.model_dump()}, [epoch(1, 0.5, final=1)])
    table = export_table(tmp_path).set_index("seed")
    assert table.loc[1, "status"] == "completed" and table.loc[2, "status"] == "not_started"
    expected = GridPoint(seed=2, n_examples=8, sampler={"type": "stratified"}).row_fields()
    row = table.reset_index().set_index("status").loc["not_started"]
    assert {k: (None if pd.isna(row[k]) else row[k]) for k in expected} == expected
    assert row["budget_kind"] == "n_examples" and row["setting"] == "stratified"


def test_an_outdated_run_spec_still_exports_its_trials(run_dir, caplog):
    (run_dir / "spec.resolved.yaml").write_text("grid: {data_pct: [0.5]}\nretired_field: 1\n")
    table = export_table(run_dir)
    assert len(table) == 4 and "not_started" not in set(table["status"])
    assert "no longer validates" in caplog.text
