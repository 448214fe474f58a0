"""The README's bad-input table: each row is one case. Every one ends with a one-line error naming the
problem, exit status 2, before any trial runs, and with nothing written or overwritten."""

import json
import re

import numpy as np
import pytest
import yaml
from conftest import small_spec_dict

from tis_ray.cli import main

TSV_HEADER = "premise\thypothesis\tlabel\n"


@pytest.fixture
def workspace(tmp_path):
    (tmp_path / "runs" / "old").mkdir(parents=True)
    (tmp_path / "runs" / "old" / "results.parquet").write_text("earlier results")
    (tmp_path / "good.tsv").write_text(TSV_HEADER + "".join(f"p{i}\th{i}\t{i % 3}\n" for i in range(6)))
    return tmp_path


def spec_file(tmp_path, **overrides):
    raw = small_spec_dict(storage_path=str(tmp_path / "runs"), **overrides)
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(raw))
    return str(path)


def files_spec(tmp_path, train_text):
    (tmp_path / "train.tsv").write_text(train_text)
    return spec_file(tmp_path, data={"source": "files", "train_file": str(tmp_path / "train.tsv"),
                                     "matched_file": str(tmp_path / "good.tsv"), "hans": None})


def labels_dir(tmp_path, labels):
    folder = tmp_path / "labels"
    folder.mkdir()
    np.save(folder / "labels.npy", np.asarray(labels, dtype=np.int64), allow_pickle=False)
    return str(folder)


def embeddings_dir(tmp_path, fingerprint):
    folder = tmp_path / "emb"
    folder.mkdir()
    np.save(folder / "embeddings.npy", np.zeros((1200, 4), dtype=np.float32), allow_pickle=False)
    (folder / "manifest.json").write_text(json.dumps({"fingerprint": fingerprint, "rows": 1200, "dim": 4}))
    return str(folder)


def dynamics_dir(tmp_path):
    from tis_ray.dynamics import Dynamics, save_dynamics

    probs = np.full((2, 1200, 3), 1 / 3, dtype=np.float32)
    save_dynamics(Dynamics(probs, np.ones((2, 1200), dtype=np.float32), np.zeros(1200, dtype=np.int64)),
                  tmp_path / "dyn", fingerprint="0123456789abcdef", model="m", seed=0, seconds=0.0)
    return str(tmp_path / "dyn")


def task_spec(tmp_path, data, eval_sets):
    """A spec of a task of one's own (not MNLI): a folder load_dataset opens, with train.csv and test.csv."""
    folder = tmp_path / "sentences"
    folder.mkdir(exist_ok=True)
    for split in ("train", "test"):
        (folder / f"{split}.csv").write_text("sentence,label\n" + "".join(
            f"s{i},{'yes' if i % 2 else 'no'}\n" for i in range(8)))
    raw = small_spec_dict(storage_path=str(tmp_path / "runs"), eval_sets=eval_sets)
    raw["data"] = {"source": "hub", "dataset": str(folder), "columns": {"text": ["sentence"]}, **data}
    path = tmp_path / "task.yaml"
    path.write_text(yaml.safe_dump(raw))
    return str(path)


def eval_file(tmp_path, labels):
    path = tmp_path / "ood.csv"
    path.write_text("sentence,label\n" + "".join(f"o{i},{label}\n" for i, label in enumerate(labels)))
    return str(path)


def train(tmp, spec, *extra):
    return ["train", spec, "--out", str(tmp / "runs" / "train_out"), *extra]


