"""The README's bad-input table: each row is one case. Every one ends with a one-line error naming the
problem, exit status 2, before any trial runs, and with nothing written or overwritten."""

import json
import re
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import small_spec_dict

from tis_ray.cli import main
from tis_ray.spec import SweepSpec

TSV_HEADER = "premise\thypothesis\tlabel\n"
SECONDS = 30  # the slowest case imports torch and transformers (a sweep's imports) on a loaded 2-core machine


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


def pair_task_spec(tmp_path, data):
    """A spec of a pair task of one's own from a CSV file labelled yes / no, evaluated on itself."""
    path = tmp_path / "pairs.csv"
    path.write_text("premise,hypothesis,label\n" + "".join(f"p{i},h{i},{'yes' if i % 2 else 'no'}\n" for i in range(8)))
    raw = small_spec_dict(storage_path=str(tmp_path / "runs"), eval_sets=[{"name": "test", "file": str(path)}])
    raw["data"] = {"source": "files", "train_file": str(path), "hans": None, **data}
    spec = tmp_path / "pairs.yaml"
    spec.write_text(yaml.safe_dump(raw))
    return str(spec)


def eval_file(tmp_path, labels):
    path = tmp_path / "ood.csv"
    path.write_text("sentence,label\n" + "".join(f"o{i},{label}\n" for i, label in enumerate(labels)))
    return str(path)


def train(tmp, spec, *extra):
    return ["train", spec, "--out", str(tmp / "runs" / "train_out"), *extra]


def raw_spec_file(tmp_path, **fields):
    """The small spec with top-level `fields` replaced or merged (storage_path too), in spec.yaml."""
    raw = small_spec_dict(**{"storage_path": str(tmp_path / "runs"), **fields})
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(raw))
    return str(path)


def text_spec(tmp_path, text):
    """A spec file holding `text` as it is (YAML syntax mistakes)."""
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    return str(path)


def typo_spec(tmp_path, typo):
    """The small spec with one more top-level key, `typo`."""
    raw = small_spec_dict(storage_path=str(tmp_path / "runs"))
    raw[typo] = {}
    return text_spec(tmp_path, yaml.safe_dump(raw))


