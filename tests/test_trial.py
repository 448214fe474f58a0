"""Trains tiny-albert on the synthetic demo data: a few seconds per trial on 2 CPU cores."""

import json

import numpy as np
import pytest
from conftest import small_spec_dict, trial_config

from tis_ray.io import sha256_of_indices
from tis_ray.trial import run_trial

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def prepared_root(tmp_path_factory):
    return tmp_path_factory.mktemp("prepared")


def config(prepared_root, raw=None, **point):
    point = {"seed": 42, "data_pct": 1.0, **point} if "n_examples" not in point else {"seed": 42, **point}
    return trial_config(prepared_root, raw or small_spec_dict(train={"epochs": 4}), **point)


@pytest.fixture(scope="module")
def full_run(tmp_path_factory, prepared_root):
    out = tmp_path_factory.mktemp("trial")
    epochs = []
    final = run_trial(config(prepared_root), out, report=epochs.append)
    return out, final, epochs


def test_demo_trial_beats_chance_clearly(full_run):
    _, final, _ = full_run
    assert final["mnli_m/acc"] > 0.6  # chance is 1/3
    assert final["mnli_mm/acc"] > 0.45
    # the overlap shortcut: entailed lexical-overlap HANS pairs right, non-entailed ones mostly wrong
    assert final["hans/lexical_overlap/entailed"] > final["hans/lexical_overlap/non_entailed"]


def test_every_epoch_is_reported_once_with_all_metrics(full_run):
    out, final, epochs = full_run
    assert [m["epoch"] for m in epochs] == [1, 2, 3, 4]
    assert [m["final"] for m in epochs] == [0, 0, 0, 1]
    for key in ("mnli_m/acc", "mnli_mm/acc", "hans/acc", "hans/constituent/non_entailed", "node_id"):
        assert all(key in m for m in epochs)
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["final"]["mnli_m/acc"] == final["mnli_m/acc"] and len(saved["epochs"]) == 4
    assert final["n_train"] == 1200 and final["train_examples_per_s"] > 0


def test_subset_record_and_hans_predictions(full_run):
    out, final, _ = full_run
    indices = np.load(out / "subset_indices.npy", allow_pickle=False)
    record = json.loads((out / "subset.json").read_text())
    assert record["sha256"] == sha256_of_indices(indices) == final["subset_sha256"]
    assert sum(record["label_counts"].values()) == len(indices) == 1200
    lines = (out / "hans_predictions.txt").read_text().splitlines()
    assert lines[0] == "pairID,gold_label" and len(lines) == 1 + 180
    assert {line.split(",")[1] for line in lines[1:]} <= {"entailment", "non-entailment"}


def test_same_seed_reproduces_metrics_and_subset_with_length_buckets(tmp_path, prepared_root):
    raw = small_spec_dict(train={"epochs": 4, "group_by_length": True})
    a = run_trial(config(prepared_root, raw, data_pct=0.25), tmp_path / "a")
    b = run_trial(config(prepared_root, raw, data_pct=0.25), tmp_path / "b")
    assert a["n_train"] == 300 and a["subset_sha256"] == b["subset_sha256"]
    assert a["mnli_m/acc"] == b["mnli_m/acc"] and a["hans/acc"] == b["hans/acc"]


def test_freeze_base_leaves_the_encoder_bit_identical(prepared_root):
    import torch

    from tis_ray.data.prepare import open_prepared
    from tis_ray.device import Placement
    from tis_ray.models import tiny_albert_tokenizer
    from tis_ray.spec import build_spec
    from tis_ray.training import build_model, fit

    spec = build_spec(small_spec_dict(model={"freeze_base": True}, train={"epochs": 1}))
    data = open_prepared(config(prepared_root)["prepared"]["data"])
    tokenizer = tiny_albert_tokenizer()
    initial = build_model(spec, 42, len(tokenizer)).state_dict()
    trained = fit(spec, data.train.select(range(256)), seed=42, tokenizer=tokenizer,
                  placement=Placement("cpu", "fp32")).model.state_dict()
    encoder = [k for k in initial if not k.startswith("classifier.")]
    assert len(encoder) > 20 and all(torch.equal(initial[k], trained[k]) for k in encoder)
    assert not torch.equal(initial["classifier.weight"], trained["classifier.weight"])  # the head did train


def test_a_trial_prepares_nothing_itself(tmp_path, prepared_root, monkeypatch):
    import tis_ray.data.prepare
    import tis_ray.data.tokenize

    cfg = config(prepared_root, n_examples=64)

    def refuse(*args, **kwargs):
        raise AssertionError("a trial tokenized or loaded raw data itself")

    for module, name in ((tis_ray.data.tokenize, "tokenize"), (tis_ray.data.prepare, "prepare_data"),
                         (tis_ray.data.prepare, "load_data")):
        monkeypatch.setattr(module, name, refuse)
    assert run_trial(cfg, tmp_path)["n_train"] == 64


