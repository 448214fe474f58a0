"""Run directories on S3, against a real S3 API served on 127.0.0.1 (moto's standalone server, started and
stopped here through its handle): a sweep end to end, Ctrl-C and --resume, export and report from the URI,
and the bad inputs of remote storage. Nothing leaves 127.0.0.1."""

import json

import numpy as np
import pytest
import yaml
from conftest import NOISE_STOP, Calls, small_spec_dict

from tis_ray.cli import main
from tis_ray.errors import TisRayError
from tis_ray.export import export_table
from tis_ray.storage import Storage, join
from tis_ray.sweep import check_visible_from_nodes


def write_spec(tmp_path, storage_path, name, **overrides):
    raw = small_spec_dict(name=name, storage_path=storage_path, **overrides)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return str(path)


def test_join_keeps_query_options():
    assert join("s3://b/runs?endpoint_override=h:1&scheme=http", "demo", "x.json") == \
        "s3://b/runs/demo/x.json?endpoint_override=h:1&scheme=http"
    assert join("/tmp/runs", "demo") == "/tmp/runs/demo"


@pytest.mark.slow
def test_sweep_export_and_report_on_s3(s3, tmp_path, monkeypatch):
    import ray

    monkeypatch.chdir(tmp_path)
    spec = write_spec(tmp_path, s3, "s3demo", train={"epochs": 2}, clustering={"embedding_epochs": 1},
                      grid={"seeds": [1, 2], "data_pct": [0.5],
                            "samplers": [{"type": "random"}, {"type": "kmeans", "n_clusters": 4}]})
    try:
        assert main(["sweep", spec, "--num-cpus", "2"]) == 0
    finally:
        ray.shutdown()
    run = join(s3, "s3demo")
    storage = Storage(run)
    trials = [t for t in storage.folders() if storage.exists(f"{t}/params.json")]
    assert len(trials) == 4
    for trial in trials:  # tis_ray's own files went to the bucket beside Tune's
        for name in ("metrics.json", "subset.json", "subset_indices.npy", "hans_predictions.txt", "result.json"):
            assert storage.exists(f"{trial}/{name}"), (trial, name)
        for folder in [f for f in storage.folders(trial) if f.startswith("checkpoint_")]:  # finished: a note alone
            assert [i.base_name for i in storage.files(f"{trial}/{folder}")] == ["finished.txt"]
    assert storage.exists("prepared/data") and storage.exists("spec.resolved.yaml")
    assert storage.exists("results.parquet")
    assert not list(tmp_path.glob("s3:*")) and not (tmp_path / "runs").exists()  # no local stand-in folder
    table = export_table(run)  # a fresh reader, from the URI alone
    assert len(table) == 4 and set(table["status"]) == {"completed"} and set(table["n_train"]) == {600}
    assert main(["export", run, "--format", "csv"]) == 0 and storage.exists("results.csv")
    assert main(["report", run, "--out", str(tmp_path / "report")]) == 0
    text = (tmp_path / "report" / "index.md").read_text()
    assert "# Report: s3demo" in text and "4 of 4 trials completed" in text and "## Clusterings" in text


@pytest.mark.slow
def test_interrupted_s3_sweep_resumes_every_trial_once(s3, tmp_path):
    from test_faults import finish, interrupt_when, results_of, start_sweep

    raw = small_spec_dict(name="s3resume", storage_path=s3, train={"epochs": 3},
                          data={"synthetic": {"n_train": 2400, "n_eval": 200, "hans_per_cell": 20}},
                          resources={"cpu": 1, "max_concurrent": 1},
                          grid={"seeds": [1, 2, 3], "data_pct": [0.5], "samplers": [{"type": "random"}]})
    storage = Storage(join(s3, "s3resume"))

    def trials():
        return [t for t in storage.folders() if storage.exists(f"{t}/params.json")] if storage.exists() else []

    def finished():
        return {t: storage.read_text(f"{t}/result.json") for t in trials()
                if any(r.get("final") for r in results_of(storage, t))}

    code, out = interrupt_when(start_sweep(tmp_path, raw), lambda: 1 <= len(finished()) < 3, "a finished trial")
    assert code != 0, out
    before = finished()
    code, out = finish(start_sweep(tmp_path, raw, "--resume"))
    assert code == 0, out
    table = export_table(storage.location)
    assert len(table) == 3 and set(table["status"]) == {"completed"} and sorted(table["seed"]) == [1, 2, 3]
    for trial in trials():
        assert [r["epoch"] for r in results_of(storage, trial)] == [1, 2, 3]
    for trial, text in before.items():  # finished trials were not rerun
        assert storage.read_text(f"{trial}/result.json") == text