def planted_run_dir(tmp_path):
    """A finished run of random-subset trials (tests/fake_runs.py) under runs/, for `tis-ray report`."""
    from fake_runs import planted_run

    planted_run(tmp_path / "runs" / "planted", seeds=3)
    return str(tmp_path / "runs" / "planted")


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
    "hub model not in the cache, offline": (  # conftest sets HF_HUB_OFFLINE=1
        lambda t: ["sweep", spec_file(t), "--set", "model.name=no-such-org/no-such-model"],
        r"model\.name: model 'no-such-org/no-such-model' is not in the local Hugging Face cache and the hub is "
        r"off .*huggingface-cli download no-such-org/no-such-model"),
    "hub model not in the cache, offline, dry run": (
        lambda t: ["sweep", spec_file(t), "--dry-run", "--set", "model.tokenizer=no-such-org/no-such-tokenizer"],
        r"model\.tokenizer: model 'no-such-org/no-such-tokenizer' is not in the local Hugging Face cache"),
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
    "MLflow file store without MLFLOW_ALLOW_FILE_STORE (tests/test_sweep.py sets it)": (
        lambda t: ["sweep", spec_file(t, tracking={"mlflow": (t / "mlruns").as_uri()})],
        r"tracking\.mlflow file:///\S+/mlruns: MLflow \S+ opens a file store only with MLFLOW_ALLOW_FILE_STORE=true"),
    "MLflow URI of a scheme MLflow has no store for": (
        lambda t: ["sweep", spec_file(t, tracking={"mlflow": "foo://tracking"})],
        r"tracking\.mlflow foo://tracking: the installed MLflow has no tracking store for foo:// URIs"),
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
    "NLI statistics on a task without an entailment label": (
        lambda t: train(t, pair_task_spec(t, {"nli": True})),
        r"the HANS overlap statistics need a label named 'entailment'; the task's labels are no, yes: label the "
        r"entailed pairs 'entailment', or set data\.nli: false"),
    "MNLI set name on a task of one's own": (
        lambda t: ["sweep", task_spec(t, {}, ["mnli_m"])],
        r"mnli_m is an evaluation set of the MNLI sources"),
    "attribute: a budget with too few trials": (
        lambda t: ["attribute", fake_run(t, budgets=(0.3, 0.7), seeds={0.3: 25, 0.7: 6})],
        r"budget 70 has fewer than 10 trials: the LDS compares subsets of one size"),
    "attribute: a score fitted on every held-out trial": (
        lambda t: ["attribute", fake_run(t), "--target", "mnli_m/acc", "--score", f"leaked={leaked_score(t)}"],
        r"score 'leaked' was fitted on every held-out trial \(5\) of this run"),
    "attribute: per-example scores of another size": (
        lambda t: ["attribute", fake_run(t), "--target", "margin:mnli_m", "--score",
                   f"trak={npy(t, np.zeros((5, 60)))}"],
        r"score 'trak' has 5 rows, one per evaluation example: it needs a margin:SET or examples:SET target"),
    "attribute: per-example fits with lasso": (
        lambda t: ["attribute", fake_run(t), "--per-example", "--estimator", "lasso"],
        r"--per-example fits ridge \(one multi-output fit\)"),
    # issue 27: resources no node has, subsets larger than the training set, unwritable storage, YAML syntax
    "more CPUs per trial than the machine has": (
        lambda t: ["sweep", spec_file(t, resources={"cpu": 100000})],
        r"resources: each trial asks for 100000 CPU and 0 GPU, more than this machine offers \(this machine: "),
    "more GPUs per trial than the machine has, dry run": (
        lambda t: ["sweep", spec_file(t, resources={"gpu": 64}), "--dry-run"],
        r"resources: each trial asks for 1 CPU and 64 GPU, more than this machine offers"),
    "subset larger than the training set": (
        lambda t: ["sweep", spec_file(t, grid={"data_pct": None, "n_examples": [100, 100000]})],
        r"grid\.n_examples: 100000 is more than the training set's 1200 examples: every such trial would fail"),
    "subset larger than the capped training set, dry run": (
        lambda t: ["sweep", spec_file(t, data={"max_train_examples": 300}, grid={"data_pct": None,
                                                                                 "n_examples": [500]}), "--dry-run"],
        r"grid\.n_examples: 500 is more than the training set's 300 examples \(after data\.max_train_examples"),
    "report baseline that does not exist": (
        lambda t: ["report", planted_run_dir(t), "--baseline", "radnom"],
        r"report baseline 'radnom' is not a sampler of these results; they have random; did you mean 'random'\?"),
    "report.baseline that is not in the grid": (
        lambda t: ["sweep", spec_file(t, report={"baseline": "radnom"})],
        r"report\.baseline 'radnom' is not a sampler of the grid \(random\); did you mean 'random'\?"),
    "storage_path inside a file": (
        lambda t: ["sweep", raw_spec_file(t, storage_path=str(t / "good.tsv" / "runs"))],
        r"storage_path: cannot create /\S+/good\.tsv/runs/t: /\S+/good\.tsv is a file, not a folder"),
    "storage_path where nothing can be written": (
        lambda t: ["sweep", raw_spec_file(t, storage_path="/proc/tis_ray_runs")],
        r"storage_path: cannot write in /proc \(to create /proc/tis_ray_runs/t\): "),
    "YAML syntax error": (lambda t: ["sweep", text_spec(t, "name: t\ngrid: {data_pct: [0.5\nseeds: [1]}\n")],
                          r"spec\.yaml:3:6: expected ',' or '\]', but got ':' \(while parsing a flow sequence at "
                          r"2:18\)"),
    "tab in YAML indentation": (lambda t: ["sweep", text_spec(t, "name: t\ngrid:\n\tseeds: [1]\n")],
                                r"spec\.yaml:3:1: found character '\\t' that cannot start any token"),
    # what the dry run reads of the local data (issue 27): the same lines as the sweep, in seconds
    "malformed TSV line, dry run": (
        lambda t: ["sweep", files_spec(t, TSV_HEADER + "a\tb\t0\nonly two\tfields\n"), "--dry-run"],
        r"train\.tsv:3: expected 3 fields as in the header, found 2"),
    "unknown text column, dry run": (
        lambda t: ["sweep", task_spec(t, {"columns": {"text": ["review"]}}, [{"name": "test", "split": "test"}]),
                   "--dry-run"],
        r"sentences'? split train: no column 'review' \(it has sentence, label\)"),
    "label outside data.labels, dry run": (
        lambda t: ["sweep", task_spec(t, {"labels": ["yes", "maybe"]}, [{"name": "test", "split": "test"}]),
                   "--dry-run"],
        r"split train row 0: unknown label 'no'; expected one of yes, maybe"),
    "eval labels that map to no task label, dry run": (
        lambda t: ["sweep", task_spec(t, {}, [{"name": "ood", "file": eval_file(t, ["pos", "neg"])}]), "--dry-run"],
        r"eval set ood: its label 'neg' maps to 'neg', which is not a label of the task"),
    "eval split that does not exist, dry run": (
        lambda t: ["sweep", task_spec(t, {}, [{"name": "dev", "split": "validation"}]), "--dry-run"],
        r"no split 'validation'; it has train, test"),
    # typos, each answered with the closest known name
    "typo of a sampler type": (lambda t: ["sweep", spec_file(t, grid={"samplers": [{"type": "kmaens"}]})],
                               r"unknown sampler 'kmaens'; known: .*; did you mean 'kmeans'\?"),
    "typo of a sampler field": (
        lambda t: ["sweep", spec_file(t, grid={"samplers": [{"type": "kmeans", "n_cluster": 8}]})],
        r"sampler 'kmeans': unknown parameter 'n_cluster'; known: .*; did you mean 'n_clusters'\?"),
    "typo of a section's field": (lambda t: ["sweep", spec_file(t, data={"colums": {"text": ["s"]}})],
                                  r"spec\.yaml: data\.colums: unknown field; did you mean 'columns'\?"),
    "typo of an eval set's field": (
        lambda t: ["sweep", task_spec(t, {}, [{"name": "dev", "split": "test", "lable_map": {}}])],
        r"eval_sets\.0\.lable_map: unknown field; did you mean 'label_map'\?"),
    "typo in a --set override": (lambda t: ["sweep", spec_file(t), "--set", "train.epoch=1"],
                                 r"spec\.yaml: train\.epoch: unknown field; did you mean 'epochs'\?"),
    # tis-ray plan's arguments (issue 28)
    "plan with power outside (alpha, 1)": (lambda t: ["plan", spec_file(t), "--power", "1.5"],
                                           r"--power must be between alpha \(0\.05\) and 1, got 1\.5"),
    "plan with a difference of 0": (lambda t: ["plan", spec_file(t), "--difference", "0"],
                                    r"the difference to detect must be positive, got 0 \(--difference\)"),
}

