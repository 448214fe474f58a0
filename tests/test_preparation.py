"""The shared preparation: a one-point `tis-ray train`, the reference fine-tune, and the data flow's direction."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import NOISE_STOP, Calls, small_spec_dict

from tis_ray.cli import main

pytestmark = pytest.mark.slow


def spec_file(tmp_path, **overrides):
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(small_spec_dict(train={"epochs": 1}, **overrides)))
    return str(path)


def test_train_on_explicit_indices_records_them_as_such(tmp_path):
    np.save(tmp_path / "subset.npy", np.array([9, 3, 3, 500, 41, 9, 7]), allow_pickle=False)
    out = tmp_path / "out"
    assert main(["train", spec_file(tmp_path), "--indices", str(tmp_path / "subset.npy"), "--out", str(out)]) == 0
    subset = json.loads((out / "subset.json").read_text())
    final = json.loads((out / "metrics.json").read_text())["final"]
    for record in (subset, final):  # 5 distinct indices: sampler 'indices', n_examples 5, no data_pct
        assert record["budget_kind"] == "indices" and record["n_examples"] == 5 and record["data_pct"] is None
    assert subset["sampler"] == {"type": "indices", "path": str(tmp_path / "subset.npy")}
    assert final["sampler"] == "indices" and final["n_train"] == 5
    assert np.load(out / "subset_indices.npy", allow_pickle=False).tolist() == [3, 7, 9, 41, 500]
    # the file travels with the preparation: trials on other nodes read the run directory's copy
    copies = list((out / "prepared" / "indices").glob("subset-*/subset.npy"))
    assert len(copies) == 1 and copies[0].read_bytes() == (tmp_path / "subset.npy").read_bytes()


def test_indices_exclude_a_sampler_and_must_fit_the_training_set(tmp_path, capsys):
    np.save(tmp_path / "subset.npy", np.array([1, 5000]), allow_pickle=False)
    spec = spec_file(tmp_path)
    assert main(["train", spec, "--indices", str(tmp_path / "subset.npy"), "--data-pct", "0.5"]) == 2
    assert "--indices is the subset" in capsys.readouterr().err
    assert main(["train", spec, "--indices", str(tmp_path / "subset.npy"), "--out", str(tmp_path / "o")]) == 2
    assert "indices must be in [0, 1200)" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_reference_fine_tune_writes_a_model_and_no_trial_files(tmp_path):
    out = tmp_path / "out"
    assert main(["train", spec_file(tmp_path, clustering={"embedding_epochs": 1}), "--sampler", "kmeans",
                 "--sampler-param", "n_clusters=4", "--cluster-only", "--out", str(out)]) == 0
    reference = out / "prepared" / "reference_model"
    assert {p.name for p in reference.iterdir()} == {"config.json", "model.safetensors", "tokenizer.json",
                                                      "tokenizer_config.json", "step.json"}
    for name in ("subset.json", "subset_indices.npy", "metrics.json", "hans_predictions.txt"):
        assert not list(out.rglob(name)), name  # --cluster-only stops before the trial; the reference run wrote none
    assert (out / "prepared" / "embeddings" / "embeddings.npy").is_file()


def test_preparation_does_not_import_the_trial():
    code = "import sys, tis_ray.preparation; print('tis_ray.trial' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "False\n"


def test_each_model_reads_the_data_through_its_own_tokenizer(tmp_path):
    from test_models import checkpoint

    from tis_ray.data.tokenize import fingerprint_tokenizer
    from tis_ray.models import load_tokenizer
    from tis_ray.preparation import prepare_shared, tokenizer_key, trial_inputs
    from tis_ray.spec import build_spec

    other = checkpoint(tmp_path / "cased", ["entailment", "neutral", "contradiction"])
    spec = build_spec(small_spec_dict(grid={"extra": {"model.name": ["tiny-albert", other]}}))
    prepared = prepare_shared(spec, tmp_path / "run", gpus=0)
    assert len(prepared["data_by_tokenizer"]) == 2  # tiny-albert's tokenizer and the checkpoint's own
    for name in ("tiny-albert", other):  # each model's data was tokenized by that model's tokenizer
        folder = next(tmp_path / "run" / f for k, f in prepared["data_by_tokenizer"].items()
                      if k == tokenizer_key(name))
        manifest = json.loads((folder / "data.json").read_text())
        assert fingerprint_tokenizer(load_tokenizer(name)) in manifest["train"]
    folders = {trial_inputs(prepared, spec, point, tmp_path / "run")["data"] for point in spec.grid_points()}
    assert len(folders) == 2  # each trial reads the data of its own model


def test_dynamics_are_recorded_once_from_the_training_passes(tmp_path, monkeypatch):
    from transformers import AlbertForSequenceClassification

    import tis_ray.training
    from tis_ray.dynamics import load_dynamics
    from tis_ray.preparation import prepare_shared, trial_inputs
    from tis_ray.spec import build_spec
    from tis_ray.trial import run_trial

    spec = build_spec(small_spec_dict(train={"epochs": 1}, clustering={"embedding_epochs": 1},
                                      dynamics={"epochs": 2}, grid={"data_pct": [0.25], "samplers": [
                                          {"type": "cartography", "region": "ambiguous"}, {"type": "el2n", "epoch": 2},
                                          {"type": "kmeans", "n_clusters": 4}]}))
    fits, forwards = [], []
    real_fit, real_forward = tis_ray.training.fit, AlbertForSequenceClassification.forward
    monkeypatch.setattr(tis_ray.training, "fit", lambda *a, **k: fits.append(k) or real_fit(*a, **k))
    monkeypatch.setattr(AlbertForSequenceClassification, "forward",
                        lambda self, *a, **k: forwards.append(self.training) or real_forward(self, *a, **k))
    prepared = prepare_shared(spec, tmp_path / "run", gpus=0)
    # one reference run serves both dynamics samplers and the kmeans embeddings
    assert len(fits) == 1 and fits[0]["recorder"] is not None
    assert prepared["dynamics"] == "prepared/dynamics"
    dynamics = load_dynamics(tmp_path / "run" / prepared["dynamics"])
    assert dynamics.probs.shape == (2, 1200, 3) and not np.isnan(dynamics.probs).any()
    np.testing.assert_allclose(dynamics.probs.sum(axis=2), 1.0, rtol=1e-5)
    np.testing.assert_allclose(dynamics.loss, -np.log(dynamics.gold_prob()), rtol=1e-4)
    # recorded from the training forward passes: 2 epochs x 38 batches of 32, no extra pass in train mode
    assert sum(forwards) == 2 * 38
    for point in spec.grid_points()[:2]:
        inputs = trial_inputs(prepared, spec, point, tmp_path / "run")
        final = run_trial({"spec": spec.model_dump(mode="json"), "point": point.model_dump(), "gpus": 0,
                           "prepared": inputs}, tmp_path / point.sampler["type"])
        assert final["n_train"] == 300 and final["sampler"] == point.sampler["type"]


def test_tis_ray_dynamics_records_a_folder_a_spec_can_reuse(tmp_path, capsys):
    from tis_ray.dynamics import load_dynamics

    spec = spec_file(tmp_path, dynamics={"epochs": 2})
    assert main(["dynamics", spec, "--out", str(tmp_path / "dyn")]) == 0
    assert "training dynamics of 1200 examples over 2 epochs" in capsys.readouterr().out
    dynamics = load_dynamics(tmp_path / "dyn")
    assert dynamics.probs.shape == (2, 1200, 3) and (tmp_path / "dyn" / "model" / "config.json").is_file()
    reuse = spec_file(tmp_path, dynamics={"path": str(tmp_path / "dyn")})
    assert main(["train", reuse, "--sampler", "cartography", "--sampler-param", "region=hard", "--data-pct", "0.1",
                 "--out", str(tmp_path / "t")]) == 0
    subset = np.load(tmp_path / "t" / "subset_indices.npy", allow_pickle=False)
    confidence = dynamics.confidence()
    rest = np.setdiff1d(np.arange(1200), subset)
    assert len(subset) == 120 and confidence[subset].max() <= confidence[rest].min()  # the least confident tenth
    assert not (tmp_path / "t" / "prepared" / "reference_model").exists()  # nothing was trained again


def test_noise_stop_keeps_the_finished_steps_and_a_rerun_reuses_them(tmp_path, capsys, monkeypatch):
    import re

    calls = Calls(monkeypatch)
    spec, out = spec_file(tmp_path, clustering={"embedding_epochs": 1}), tmp_path / "out"
    argv = ["train", spec, "--sampler", "dbscan", "--data-pct", "0.5", "--out", str(out), "--cluster-only"]
    assert main([*argv, "--sampler-param", "eps=1.0e-9"]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("tis-ray: error:")]
    assert len(errors) == 1 and (plot := re.search(NOISE_STOP, errors[0]))
    assert Path(plot.group(1)).is_file()  # the plot the message names is there to look at
    assert (calls.fits, calls.embeds) == (1, 1)
    for step in ("reference_model", "embeddings"):
        assert (out / "prepared" / step / "step.json").is_file(), step
    # another eps: a new clustering, the same embeddings and reference model, computed neither again
    assert main([*argv, "--sampler-param", "eps=2.0e-9"]) == 2
    assert (calls.fits, calls.embeds) == (1, 1)
    assert len(list((out / "prepared" / "clusters").iterdir())) == 2
    # the reference run's settings changed: its key differs, so it (and the embeddings) are computed again
    assert main([*argv, "--sampler-param", "eps=2.0e-9", "--set", "train.learning_rate=1e-4"]) == 2
    assert (calls.fits, calls.embeds) == (2, 2)


def test_bad_input_before_any_work_still_writes_nothing(tmp_path, capsys):
    out = tmp_path / "out"
    spec = spec_file(tmp_path, data={"source": "files", "train_file": str(tmp_path / "t.tsv"),
                                     "matched_file": str(tmp_path / "t.tsv"), "hans": None})
    (tmp_path / "t.tsv").write_text("premise\thypothesis\tlabel\na\tb\tmaybe\n")
    assert main(["train", spec, "--out", str(out)]) == 2
    assert "unknown label 'maybe'" in capsys.readouterr().err and not out.exists()


def test_centroid_modes_without_distances_are_refused_at_validation(tmp_path, capsys):
    np.save(tmp_path / "labels.npy", np.arange(1200) % 4, allow_pickle=False)  # bare labels, no distances
    for mode, needs in (("centroid", "distances.npy"), ("centroid_overall", "centroid_nearest.npy")):
        assert main(["train", spec_file(tmp_path), "--sampler", "kmeans", "--sampler-param", f"mode={mode}",
                     "--n-examples", "4", "--cluster-input-path", str(tmp_path / "labels.npy"),
                     "--out", str(tmp_path / "o")]) == 2
        err = capsys.readouterr().err
        assert f"sampler kmeans mode {mode} needs {needs} beside the cluster labels" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_a_new_sampler_is_one_class_and_gets_what_it_declares(tmp_path):
    """A sampler that reads the embeddings itself: the preparation computes them, the trial's pool holds them."""
    from conftest import small_spec_dict

    from tis_ray import samplers
    from tis_ray.data.prepare import open_prepared
    from tis_ray.preparation import prepare_shared, trial_inputs
    from tis_ray.spec import GridPoint, build_spec
    from tis_ray.trial import select_subset

    class NearMean(samplers.Sampler):
        """The examples whose embedding is nearest the mean embedding."""

        name = "near_mean"
        needs = frozenset({"embeddings"})

        def _select(self, pool, budget, rng):
            distance = np.linalg.norm(np.asarray(pool.embeddings) - np.asarray(pool.embeddings).mean(0), axis=1)
            return np.argsort(distance, kind="stable")[:budget]

    samplers.register(NearMean)
    try:
        raw = small_spec_dict(train={"epochs": 1}, clustering={"embedding_epochs": 1},
                              grid={"data_pct": [0.1], "samplers": [{"type": "near_mean"}]})
        spec = build_spec(raw)
        prepared = prepare_shared(spec, tmp_path, gpus=0)
        point = GridPoint(data_pct=0.1, sampler={"type": "near_mean"})
        inputs = trial_inputs(prepared, spec, point, tmp_path)
        assert inputs["embeddings"] and inputs["clusters"] is None and inputs["dynamics"] is None
        data = open_prepared(inputs["data"])
        indices, pool = select_subset(point, data, None, embeddings_dir=inputs["embeddings"])
        embeddings = np.load(Path(inputs["embeddings"]) / "embeddings.npy", allow_pickle=False)
        by_hand = np.sort(np.argsort(np.linalg.norm(embeddings - embeddings.mean(0), axis=1), kind="stable")[:120])
        assert indices.tolist() == by_hand.tolist() and len(indices) == 120
    finally:
        del samplers.SAMPLERS["near_mean"], samplers.ENTRY_MODELS["near_mean"]
