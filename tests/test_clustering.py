import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from tis_ray import clustering
from tis_ray.clustering import fit_clusters, load_clusters, resolve_backend, save_clusters
from tis_ray.errors import TisRayError


def blobs(n_per=60, centers=((0, 0), (10, 0), (0, 10)), seed=0):
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.normal(c, 0.5, size=(n_per, 2)) for c in centers]).astype(np.float32)
    return x, np.repeat(np.arange(len(centers)), n_per)


@pytest.mark.parametrize("method", ["refine", "lloyd", "minibatch"])
def test_kmeans_recovers_blobs_and_distances_match_centers(method):
    x, truth = blobs()
    result = fit_clusters(x, {"algorithm": "kmeans", "n_clusters": 3, "method": method}, backend="sklearn")
    assert adjusted_rand_score(truth, result.labels_) == 1.0
    expected = np.linalg.norm(x - result.centers_[result.labels_], axis=1)
    np.testing.assert_allclose(result.distances_, expected, rtol=1e-5)
    assert result.backend == "sklearn"


def test_dbscan_marks_outlier_as_noise():
    x, truth = blobs()
    x = np.vstack([x, [[50, 50]]]).astype(np.float32)
    result = fit_clusters(x, {"algorithm": "dbscan", "eps": 1.5, "min_samples": 5}, backend="sklearn")
    assert result.labels_[-1] == -1
    assert adjusted_rand_score(truth, result.labels_[:-1]) == 1.0 and result.n_clusters == 3


def test_save_load_roundtrip_without_pickle_and_refusals(tmp_path):
    x, _ = blobs()
    result = fit_clusters(x, {"algorithm": "kmeans", "n_clusters": 3}, backend="sklearn", fingerprint="abc")
    folder = save_clusters(result, tmp_path / "c")
    for name in ("labels", "centers", "distances"):
        np.load(folder / f"{name}.npy", allow_pickle=False)
    loaded = load_clusters(folder, expected_rows=len(x), fingerprint="abc")
    assert np.array_equal(loaded.labels_, result.labels_)
    with pytest.raises(TisRayError, match="180 cluster labels for a training set of 100"):
        load_clusters(folder, expected_rows=100)
    with pytest.raises(TisRayError, match="computed for dataset abc"):
        load_clusters(folder, expected_rows=len(x), fingerprint="other")


def test_backend_selection(monkeypatch):
    monkeypatch.setattr(clustering, "cuml_available", lambda: False)
    assert resolve_backend("auto") == "sklearn"
    assert resolve_backend("sklearn") == "sklearn"
    with pytest.raises(TisRayError, match="cuML/CuPy are not importable"):
        resolve_backend("cuml")
    with pytest.raises(TisRayError, match="unknown clustering backend"):
        resolve_backend("gpu")
    monkeypatch.setattr(clustering, "cuml_available", lambda: True)
    assert resolve_backend("auto") == "cuml"
