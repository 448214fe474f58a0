"""GPU checks, run by `make gpu-check` on a machine with a CUDA GPU and the gpu extra (deselected elsewhere).

cuML agrees with scikit-learn; embeddings on the GPU match the CPU's; trials run in bf16 and fp16.
"""

import numpy as np
import pytest
import torch
from conftest import small_spec_dict, trial_config
from sklearn.metrics import adjusted_rand_score

from tis_ray.clustering import cuml_status, fit_clusters

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (make gpu-check)")]
# cuML rows run only where cuML imports: a GPU machine without a package index measures the torch side only
needs_cuml = pytest.mark.skipif(not cuml_status()[0], reason=f"cuML not usable here ({cuml_status()[1] or 'not installed'})")


def blobs(n_per=200, dim=16, k=5, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 20, size=(k, dim))
    x = np.concatenate([rng.normal(c, 0.5, size=(n_per, dim)) for c in centers]).astype(np.float32)
    return x, np.repeat(np.arange(k), n_per)


@needs_cuml
def test_cuml_kmeans_and_dbscan_agree_with_sklearn_on_separated_blobs():
    x, truth = blobs()
    for params in ({"algorithm": "kmeans", "n_clusters": 5}, {"algorithm": "dbscan", "eps": 3.0, "min_samples": 5}):
        gpu = fit_clusters(x, params, backend="cuml")
        cpu = fit_clusters(x, params, backend="sklearn")
        assert gpu.backend == "cuml"
        assert adjusted_rand_score(truth, gpu.labels_) >= 0.99, params
        assert adjusted_rand_score(cpu.labels_, gpu.labels_) >= 0.99, params


@needs_cuml
def test_cuml_kmeans_inertia_within_one_percent_on_embedding_shaped_rows():
    # 20,000 x 768 rows shaped like [CLS] vectors: norms in the tens, 64 loose groups
    rng = np.random.default_rng(1)
    centers = rng.normal(0, 1.0, size=(64, 768)) * 0.8
    x = (centers[rng.integers(0, 64, 20_000)] + rng.normal(0, 0.6, size=(20_000, 768))).astype(np.float32)
    params = {"algorithm": "kmeans", "n_clusters": 64}
    gpu = fit_clusters(x, params, backend="cuml", seed=0)
    cpu = fit_clusters(x, {**params, "method": "lloyd"}, backend="sklearn", seed=0)
    assert abs(gpu.extra["inertia"] - cpu.extra["inertia"]) / cpu.extra["inertia"] <= 0.01


def test_gpu_embeddings_match_cpu_embeddings_in_fp32(tmp_path):
    from datasets import Dataset

    from tis_ray.data import synthetic
    from tis_ray.data.tokenize import tokenize
    from tis_ray.device import Placement
    from tis_ray.embeddings import embed_dataset, load_embeddings
    from tis_ray.models import load_model, tiny_albert_tokenizer

    tok = tiny_albert_tokenizer()
    tokenized = tokenize(Dataset.from_dict(synthetic.generate_nli(300, seed=5, length_profile="mnli")), tok, 128)
    for name, where in (("cpu", Placement("cpu", "fp32")), ("gpu", Placement("cuda", "fp32"))):
        manifest = embed_dataset(load_model("tiny-albert", seed=0), tokenized, tok.pad_token_id, tmp_path / name,
                                 placement=where, batch_size=64)
        assert manifest["device"] == where.device
    diff = np.abs(np.asarray(load_embeddings(tmp_path / "gpu")) - np.asarray(load_embeddings(tmp_path / "cpu")))
    assert diff.max() <= 1e-3


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_tiny_albert_trial_in_half_precision(tmp_path, precision):
    from tis_ray.trial import run_trial

    if precision == "bf16" and torch.cuda.get_device_capability(0) < (8, 0):
        pytest.skip("bf16 needs compute capability >= 8.0")
    raw = small_spec_dict(train={"epochs": 2, "precision": precision})
    config = {**trial_config(tmp_path / "prepared", raw, seed=1, data_pct=1.0), "gpus": 1}
    final = run_trial(config, tmp_path / "trial")
    assert (final["device"], final["precision"]) == ("cuda", precision)
    assert final["mnli_m/acc"] > 0.5 and final["epoch"] == 2


def test_a_fractional_trial_stays_within_its_share_of_the_gpu(tmp_path):
    from tis_ray.trial import run_trial

    raw = small_spec_dict(train={"epochs": 1})
    config = {**trial_config(tmp_path / "prepared", raw, seed=1, data_pct=0.5), "gpus": 0.25}
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    try:
        final = run_trial(config, tmp_path / "trial")
        assert final["device"] == "cuda"
        assert torch.cuda.max_memory_reserved() <= torch.cuda.get_device_properties(0).total_memory * 0.25
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)  # the cap is per process: later tests get the card back