def test_freeze_base_trains_only_the_head(tmp_path, prepared_root):
    raw = small_spec_dict(model={"freeze_base": True}, train={"epochs": 1})
    final = run_trial(config(prepared_root, raw, n_examples=64), tmp_path)
    # ALBERT's head: pooler is part of the base model; the classifier is hidden_size x 3 + 3
    assert final["params_trainable"] == 128 * 3 + 3
    assert final["params_total"] > 100 * final["params_trainable"]


def test_a_trial_holding_a_gpu_it_cannot_use_stops_with_one_line(tmp_path, prepared_root):
    import torch

    from tis_ray.errors import TisRayError

    if torch.cuda.is_available():
        pytest.skip("this machine has a usable GPU")
    with pytest.raises(TisRayError, match="^trial holds 1 GPU but cannot use CUDA: ") as info:
        run_trial({**config(prepared_root), "gpus": 1}, tmp_path)
    assert "\n" not in str(info.value)


def test_zero_epochs_evaluates_the_model_as_built(tmp_path, prepared_root):
    epochs = []
    final = run_trial(config(prepared_root, small_spec_dict(train={"epochs": 0}), n_examples=64), tmp_path,
                      report=epochs.append)
    assert [m["epoch"] for m in epochs] == [0] and final["final"] == 1 and final["train_examples_per_s"] == 0.0
    assert 0.0 <= final["mnli_m/acc"] <= 1.0 and "hans/acc" in final
    assert (tmp_path / "hans_predictions.txt").is_file()


def test_training_loss_and_learning_rate_of_every_epoch(full_run):
    _, final, epochs = full_run
    losses = [m["train/loss"] for m in epochs]
    assert all(0 < loss < 3 for loss in losses) and losses[-1] < losses[0]  # the demo learns
    # linear schedule by hand: 1200 pairs / batch 32 = 38 steps per epoch, 152 in all, warm-up ceil(0.1 x 152) = 16
    # steps, then a linear decay to 0: after epoch k the rate is 3e-4 x (152 - 38k) / (152 - 16)
    assert [m["train/lr"] for m in epochs] == pytest.approx([3e-4 * (152 - 38 * k) / 136 for k in (1, 2, 3, 4)])
    assert final["train/loss"] == losses[-1]


def test_steps_schedule_gives_every_budget_the_same_optimizer_steps(tmp_path, prepared_root):
    raw = small_spec_dict(train={"epochs": 2, "schedule": "steps", "steps": 12})
    runs = {}
    for n in (64, 300):
        reported = []
        final = run_trial(config(prepared_root, raw, n_examples=n), tmp_path / str(n), report=reported.append)
        runs[n] = (final, reported)
    for n, (final, reported) in runs.items():
        # 12 steps, evaluated after 6 and 12 whatever the subset: 64 examples go round 3 times an evaluation
        assert final["train_steps"] == 12 and final["schedule"] == "steps" and final["n_train"] == n
        assert [m["epoch"] for m in reported] == [1, 2]
        assert final["train_examples_per_s"] > 0
    epochs = run_trial(config(prepared_root, small_spec_dict(train={"epochs": 2}), n_examples=64), tmp_path / "e")
    assert epochs["train_steps"] == 2 * 2 and epochs["schedule"] == "epochs"  # 64 / 32 = 2 steps an epoch


def test_repeated_random_trains_each_epoch_on_a_fresh_subset(tmp_path, prepared_root):
    raw = small_spec_dict(train={"epochs": 3})
    final = run_trial(config(prepared_root, raw, n_examples=100, sampler={"type": "repeated_random"}), tmp_path)
    passes = np.load(tmp_path / "epoch_indices.npy", allow_pickle=False)
    assert passes.shape == (3, 100) and final["n_train"] == 100
    assert len(np.unique(passes)) == 300  # 1,200 examples: three disjoint subsets before any repeats
    np.testing.assert_array_equal(np.load(tmp_path / "subset_indices.npy"), passes[0])
    record = json.loads((tmp_path / "subset.json").read_text())
    assert record["epoch_subsets"] == 3 and record["n_distinct_seen"] == 300
    assert final["train_steps"] == 3 * 4  # ceil(100 / 32) steps an epoch, as a fixed subset of 100


def test_per_example_outcomes_agree_with_the_accuracies(full_run):
    out, final, _ = full_run
    manifest = json.loads((out / "outcomes" / "manifest.json").read_text())
    assert set(manifest) == {"mnli_m", "mnli_mm", "hans"} and manifest["hans"]["rows"] == 180
    assert all(len(entry["fingerprint"]) == 16 for entry in manifest.values())
    for name, metric in (("mnli_m", "mnli_m/acc"), ("mnli_mm", "mnli_mm/acc"), ("hans", "hans/acc")):
        outcomes = np.load(out / "outcomes" / f"{name}.npy", allow_pickle=False)
        assert outcomes.dtype == np.float16 and outcomes.shape == (manifest[name]["rows"], 2)
        assert outcomes[:, 1].mean() == pytest.approx(final[metric], abs=1e-3)  # correct = margin > 0
        assert ((outcomes[:, 0] > 0) == (outcomes[:, 1] == 1)).all()
