import numpy as np
import pytest
import torch
from datasets import Dataset

from tis_ray.data import synthetic
from tis_ray.data.tokenize import fingerprint_dataset, tokenize
from tis_ray.device import Placement
from tis_ray.embeddings import embed_dataset, load_embeddings
from tis_ray.errors import TisRayError
from tis_ray.models import load_model, tiny_albert_tokenizer

CPU = Placement("cpu", "fp32")


@pytest.fixture(scope="module")
def setup():
    tok = tiny_albert_tokenizer()
    raw = Dataset.from_dict(synthetic.generate_nli(37, seed=5, length_profile="mnli"))
    return tok, raw, tokenize(raw, tok, 128), load_model("tiny-albert", seed=0)


@pytest.mark.parametrize("pooling", ["cls", "mean", "pooler"])
def test_row_i_is_example_i(setup, tmp_path, pooling):
    tok, raw, tokenized, model = setup
    manifest = embed_dataset(model, tokenized, tok.pad_token_id, tmp_path, placement=CPU, pooling=pooling, batch_size=8,
                             fingerprint="fp", model_name="tiny-albert")
    matrix = load_embeddings(tmp_path, fingerprint="fp")
    assert matrix.shape == (37, model.config.hidden_size) == (manifest["rows"], manifest["dim"])
    model.eval()
    for i in (0, 13, 36):  # each example alone: no padding, no batch neighbours
        enc = tok(raw["premise"][i], raw["hypothesis"][i], return_tensors="pt", return_token_type_ids=True)
        with torch.inference_mode():
            out = model.base_model(**enc)
        alone = {"cls": out.last_hidden_state[0, 0], "mean": out.last_hidden_state[0].mean(0),
                 "pooler": out.pooler_output[0]}[pooling]
        np.testing.assert_allclose(matrix[i], alone.numpy(), atol=2e-5)


def test_embeddings_of_another_dataset_are_refused(setup, tmp_path):
    tok, raw, tokenized, model = setup
    embed_dataset(model, tokenized, tok.pad_token_id, tmp_path, placement=CPU, fingerprint=fingerprint_dataset(raw))
    other = Dataset.from_dict(synthetic.generate_nli(37, seed=6))
    with pytest.raises(TisRayError, match="belong to dataset"):
        load_embeddings(tmp_path, fingerprint=fingerprint_dataset(other))
    np.load(tmp_path / "embeddings.npy", allow_pickle=False)  # plain .npy, no pickle
    assert not list(tmp_path.glob(".*tmp"))  # written via rename, no temporary left


def test_float16_output(setup, tmp_path):
    tok, _, tokenized, model = setup
    embed_dataset(model, tokenized, tok.pad_token_id, tmp_path, placement=CPU, dtype="float16")
    assert load_embeddings(tmp_path).dtype == np.float16