@pytest.mark.parametrize(("location", "message"), [
    ("foo://bucket/runs", r"storage foo://bucket/runs/bad: Unrecognized filesystem type in URI"),
    ("s3://bucket/runs?endpoint_override=127.0.0.1:9&scheme=http", r"cannot reach storage s3://bucket/runs/bad\?"),
    ("MISSING", r"bucket 'nobucket' does not exist; create it first"),
])
def test_bad_storage_is_one_line_and_writes_nothing(s3, tmp_path, capsys, location, message):
    import re

    if location == "MISSING":
        location = s3.replace("s3://bucket/", "s3://nobucket/")
    before = [i.path for i in Storage(s3.replace("/runs?", "?")).files()]
    assert main(["sweep", write_spec(tmp_path, location, "bad")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and re.search(message, err[0]), err
    assert [i.path for i in Storage(s3.replace("/runs?", "?")).files()] == before


def test_a_run_directory_not_visible_from_a_node_stops_the_sweep(tmp_path):
    with pytest.raises(TisRayError, match="run directory .* is not visible from node 10.0.0.7: use a filesystem"):
        check_visible_from_nodes(str(tmp_path / "runs" / "x"), probe=lambda path: {"10.0.0.5": True,
                                                                                   "10.0.0.7": False})
    seen = []
    check_visible_from_nodes(str(tmp_path / "runs" / "x"), probe=lambda path: seen.append(path) or {"a": True})
    assert seen and not list((tmp_path / "runs").glob(".tis_ray_visible_*"))  # the marker is removed


def test_fetch_caches_a_folder_once_per_content(s3, tmp_path):
    storage = Storage(join(s3, "fetch"))
    (tmp_path / "src").mkdir()
    np.save(tmp_path / "src" / "labels.npy", np.arange(5), allow_pickle=False)
    (tmp_path / "src" / "meta.json").write_text(json.dumps({"n": 5}))
    storage.upload(tmp_path / "src", "clusters/a")
    first = storage.fetch("clusters/a")
    assert storage.fetch("clusters/a") == first
    assert np.load(first / "labels.npy", allow_pickle=False).tolist() == [0, 1, 2, 3, 4]
    storage.write_json("clusters/a/meta.json", {"n": 6})  # new content, new cache entry
    assert storage.fetch("clusters/a") != first


@pytest.mark.slow
def test_noise_stop_on_s3_keeps_the_steps_and_a_rerun_reuses_them(s3, tmp_path, capsys, monkeypatch):
    import re

    import ray

    calls = Calls(monkeypatch)
    monkeypatch.chdir(tmp_path)
    dbscan = {"type": "dbscan", "eps": 1.0e-9}
    spec = write_spec(tmp_path, s3, "noisy", train={"epochs": 1}, clustering={"embedding_epochs": 1},
                      grid={"data_pct": [0.5], "samplers": [dbscan]})
    storage = Storage(join(s3, "noisy"))
    try:
        assert main(["sweep", spec, "--num-cpus", "2"]) == 2
        errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("tis-ray: error:")]
        assert len(errors) == 1 and (plot := re.search(NOISE_STOP, errors[0]))
        location = plot.group(1).split("?")[0]
        assert location.startswith("s3://bucket/runs/noisy/prepared/clusters/")
        assert storage.exists(location.removeprefix("s3://bucket/runs/noisy/"))  # the named plot is in the bucket
        assert (calls.fits, calls.embeds) == (1, 1)
        assert storage.exists("prepared/embeddings/step.json") and storage.exists("prepared/reference_model/step.json")
        # a rerun with another eps, no --resume needed (no trial ran): both steps come back from the bucket
        assert main(["sweep", spec, "--num-cpus", "2", "--set", "grid.samplers=[{type: dbscan, eps: 2.0e-9}]"]) == 2
        assert (calls.fits, calls.embeds) == (1, 1)
        assert len(storage.folders("prepared/clusters")) == 2
    finally:
        ray.shutdown()
