import json

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
    monkeypatch.setattr(clustering, "cuml_status", lambda: (False, None))
    assert resolve_backend("auto") == "sklearn"
    assert resolve_backend("sklearn") == "sklearn"
    with pytest.raises(TisRayError, match="cuml asked for, but cuML not installed or no GPU"):
        resolve_backend("cuml")
    with pytest.raises(TisRayError, match="unknown clustering backend"):
        resolve_backend("gpu")
    monkeypatch.setattr(clustering, "cuml_status", lambda: (False, "ImportError: libcuml++.so"))
    with pytest.raises(TisRayError, match="cuML is installed but does not import: ImportError: libcuml"):
        resolve_backend("cuml")
    monkeypatch.setattr(clustering, "cuml_status", lambda: (True, None))
    assert resolve_backend("auto") == "cuml"


def test_cluster_summary_by_hand():
    from tis_ray.clustering import cluster_summary

    labels = np.array([0, 0, 0, 1, 1, -1, 2] + [3] * 12)  # sizes 3, 2, 1, 12 and one noise point of 19
    assert cluster_summary(labels) == {"n_clusters": 4, "n_noise": 1, "noise_fraction": 1 / 19, "largest": 12,
                                       "median_size": 2.5, "size_histogram": {"1": 1, "2-9": 2, "10-99": 1}}


def test_k_distance_knee_separates_dense_blobs_from_sparse_points():
    from tis_ray.kdistance import k_distances, knee

    rng = np.random.default_rng(0)
    dense = rng.normal(0, 0.1, size=(900, 2))  # 5th-neighbour distances ~0.01-0.03
    sparse = rng.uniform(-50, 50, size=(100, 2))  # ~ several units apart
    distances = k_distances(np.vstack([dense, sparse]), min_samples=5, queries=1000)
    assert len(distances) == 1000 and np.all(np.diff(distances) >= 0)
    eps = knee(distances)
    assert 0.02 < eps < 5.0
    assert np.mean(distances <= eps) == pytest.approx(0.9, abs=0.03)  # the dense 90% are core points at the knee
    assert knee(np.array([0.0, 1.0, 2.0, 3.0])) in (0.0, 1.0, 2.0, 3.0)  # a straight line: any point, no crash


def test_l2_normalize_clusters_by_direction_not_length():
    # two directions, each at lengths 1 and 100: Euclidean KMeans splits by length, cosine geometry by direction
    rng = np.random.default_rng(1)
    directions = np.array([[1.0, 0.0], [0.0, 1.0]])
    which = rng.integers(0, 2, 200)
    lengths = np.where(rng.random(200) < 0.5, 1.0, 100.0)
    x = (directions[which] + rng.normal(0, 0.02, (200, 2))) * lengths[:, None]
    plain = fit_clusters(x, {"algorithm": "kmeans", "n_clusters": 2}, backend="sklearn")
    unit = fit_clusters(x, {"algorithm": "kmeans", "n_clusters": 2, "normalize": "l2"}, backend="sklearn")
    assert adjusted_rand_score(which, unit.labels_) == 1.0
    assert adjusted_rand_score(which, plain.labels_) < 0.5


def test_mostly_noise_stops_with_the_knee_eps(tmp_path):
    from tis_ray.clustering import check_noise, dbscan_k_distance

    x, _ = blobs()
    params = {"algorithm": "dbscan", "eps": 1e-6, "min_samples": 5}
    result = fit_clusters(x, params, backend="sklearn")
    result.extra.update(dbscan_k_distance(x, params, tmp_path))
    save_clusters(result, tmp_path)
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta["noise_fraction"] == 1.0 and (tmp_path / "k_distance.png").is_file()
    with pytest.raises(TisRayError, match=r"leaves 100\.0% of 180 points as noise, so no trial was started: the "
                                          r"k-distance knee suggests eps ~ [0-9.]+"):
        check_noise(meta, tmp_path / "k_distance.png")
    check_noise({**meta, "noise_fraction": 0.94}, tmp_path / "k_distance.png")  # below 95%: fine