# a typo of every top-level field (its 2nd and 3rd letters swapped: trian), each answered with the field
TOP_LEVEL_TYPOS = {field: field[0] + field[2] + field[1] + field[3:] for field in SweepSpec.model_fields}
CASES.update({f"typo of the top-level field {field}": (
    lambda t, typo=typo: ["sweep", typo_spec(t, typo)], rf"spec\.yaml: {typo}: unknown field; did you mean '{field}'\?")
    for field, typo in TOP_LEVEL_TYPOS.items()})


def fake_run(tmp_path, budgets=(0.5,), seeds=24):
    """A hand-written run of random-subset trials (tests/fake_runs.py), outside runs/; returns its path."""
    from fake_runs import planted_run

    run_dir = tmp_path / "fake_run"
    if isinstance(seeds, dict):
        for i, pct in enumerate(budgets):
            planted_run(run_dir / str(i), budgets=(pct,), seeds=seeds[pct])
        for part in list(run_dir.iterdir()):  # one run: every trial folder side by side
            for trial in part.iterdir():
                trial.rename(run_dir / f"{part.name}_{trial.name}")
            part.rmdir()
    else:
        planted_run(run_dir, budgets=budgets, seeds=seeds)
    return str(run_dir)


def npy(tmp_path, values, name="score.npy"):
    np.save(tmp_path / name, values)
    return str(tmp_path / name)


def leaked_score(tmp_path):
    """A score whose manifest says it was fitted on every trial of fake_run (as attribute's own files are)."""
    trials = sorted(p.name for p in (tmp_path / "fake_run").iterdir())
    (tmp_path / "manifest.json").write_text(json.dumps({"fitted_on_trials": trials}))
    return npy(tmp_path, np.zeros(60))


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_line_exit_2_and_writes_nothing(case, workspace, capsys):
    make_argv, message = CASES[case][:2]
    argv = make_argv(workspace)
    before = sorted(p.relative_to(workspace) for p in (workspace / "runs").rglob("*"))
    started = time.monotonic()
    assert main(argv) == 2
    assert time.monotonic() - started < SECONDS, "a mistake must be reported in seconds"
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("tis-ray: error:")]
    assert len(errors) == 1, err
    assert "Traceback" not in err

    assert re.search(message, errors[0]), errors[0]
    assert shown_matches(README_ROWS[case][2], errors[0].removeprefix("tis-ray: error: ")), \
        f"README_ROWS[{case!r}] says something else than {errors[0]!r}"
    assert sorted(p.relative_to(workspace) for p in (workspace / "runs").rglob("*")) == before
    assert (workspace / "runs" / "old" / "results.parquet").read_text() == "earlier results"


