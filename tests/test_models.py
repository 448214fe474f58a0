"""Label order can never be silently wrong: named orders are kept, generic LABEL_i heads need model.label_order."""

import numpy as np
import pytest
import yaml
from conftest import small_spec_dict
from datasets import Dataset
from transformers import AlbertConfig, AlbertForSequenceClassification

from tis_ray.cli import main
from tis_ray.errors import TisRayError
from tis_ray.evaluation import hans_prediction_labels
from tis_ray.models import TINY_ALBERT_CONFIG, load_model, model_label_ids, tiny_albert_tokenizer
from tis_ray.training import labels_in_model_order

ORIGINAL_GLUE_ORDER = ["contradiction", "entailment", "neutral"]  # transformers 2.x's MNLI processor


def checkpoint(folder, id2label):
    tokenizer = tiny_albert_tokenizer()
    config = AlbertConfig(vocab_size=len(tokenizer), num_labels=3, id2label=dict(enumerate(id2label)),
                          label2id={n: i for i, n in enumerate(id2label)}, **TINY_ALBERT_CONFIG)
    AlbertForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


def test_a_named_order_is_kept(tmp_path):
    model = load_model(checkpoint(tmp_path / "named", ORIGINAL_GLUE_ORDER))
    assert model_label_ids(model) == [1, 2, 0]  # entailment, neutral, contradiction -> the model's ids
    with pytest.raises(TisRayError, match="contradicts .* own id2label"):
        load_model(str(tmp_path / "named"), label_order=["entailment", "neutral", "contradiction"])


def test_a_generic_order_is_refused(tmp_path):
    with pytest.raises(TisRayError, match=r"labels are named label_0, label_1, label_2: .* model\.label_order"):
        load_model(checkpoint(tmp_path / "generic", ["LABEL_0", "LABEL_1", "LABEL_2"]))


def test_a_generic_order_with_label_order_drives_training_labels_and_hans(tmp_path):
    path = checkpoint(tmp_path / "generic", ["LABEL_0", "LABEL_1", "LABEL_2"])
    model = load_model(path, label_order=ORIGINAL_GLUE_ORDER)
    assert model.config.id2label == dict(enumerate(ORIGINAL_GLUE_ORDER))
    train = Dataset.from_dict({"label": [0, 1, 2, 0]})  # dataset ids: entailment, neutral, contradiction
    assert labels_in_model_order(train, model)["label"] == [1, 2, 0, 1]
    assert hans_prediction_labels(np.array([1, 0, 2]), model.config.id2label) == [
        "entailment", "non-entailment", "non-entailment"]


@pytest.mark.slow
def test_train_with_a_generic_checkpoint_needs_label_order(tmp_path, capsys):
    path = checkpoint(tmp_path / "generic", ["LABEL_0", "LABEL_1", "LABEL_2"])
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(small_spec_dict(model={"name": path}, train={"epochs": 1})))
    assert main(["train", str(spec), "--n-examples", "64", "--out", str(tmp_path / "a")]) == 2
    assert "model.label_order" in capsys.readouterr().err and not (tmp_path / "a").exists()
    assert main(["train", str(spec), "--n-examples", "64", "--out", str(tmp_path / "b"),
                 "--set", "model.label_order=[contradiction, entailment, neutral]"]) == 0
    lines = (tmp_path / "b" / "hans_predictions.txt").read_text().splitlines()
    assert lines[0] == "pairID,gold_label" and len(lines) == 181


def test_a_task_of_two_labels_gets_a_two_way_head_by_name(tmp_path):
    model = load_model("tiny-albert", labels=("negative", "positive"))
    assert model.config.num_labels == 2 and model.config.id2label == {0: "negative", 1: "positive"}
    assert model_label_ids(model, ("positive", "negative")) == [1, 0]
    # a 3-way NLI checkpoint on a 2-label task: its head does not fit, so a fresh one is built for the task
    fresh = load_model(checkpoint(tmp_path / "nli", ORIGINAL_GLUE_ORDER), labels=("negative", "positive"))
    assert fresh.config.id2label == {0: "negative", 1: "positive"}
    assert fresh.classifier.out_features == 2
    with pytest.raises(TisRayError, match="names no 'entailment' label"):
        model_label_ids(fresh)


def test_a_four_label_head_with_generic_names_is_refused_without_label_order(tmp_path):
    four = ["LABEL_0", "LABEL_1", "LABEL_2", "LABEL_3"]
    tokenizer = tiny_albert_tokenizer()
    config = AlbertConfig(vocab_size=len(tokenizer), num_labels=4, id2label=dict(enumerate(four)),
                          label2id={n: i for i, n in enumerate(four)}, **TINY_ALBERT_CONFIG)
    AlbertForSequenceClassification(config).save_pretrained(tmp_path / "four")
    labels = ("entailment", "neutral", "contradiction", "unrelated")
    with pytest.raises(TisRayError, match=r"4-way classification head whose labels are named label_0"):
        load_model(str(tmp_path / "four"), labels=labels)
    order = ["unrelated", "entailment", "neutral", "contradiction"]
    model = load_model(str(tmp_path / "four"), labels=labels, label_order=order)
    assert model_label_ids(model, labels) == [1, 2, 3, 0]


def test_a_saved_checkpoint_is_readable_by_others_under_the_users_umask(tmp_path):
    import os

    from tis_ray.models import save_checkpoint

    old = os.umask(0o022)
    try:
        folder = save_checkpoint(load_model("tiny-albert"), tiny_albert_tokenizer(), tmp_path / "model")
    finally:
        os.umask(old)
    modes = {p.name: p.stat().st_mode & 0o777 for p in folder.iterdir()}
    assert "model.safetensors" in modes and "config.json" in modes  # transformers wrote the weights 0600
    assert set(modes.values()) == {0o644}, modes
    assert folder.stat().st_mode & 0o777 == 0o755
    assert load_model(str(folder)).config.num_labels == 3  # still a checkpoint load_model reads


def test_a_hub_model_that_is_not_there_fails_in_seconds_offline_and_online(tmp_path, monkeypatch, capsys):
    import socket
    import time

    from huggingface_hub import constants

    from tis_ray.errors import SpecError
    from tis_ray.hub import check_hub_models
    from tis_ray.spec import build_spec

    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(yaml.safe_dump(small_spec_dict(storage_path=str(tmp_path / "runs"))))
    started = time.monotonic()  # offline (conftest): the local cache alone decides, one line, nothing written
    assert main(["sweep", str(spec_path), "--set", "model.name=no-such-org/no-such-model"]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("tis-ray: error:")]
    assert time.monotonic() - started < 5 and len(errors) == 1 and not (tmp_path / "runs").exists()
    assert "huggingface-cli download no-such-org/no-such-model" in errors[0]
    # online with the hub unreachable (a closed port): one request, no retries, the same fix
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    for variable in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.setenv(variable, "0")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{port}")
    started = time.monotonic()
    with pytest.raises(SpecError, match="the hub cannot be reached .*huggingface-cli download no-such-org/x"):
        check_hub_models(build_spec(small_spec_dict(model={"name": "no-such-org/x"})))
    assert time.monotonic() - started < 5
    check_hub_models(build_spec(small_spec_dict()))  # tiny-albert: nothing to ask