CASES = {
    "malformed TSV line": (lambda t: train(t, files_spec(t, TSV_HEADER + "a\tb\t0\nonly two\tfields\n")),
                           r"train\.tsv:3: expected 3 fields as in the header, found 2"),
    "label outside the label set": (lambda t: train(t, files_spec(t, TSV_HEADER + "a\tb\tmaybe\n")),
                                    r"train\.tsv:2: unknown label 'maybe'"),
    "empty training set after sampling": (
        lambda t: train(t, spec_file(t), "--sampler", "dbscan", "--data-pct", "0.5",
                        "--cluster-input-path", labels_dir(t, np.full(1200, -1))),
        r"found 0 cluster\(s\) and 1200 noise points"),
    "data_pct 0": (lambda t: ["sweep", spec_file(t, grid={"data_pct": [0]})],
                   r"grid\.data_pct\.0: data_pct must be in \(0, 1\]"),
    "data_pct 1.5": (lambda t: ["sweep", spec_file(t, grid={"data_pct": [0.5, 1.5]})],
                     r"grid\.data_pct\.1: data_pct must be in \(0, 1\] \(0\.1 means 10%\), got 1\.5"),
    "unknown sampler type": (lambda t: ["sweep", spec_file(t, grid={"samplers": [{"type": "kmean"}]})],
                             r"grid\.samplers: unknown sampler 'kmean'; known: random, stratified, kmeans, dbscan"),
    "unknown sampler parameter": (
        lambda t: ["sweep", spec_file(t, grid={"samplers": [{"type": "kmeans", "clusters": 8}]})],
        r"unknown parameter 'clusters'; known: mode, n_clusters, clusters_to_take"),
    "cluster labels file of the wrong length": (
        lambda t: train(t, spec_file(t), "--sampler", "kmeans", "--data-pct", "0.5",
                        "--cluster-input-path", labels_dir(t, np.zeros(7))),
        r"7 cluster labels for a training set of 1200 examples"),
    "embeddings from another dataset": (
        lambda t: train(t, spec_file(t), "--sampler", "kmeans", "--data-pct", "0.5",
                        "--embeddings", embeddings_dir(t, "0123456789abcdef")),
        r"embeddings belong to dataset 0123456789abcdef, not to this training set"),
    "missing model path": (lambda t: ["sweep", spec_file(t), "--set", "model.name=./no/such/checkpoint"],
                           r"model\.name: no such checkpoint or folder: /\S+/no/such/checkpoint"),
    "missing data file": (lambda t: ["sweep", spec_file(t, data={"source": "files", "train_file": "nope.tsv",
                                                                  "matched_file": "nope.tsv"})],
                          r"data\.train_file: no such file or folder: /\S+/nope\.tsv"),
    "unreachable Ray address": (lambda t: ["sweep", spec_file(t), "--address", "127.0.0.1:9"],
                                r"cannot reach a Ray cluster at 127\.0\.0\.1:9"),
    "extra axis over data": (lambda t: ["sweep", spec_file(t, grid={"extra": {"data.max_seq_length": [64, 128]}})],
                             r"grid\.extra: 'data\.max_seq_length': extra axes vary model\.\* and train\.\* fields"),
    "data-map region that does not exist": (
        lambda t: ["sweep", spec_file(t, grid={"samplers": [{"type": "cartography", "region": "middle"}]})],
        r"grid\.samplers: sampler 'cartography': unknown region 'middle'; known: ambiguous, hard, easy"),
    "EL2N epoch that does not exist": (
        lambda t: ["sweep", spec_file(t, grid={"samplers": [{"type": "el2n", "epoch": 9}]})],
        r"sampler el2n: epoch 9 does not exist: the reference run records 3 epochs"),
    "drop_hardest outside [0, 1)": (
        lambda t: ["sweep", spec_file(t, grid={"samplers": [{"type": "el2n", "drop_hardest": 1.0}]})],
        r"sampler 'el2n': drop_hardest must be in \[0, 1\), got 1\.0"),
    "dynamics sampler without dynamics": (
        lambda t: train(t, spec_file(t, dynamics={"path": str(t / "runs" / "old")}), "--sampler", "forgetting",
                        "--data-pct", "0.5"),
        r"runs/old: no manifest\.json: not a training-dynamics folder"),
    "dynamics of another dataset": (
        lambda t: train(t, spec_file(t, dynamics={"path": dynamics_dir(t)}), "--sampler", "loss", "--data-pct", "0.5"),
        r"training dynamics belong to dataset 0123456789abcdef, not to this training set"),
    "two exclusive modes": (lambda t: ["sweep", spec_file(t, grid={"data_pct": [0.1], "samplers": [
        {"type": "kmeans", "mode": "num_clusters", "clusters_to_take": 2}]})],
        r"mode num_clusters picks its own subset size and excludes grid\.data_pct"),
    "steps without the steps schedule": (lambda t: ["sweep", spec_file(t, train={"steps": 100})],
                                         r"train: steps: 100 needs schedule: steps"),
    "seeds range backwards": (lambda t: ["sweep", spec_file(t, grid={"seeds": {"range": [8, 5]}})],
                              r"grid\.seeds: range takes N or \[start, stop\] with start < stop"),
    "dynamics seed and seeds": (lambda t: ["sweep", spec_file(t, dynamics={"seed": 1, "seeds": [1, 2]})],
                                r"spec\.yaml: dynamics: give seed or seeds, not both"),
    "unknown score policy": (lambda t: ["sweep", spec_file(t, grid={"samplers": [
        {"type": "score", "path": str(t / "good.tsv"), "policy": "middle"}]})],
        r"sampler 'score': unknown policy 'middle'; known: top, bottom, coverage"),
    "unknown text column": (lambda t: train(t, task_spec(t, {"columns": {"text": ["review"]}},
                                                        [{"name": "test", "split": "test"}])),
                            r"sentences'? split train: no column 'review' \(it has sentence, label\)"),
    "label outside data.labels": (lambda t: train(t, task_spec(t, {"labels": ["yes", "maybe"]},
                                                              [{"name": "test", "split": "test"}])),
                                  r"split train row 0: unknown label 'no'; expected one of yes, maybe"),
    "eval labels that map to no task label": (
        lambda t: train(t, task_spec(t, {}, [{"name": "ood", "file": eval_file(t, ["pos", "neg"])}])),
        r"eval set ood: its label 'neg' maps to 'neg', which is not a label of the task \(no, yes\): give it in "
        r"label_map"),
    "label_map from a label the set lacks": (
        lambda t: train(t, task_spec(t, {}, [{"name": "ood", "file": eval_file(t, ["yes"]),
                                              "label_map": {"pos": "yes"}}])),
        r"eval set ood: label_map names 'pos', which is not one of the set's labels \(yes\)"),
    "eval split that does not exist": (lambda t: train(t, task_spec(t, {}, [{"name": "dev", "split": "validation"}])),
                                       r"no split 'validation'; it has train, test"),
    "hub dataset that does not exist, offline": (
        lambda t: train(t, task_spec(t, {"dataset": "no-such-org/no-such-dataset"}, [{"name": "dev", "split": "test"}])),
        r"dataset 'no-such-org/no-such-dataset': cannot open it: .*\(offline, and nothing of it is cached"),
    "MNLI set name on a task of one's own": (
        lambda t: ["sweep", task_spec(t, {}, ["mnli_m"])],
        r"mnli_m is an evaluation set of the MNLI sources"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_line_exit_2_and_writes_nothing(case, workspace, capsys):
    make_argv, message = CASES[case]
    argv = make_argv(workspace)
    before = sorted(p.relative_to(workspace) for p in (workspace / "runs").rglob("*"))
    assert main(argv) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("tis-ray: error:")]
    assert len(errors) == 1, err
    assert "Traceback" not in err

    assert re.search(message, errors[0]), errors[0]
    assert sorted(p.relative_to(workspace) for p in (workspace / "runs").rglob("*")) == before
    assert (workspace / "runs" / "old" / "results.parquet").read_text() == "earlier results"