# The README's "Bad input" table, generated from the cases: {case: (bad input, example, what you get)}. "What you
# get" is the error line with "..." where it names temporary paths or goes on; each fragment between "..." must
# occur in the case's error line, in order (backticks and "\|" as in Markdown). Cases with the same wording
# (a mistake caught by both the sweep and its dry run, the top-level typos) share one README row.
README_ROWS = {
    "malformed TSV line": ("malformed TSV line (also in `--dry-run`)", "a row with 2 fields under a 3-column header",
                           "train.tsv:3: expected 3 fields as in the header, found 2"),
    "label outside the label set": ("label outside the label set", "`maybe` in the label column",
                                    "train.tsv:2: unknown label 'maybe'; expected one of entailment, neutral, "
                                    "contradiction or 0-2"),
    "empty training set after sampling": ("empty training set after sampling",
                                          "DBSCAN labels that are all noise, noise excluded",
                                          "DBSCAN (eps=..., min_samples=...) found 0 cluster(s) and 1200 noise points "
                                          "of 1200: cluster sampling would be random sampling; ..."),
    "data_pct 0": ("data_pct 0", "`grid: {data_pct: [0]}`",
                   "spec.yaml: grid.data_pct.0: data_pct must be in (0, 1] (0.1 means 10%), got 0.0"),
    "data_pct 1.5": ("data_pct 1.5", "`grid: {data_pct: [0.5, 1.5]}`",
                     "spec.yaml: grid.data_pct.1: data_pct must be in (0, 1] (0.1 means 10%), got 1.5"),
    "unknown sampler type": ("unknown sampler type", "`{type: kmean}`",
                             "spec.yaml: grid.samplers: unknown sampler 'kmean'; known: random, stratified, kmeans, "
                             "dbscan, ...; did you mean 'kmeans'?"),
    "unknown sampler parameter": ("unknown sampler parameter", "`{type: kmeans, clusters: 8}`",
                                  "... sampler 'kmeans': unknown parameter 'clusters'; known: mode, n_clusters, "
                                  "clusters_to_take, cluster_order; did you mean 'n_clusters'?"),
    "cluster labels file of the wrong length": ("cluster labels file of the wrong length",
                                                "`--cluster-input-path` with 7 labels",
                                                "labels.npy: 7 cluster labels for a training set of 1200 examples: "
                                                "these labels belong to another dataset"),
    "embeddings from another dataset": ("embeddings from another dataset",
                                        "`--embeddings` whose manifest names another fingerprint",
                                        "emb: embeddings belong to dataset 0123456789abcdef, not to this training set "
                                        "(...); embed it again with tis-ray embed"),
    "missing model path": ("missing model path", "`--set model.name=./no/such/checkpoint`",
                           "model.name: no such checkpoint or folder: /.../no/such/checkpoint"),
    "hub model not in the cache, offline": (
        "hub model not in the cache, offline (also in `--dry-run`)", "`--set model.name=no-such-org/no-such-model` "
        "with `HF_HUB_OFFLINE=1`", "model...: model 'no-such-org/no-such-...' is not in the local Hugging Face "
        "cache and the hub is off (HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE); download it on a machine with network "
        "(huggingface-cli download no-such-org/no-such-...) into this cache, or give a local folder"),
    "hub model not in the cache, offline, dry run": (
        "hub model not in the cache, offline (also in `--dry-run`)", "`--set model.name=no-such-org/no-such-model` "
        "with `HF_HUB_OFFLINE=1`", "model...: model 'no-such-org/no-such-...' is not in the local Hugging Face "
        "cache and the hub is off (HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE); download it on a machine with network "
        "(huggingface-cli download no-such-org/no-such-...) into this cache, or give a local folder"),
    "missing data file": ("missing data file", "`data: {source: files, train_file: nope.tsv}`",
                          "data.train_file: no such file or folder: /.../nope.tsv"),
    "unreachable Ray address": ("unreachable Ray address", "`--address 127.0.0.1:9`",
                                "cannot reach a Ray cluster at 127.0.0.1:9 (is ray up / ray start --head running?)"),
    "extra axis over data": ("extra axis over data", "`grid: {extra: {data.max_seq_length: [64, 128]}}`",
                             "spec.yaml: grid.extra: 'data.max_seq_length': extra axes vary model.* and train.* "
                             "fields; ..."),
    "data-map region that does not exist": ("data-map region that does not exist", "`{type: cartography, region: "
                                            "middle}`", "spec.yaml: grid.samplers: sampler 'cartography': unknown "
                                            "region 'middle'; known: ambiguous, hard, easy"),
    "EL2N epoch that does not exist": ("EL2N epoch that does not exist", "`{type: el2n, epoch: 9}` with 3 epochs "
                                       "recorded", "spec.yaml: spec: sampler el2n: epoch 9 does not exist: the "
                                       "reference run records 3 epochs (dynamics.epochs)"),
    "drop_hardest outside [0, 1)": ("`drop_hardest` outside [0, 1)", "`{type: el2n, drop_hardest: 1.0}`",
                                    "... sampler 'el2n': drop_hardest must be in [0, 1), got 1.0"),
    "dynamics sampler without dynamics": ("dynamics sampler without dynamics", "`dynamics.path` to a folder that "
                                          "holds none", ".../old: no manifest.json: not a training-dynamics folder "
                                          "(tis-ray dynamics writes one)"),
    "dynamics of another dataset": ("dynamics of another dataset", "`dynamics.path` recorded on other data",
                                    "dyn: training dynamics belong to dataset 0123456789abcdef, not to this training "
                                    "set (...); record them again with tis-ray dynamics"),
    "two exclusive modes": ("two exclusive modes", "`mode: num_clusters` with `grid.data_pct`",
                            "sampler kmeans mode num_clusters picks its own subset size and excludes grid.data_pct / "
                            "grid.n_examples: ..."),
    "steps without the steps schedule": ("steps without the steps schedule", "`train: {steps: 100}`",
                                         "spec.yaml: train: steps: 100 needs schedule: steps (with epochs, each "
                                         "trial's steps follow from its subset)"),
    "seeds range backwards": ("seeds range backwards", "`grid: {seeds: {range: [8, 5]}}`",
                              "spec.yaml: grid.seeds: range takes N or [start, stop] with start < stop, got [8, 5]"),
    "dynamics seed and seeds": ("dynamics seed and seeds", "`dynamics: {seed: 1, seeds: [1, 2]}`",
                                "spec.yaml: dynamics: give seed or seeds, not both"),
    "unknown score policy": ("unknown score policy", "`{type: score, path: effects.npy, policy: middle}`",
                             "... sampler 'score': unknown policy 'middle'; known: top, bottom, coverage"),
    "unknown text column": ("unknown text column (also in `--dry-run`)", "`columns: {text: [review]}` on a dataset "
                            "without it", "dataset '/.../sentences' split train: no column 'review' (it has "
                            "sentence, label)"),
    "label outside data.labels": ("label outside `data.labels` (also in `--dry-run`)", "`labels: [yes, maybe]` on "
                                  "data labelled yes / no", "dataset '/.../sentences' split train row 0: unknown "
                                  "label 'no'; expected one of yes, maybe or 0-1"),
    "eval labels that map to no task label": (
        "eval labels that map to no task label (also in `--dry-run`)", "an eval file labelled pos / neg on a yes / no "
        "task, no `label_map`", "eval set ood: its label 'neg' maps to 'neg', which is not a label of the task (no, "
        "yes): give it in label_map, e.g. {neg: no}"),
    "label_map from a label the set lacks": ("`label_map` from a label the set lacks", "`label_map: {pos: yes}` on a "
                                             "set labelled yes", "eval set ood: label_map names 'pos', which is not "
                                             "one of the set's labels (yes)"),
    "eval split that does not exist": ("eval split that does not exist (also in `--dry-run`)", "`{name: dev, split: "
                                       "validation}` on a dataset with train and test", "dataset '/.../sentences': "
                                       "no split 'validation'; it has train, test"),
    "hub dataset that does not exist, offline": (
        "hub dataset that does not exist, or is not cached offline", "`dataset: no-such-org/no-such-dataset` with "
        "`HF_DATASETS_OFFLINE=1`", "dataset 'no-such-org/no-such-dataset': cannot open it: Couldn't reach "
        "'no-such-org/no-such-dataset' on the Hub (OfflineModeIsEnabled) (offline, and nothing of it is cached: run "
        "once with network access)"),
    "NLI statistics on a task without an entailment label": (
        "NLI statistics on a task without an entailment label", "`data: {source: files, nli: true}` on pairs "
        "labelled yes / no", "the HANS overlap statistics need a label named 'entailment'; the task's labels are no, "
        "yes: label the entailed pairs 'entailment', or set data.nli: false"),
    "MNLI set name on a task of one's own": (
        "MNLI set name on a task of one's own", "`eval_sets: [mnli_m]` with `data.source: hub`",
        "task.yaml: spec: mnli_m is an evaluation set of the MNLI sources; data.source hub names its sets as entries "
        "{name, split \\| file, ...}"),
    "attribute: a budget with too few trials": (
        "`attribute`: a budget with too few trials", "a run with 6 random-subset trials at one budget",
        "budget 70 has fewer than 10 trials: the LDS compares subsets of one size, within each budget; ..."),
    "attribute: a score fitted on every held-out trial": (
        "`attribute`: a score fitted on every held-out trial", "`--score` whose `manifest.json` lists every trial "
        "as `fitted_on_trials`", "score 'leaked' was fitted on every held-out trial (5) of this run: its LDS would "
        "score trials it saw; ..."),
    "attribute: per-example scores of another size": (
        "`attribute`: per-example scores without a per-example target", "a `[5, pool]` score with target "
        "`margin:mnli_m` of another size", "score 'trak' has 5 rows, one per evaluation example: it needs a "
        "margin:SET or examples:SET target of as many examples ..."),
    "attribute: per-example fits with lasso": ("`attribute`: per-example fits with lasso", "`--per-example "
                                               "--estimator lasso`", "--per-example fits ridge (one multi-output "
                                               "fit): leave out --estimator lasso"),
    "more CPUs per trial than the machine has": (
        "more CPUs or GPUs per trial than any node has (also in `--dry-run`; with `--address`, against the "
        "cluster's nodes and node types)", "`resources: {cpu: 64}` on 2 cores", "resources: each trial asks for "
        "... CPU and ... GPU, more than this machine offers (this machine: ... CPU, ... GPU): no trial would ever "
        "start; lower resources.cpu / resources.gpu to at most ... / ..., or run on a cluster with --address"),
    "more GPUs per trial than the machine has, dry run": (
        "more CPUs or GPUs per trial than any node has (also in `--dry-run`; with `--address`, against the "
        "cluster's nodes and node types)", "`resources: {cpu: 64}` on 2 cores", "resources: each trial asks for "
        "... CPU and ... GPU, more than this machine offers (this machine: ... CPU, ... GPU): no trial would ever "
        "start; lower resources.cpu / resources.gpu to at most ... / ..., or run on a cluster with --address"),
    "subset larger than the training set": (
        "subset larger than the training set (also in `--dry-run`, after `data.max_train_examples` / "
        "`data.pool_size`)", "`grid: {n_examples: [100000]}` on 1200 examples", "grid.n_examples: ... is more than "
        "the training set's ... examples...: every such trial would fail; give sizes up to ..., or grid.data_pct"),
    "subset larger than the capped training set, dry run": (
        "subset larger than the training set (also in `--dry-run`, after `data.max_train_examples` / "
        "`data.pool_size`)", "`grid: {n_examples: [100000]}` on 1200 examples", "grid.n_examples: ... is more than "
        "the training set's ... examples...: every such trial would fail; give sizes up to ..., or grid.data_pct"),
    "report baseline that does not exist": (
        "report baseline that does not exist", "`tis-ray report RUN_DIR --baseline radnom`", "report baseline "
        "'radnom' is not a sampler of these results; they have random; did you mean 'random'?"),
    "report.baseline that is not in the grid": (
        "`report.baseline` that is not in the grid", "`report: {baseline: radnom}`", "spec.yaml: spec: "
        "report.baseline 'radnom' is not a sampler of the grid (random); did you mean 'random'?"),
    "storage_path inside a file": ("`storage_path` inside a file", "`storage_path: good.tsv/runs`",
                                   "storage_path: cannot create /.../good.tsv/runs/...: /.../good.tsv is a file, not "
                                   "a folder"),
    "storage_path where nothing can be written": (
        "`storage_path` where nothing can be written (also in `--dry-run`)", "`storage_path: /proc/tis_ray_runs`",
        "storage_path: cannot write in /proc (to create /proc/tis_ray_runs/...): No such file or directory; choose "
        "a folder you can write, with storage_path or --set storage_path=..."),
    "YAML syntax error": ("YAML syntax error", "an unclosed `[` in `grid: {data_pct: [0.5`", "spec.yaml:3:6: "
                          "expected ',' or ']', but got ':' (while parsing a flow sequence at 2:18)"),
    "tab in YAML indentation": ("tab in YAML indentation", "a line indented with a tab", "spec.yaml:3:1: found "
                                "character '\\t' that cannot start any token (while scanning for the next token)"),
    "malformed TSV line, dry run": ("malformed TSV line (also in `--dry-run`)", "a row with 2 fields under a 3-column "
                                    "header", "train.tsv:3: expected 3 fields as in the header, found 2"),
    "unknown text column, dry run": ("unknown text column (also in `--dry-run`)", "`columns: {text: [review]}` on a "
                                     "dataset without it", "dataset '/.../sentences' split train: no column 'review' "
                                     "(it has sentence, label)"),
    "label outside data.labels, dry run": ("label outside `data.labels` (also in `--dry-run`)", "`labels: [yes, "
                                           "maybe]` on data labelled yes / no", "dataset '/.../sentences' split train "
                                           "row 0: unknown label 'no'; expected one of yes, maybe or 0-1"),
    "eval labels that map to no task label, dry run": (
        "eval labels that map to no task label (also in `--dry-run`)", "an eval file labelled pos / neg on a yes / no "
        "task, no `label_map`", "eval set ood: its label 'neg' maps to 'neg', which is not a label of the task (no, "
        "yes): give it in label_map, e.g. {neg: no}"),
    "eval split that does not exist, dry run": ("eval split that does not exist (also in `--dry-run`)", "`{name: dev, "
                                                "split: validation}` on a dataset with train and test", "dataset "
                                                "'/.../sentences': no split 'validation'; it has train, test"),
    "typo of a sampler type": ("typo of a sampler type", "`{type: kmaens}`", "spec.yaml: grid.samplers: unknown "
                               "sampler 'kmaens'; known: ...; did you mean 'kmeans'?"),
    "typo of a sampler field": ("typo of a sampler field", "`{type: kmeans, n_cluster: 8}`", "spec.yaml: "
                                "grid.samplers: sampler 'kmeans': unknown parameter 'n_cluster'; known: ...; did you "
                                "mean 'n_clusters'?"),
    "typo of a section's field": ("typo of a section's field", "`data: {colums: ...}`", "spec.yaml: data.colums: "
                                  "unknown field; did you mean 'columns'?"),
    "typo of an eval set's field": ("typo of an eval set's field", "`eval_sets: [{name: dev, split: test, lable_map: "
                                    "{}}]`", "task.yaml: eval_sets.0.lable_map: unknown field; did you mean "
                                    "'label_map'?"),
    "typo in a --set override": ("typo in a `--set` override", "`--set train.epoch=1`", "spec.yaml: train.epoch: "
                                 "unknown field; did you mean 'epochs'?"),
    "plan with power outside (alpha, 1)": ("`plan` with power outside (alpha, 1)", "`tis-ray plan SPEC --power 1.5`",
                                           "--power must be between alpha (0.05) and 1, got 1.5"),
    "plan with a difference of 0": ("`plan` with a difference of 0", "`tis-ray plan SPEC --difference 0`",
                                    "the difference to detect must be positive, got 0 (--difference) and 5 "
                                    "(--hans-difference)"),
    "MLflow file store without MLFLOW_ALLOW_FILE_STORE (tests/test_sweep.py sets it)": (
        "MLflow file store without `MLFLOW_ALLOW_FILE_STORE`", "`tracking: {mlflow: file:///.../mlruns}`",
        "tracking.mlflow file:///.../mlruns: MLflow ... opens a file store only with MLFLOW_ALLOW_FILE_STORE=true; "
        "set it, or point it at an MLflow server (http://HOST:PORT)"),
    "MLflow URI of a scheme MLflow has no store for": (
        "MLflow URI of a scheme MLflow has no store for", "`tracking: {mlflow: foo://tracking}`",
        "tracking.mlflow foo://tracking: the installed MLflow has no tracking store for foo:// URIs (...)"),
    **{f"typo of the top-level field {field}": (
        f"typo of a top-level field (each of the {len(TOP_LEVEL_TYPOS)} is a case)", "`tarin: {epochs: 1}`",
        "spec.yaml: ...: unknown field; did you mean '...'?") for field in TOP_LEVEL_TYPOS},
}

# rows tested elsewhere, where a mistake needs a cluster, object storage or a finished preparation
ELSEWHERE = [
    ("DBSCAN leaving >= 95% noise (after the embedding work, which it keeps: the one row that writes; "
     "`tests/test_preparation.py`)", "`--sampler dbscan --sampler-param eps=1.0e-9`",
     "DBSCAN (eps=1e-09, min_samples=50) leaves 100.0% of 1200 points as noise, so no trial was started: the "
     "k-distance knee suggests eps ~ ... (RUN_DIR/prepared/clusters/.../k_distance.png, which exists, also on S3); ..."),
    ("unknown storage scheme (`tests/test_storage.py`)", "`storage_path: foo://bucket/runs`",
     "storage foo://bucket/runs/NAME: Unrecognized filesystem type in URI: ..."),
    ("unreachable storage endpoint (`tests/test_storage.py`)",
     "`s3://bucket/runs?endpoint_override=127.0.0.1:9&scheme=http`",
     "cannot reach storage s3://bucket/runs/NAME?...: ... Could not connect to server ..."),
    ("storage bucket that does not exist (`tests/test_storage.py`)", "`s3://nobucket/runs?...`",
     "storage s3://nobucket/runs/NAME?...: bucket 'nobucket' does not exist; create it first"),
    ("local run directory not visible from a node (`tests/test_sweep.py`)",
     "`--address` with a `storage_path` on one node's disk",
     "run directory /... is not visible from node 10.0.0.7: use a filesystem mounted at the same path on every node "
     "(NFS / EFS), or an s3:// storage_path"),
    ("resume after the data changed (`tests/test_tasks.py`)", "`--resume` after train.csv was edited",
     "cannot resume RUN_DIR: test and train changed since the run started (test was read at sha256:16d9..., is now "
     "at sha256:02c7...); ..."),
    ("scores of another pool (after the data preparation, which it keeps; `tests/test_attribution.py`)",
     "`{type: score, path: ...}` whose `manifest.json` names another pool",
     ".../effects.npy: scores of training set 1085413f26bb4573, not of this one (5093fc35ff008dc8)"),
]

README = Path(__file__).parents[1] / "README.md"
TABLE_START = "<!-- generated from tests/test_bad_inputs.py: python tests/test_bad_inputs.py --write-readme -->"
TABLE_END = "<!-- end of the generated table -->"


def readme_table() -> str:
    """Return the README's bad-input table: one row per distinct wording of CASES, then the rows tested elsewhere."""
    rows = list(dict.fromkeys([README_ROWS[case] for case in CASES] + ELSEWHERE))
    return "\n".join(["| bad input | example | what you get |", "|---|---|---|",
                      *(f"| {mistake} | {example} | `{shown}` |" for mistake, example, shown in rows)])


def readme_section(text: str) -> str:
    """Return what the README holds between the generated table's markers."""
    return text.split(TABLE_START, 1)[1].split(TABLE_END, 1)[0].strip()


def shown_matches(shown: str, error: str) -> bool:
    """True when every '...'-separated fragment of a README row's "what you get" occurs in `error`, in order."""
    error = error.replace("`", "")
    at = 0
    for fragment in shown.replace("\\|", "|").split("..."):
        found = error.find(fragment, at)
        if found < 0:
            return False
        at = found + len(fragment)
    return True


def test_every_case_has_its_readme_row():
    assert set(README_ROWS) == set(CASES), "each case needs its README wording in README_ROWS (and no stale ones)"
    for case, (_, _, shown) in README_ROWS.items():
        assert "`" not in shown, case  # the table puts it in one code span


def test_the_readme_table_is_the_generated_one():
    assert readme_section(README.read_text()) == readme_table(), \
        "README.md's bad-input table differs from the cases: python tests/test_bad_inputs.py --write-readme"


def test_shown_matches_fragments_in_order():
    assert shown_matches("a ... c", "a b c") and shown_matches("x: ...", "x: y")
    assert not shown_matches("c ... a", "a b c") and not shown_matches("a \\| b", "a b")


if __name__ == "__main__":
    import sys

    if sys.argv[1:] == ["--readme"]:
        print(readme_table())
    elif missing := [case for case in CASES if case not in README_ROWS]:
        sys.exit(f"give these cases their README wording in README_ROWS first: {missing}")
    elif sys.argv[1:] == ["--write-readme"]:
        text = README.read_text()
        before, rest = text.split(TABLE_START, 1)
        README.write_text(f"{before}{TABLE_START}\n{readme_table()}\n{TABLE_END}{rest.split(TABLE_END, 1)[1]}")
    else:
        sys.exit("usage: python tests/test_bad_inputs.py --readme | --write-readme")
