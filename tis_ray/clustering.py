"""KMeans and DBSCAN on [CLS] embeddings: RAPIDS cuML on the GPU, scikit-learn on the CPU.

This is the one module that imports cuML / CuPy. Results (labels, centers, distance of each point to its
center) are saved as .npy + JSON and loaded back with checks, never pickled.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tis_ray.errors import TisRayError
from tis_ray.io import load_npy, read_json, save_npy, write_json
from tis_ray.kdistance import k_distance_figure, k_distances, knee

log = logging.getLogger(__name__)

BACKENDS = ("auto", "cuml", "sklearn")
ALGORITHMS = ("kmeans", "dbscan")
# DBSCAN costs grow with rows^2 on the CPU: 12.7 s at 30,000 x 768 on 2 cores (bench/RESULTS.md), so over half
# an hour at MNLI's 392,702.
DBSCAN_CPU_WARN_ROWS = 50_000
DBSCAN_CPU_SECONDS_AT_30K = 13
# CPU KMeans default: MiniBatchKMeans to get close, then a few full Lloyd passes to reach Lloyd's inertia.
KMEANS_MINIBATCH_SIZE = 8_192
KMEANS_REFINE_ITERS = 2


@dataclass
class ClusterResult:
    """A fitted clustering: labels_ per row (-1 = DBSCAN noise), centers_ (KMeans), distances_ to own center,
    centroid_nearest_ (KMeans: the row nearest each center among all rows)."""

    labels_: np.ndarray
    centers_: np.ndarray | None
    distances_: np.ndarray | None
    algorithm: str
    params: dict[str, Any]
    backend: str
    seconds: float
    fingerprint: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    centroid_nearest_: np.ndarray | None = None

    @property
    def n_clusters(self) -> int:
        return len(np.unique(self.labels_[self.labels_ >= 0]))

    def summary(self) -> dict[str, Any]:
        """Return clusters, noise points and fraction, and the cluster size distribution."""
        return cluster_summary(self.labels_)


SIZE_BINS = ((1, 1), (2, 9), (10, 99), (100, 999), (1000, 9999), (10_000, None))
NOISE_STOP_FRACTION = 0.95  # a DBSCAN clustering with this much noise stops the sweep before any trial


def cluster_summary(labels: np.ndarray) -> dict[str, Any]:
    """Return {'n_clusters', 'n_noise', 'noise_fraction', 'largest', 'median_size', 'size_histogram'}."""
    labels = np.asarray(labels)
    sizes = np.bincount(labels[labels >= 0]) if (labels >= 0).any() else np.zeros(0, dtype=np.int64)
    sizes = sizes[sizes > 0]
    histogram = {f"{lo}" if lo == hi else f"{lo}+" if hi is None else f"{lo}-{hi}":
                 int(((sizes >= lo) & (sizes <= (hi or sizes.max(initial=0)))).sum()) for lo, hi in SIZE_BINS}
    n_noise = int((labels < 0).sum())
    return {"n_clusters": len(sizes), "n_noise": n_noise, "noise_fraction": n_noise / max(len(labels), 1),
            "largest": int(sizes.max(initial=0)), "median_size": float(np.median(sizes)) if len(sizes) else 0.0,
            "size_histogram": {k: v for k, v in histogram.items() if v}}


def describe_summary(summary: dict[str, Any]) -> str:
    """Return a summary as one line: '12 clusters (largest 310, median 41), 8.0% noise'."""
    noise = summary.get("noise_fraction", summary.get("n_noise", 0) / max(summary.get("n_rows", 1), 1))
    return (f"{summary['n_clusters']} clusters (largest {summary.get('largest', '?')}, median "
            f"{summary.get('median_size', '?')}), {noise:.1%} noise")


def cuml_status() -> tuple[bool, str | None]:
    """Return (usable, why not): cuML and CuPy import and a GPU is visible. Not installed gives (False, None);
    a broken install (an import or driver error) gives its error, which callers report rather than hide."""
    try:
        import cuml  # noqa: F401
        import cupy
    except ModuleNotFoundError as exc:
        if exc.name in ("cuml", "cupy"):
            return False, None  # not installed: the CPU backend is the plan, not a fault
        return False, f"{type(exc).__name__}: {exc}"
    except Exception as exc:  # noqa: BLE001 - a broken RAPIDS install raises anything while importing
        return False, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # noqa: BLE001 - CUDA runtime / driver errors
        return False, f"CuPy sees no GPU: {str(exc).splitlines()[0]}"
    return (True, None) if count > 0 else (False, None)


def cuml_available() -> bool:
    """True when cuML and CuPy import and a GPU is visible."""
    return cuml_status()[0]


def resolve_backend(requested: str) -> str:
    """Return the backend that will run ('cuml' or 'sklearn') for auto / cuml / sklearn, and log it (with the
    import error of a broken cuML install, never silently)."""
    if requested not in BACKENDS:
        raise TisRayError(f"unknown clustering backend {requested!r}; known: {', '.join(BACKENDS)}")
    if requested == "sklearn":
        return "sklearn"
    usable, error = cuml_status()
    if usable:
        log.info("clustering backend: cuML (GPU)")
        return "cuml"
    why = f"cuML is installed but does not import: {error}" if error else "cuML not installed or no GPU"
    if requested == "cuml":
        raise TisRayError(f"clustering backend cuml asked for, but {why}: pip install 'tis-ray[gpu]' (CUDA 13; "
                          "tis-ray[gpu-cu12] for CUDA 12) on a GPU machine, see tis-ray doctor; or use backend: "
                          "sklearn")
    log.warning("clustering backend: scikit-learn (%s)", why)
    return "sklearn"


def dbscan_batch_mbytes(free_bytes: int) -> int:
    """Return cuML DBSCAN's max_mbytes_per_batch from the GPU memory free now: 80% of it (cuML's own default
    takes 80% of the card's total, which torch's cache or another process may hold)."""
    return max(64, int(0.8 * free_bytes / 2**20))


def clustering_key(params: dict[str, Any]) -> str:
    """Return a short stable name for one (algorithm, parameters) combination, e.g. kmeans-n_clusters16-1a2b3c."""
    digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:6]
    readable = "-".join(f"{k}{v}" for k, v in sorted(params.items()) if k != "algorithm")
    return f"{params['algorithm']}-{readable}-{digest}"


def _distances_to_centers(x: np.ndarray, centers: np.ndarray, labels: np.ndarray, chunk: int = 65_536) -> np.ndarray:
    out = np.empty(len(x), dtype=np.float32)
    for i in range(0, len(x), chunk):
        diff = np.asarray(x[i: i + chunk], dtype=np.float32) - centers[labels[i: i + chunk]]
        out[i: i + chunk] = np.sqrt(np.einsum("ij,ij->i", diff, diff))
    return out


def _kmeans_sklearn(x, n_clusters, seed, method, batch_size=KMEANS_MINIBATCH_SIZE):
    from sklearn.cluster import KMeans, MiniBatchKMeans

    if method == "lloyd":
        km = KMeans(n_clusters=n_clusters, n_init=1, random_state=seed).fit(x)
        return km.labels_, km.cluster_centers_, {"inertia": float(km.inertia_), "n_iter": int(km.n_iter_)}
    if method == "minibatch":  # the original's MiniBatchKMeans alone, with scikit-learn's own stopping rule
        mb = MiniBatchKMeans(n_clusters=n_clusters, batch_size=batch_size, random_state=seed).fit(x)
        inertia = float(((x - mb.cluster_centers_[mb.labels_]) ** 2).sum())
        return mb.labels_, mb.cluster_centers_, {"inertia": inertia}
    mb = MiniBatchKMeans(n_clusters=n_clusters, batch_size=batch_size, n_init=1,
                         random_state=seed, max_no_improvement=3).fit(x)
    km = KMeans(n_clusters=n_clusters, init=mb.cluster_centers_, n_init=1, max_iter=KMEANS_REFINE_ITERS,
                random_state=seed).fit(x)
    return km.labels_, km.cluster_centers_, {"inertia": float(km.inertia_)}


def _dbscan_sklearn(x, eps, min_samples, metric):
    from sklearn.cluster import DBSCAN

    if len(x) > DBSCAN_CPU_WARN_ROWS:
        minutes = DBSCAN_CPU_SECONDS_AT_30K * (len(x) / 30_000) ** 2 / 60
        log.warning("DBSCAN on %d rows on the CPU: cost grows with rows^2, roughly %.0f min on 2 cores; "
                    "the cuML backend on a GPU is what this size is for", len(x), minutes)
    return DBSCAN(eps=eps, min_samples=min_samples, metric=metric, n_jobs=-1).fit(x).labels_


def _fit_cuml(x, algorithm, params, seed):
    import cupy as cp
    from cuml.cluster import DBSCAN, KMeans

    xg = cp.asarray(x, dtype=cp.float32)
    if algorithm == "kmeans":
        km = KMeans(n_clusters=params["n_clusters"], random_state=seed, output_type="cupy").fit(xg)
        labels = cp.asarray(km.labels_).astype(cp.int64)
        centers = cp.asarray(km.cluster_centers_)
        distances = cp.linalg.norm(xg - centers[labels], axis=1)
        return (cp.asnumpy(labels), cp.asnumpy(centers), cp.asnumpy(distances).astype(np.float32),
                {"inertia": float((distances ** 2).sum())})
    # int64 labels: with the int32 default cuML caps its batches at ~5,000 rows of 392,702 (index overflow);
    # core sample indices are not used, so not computed.
    free, _ = cp.cuda.runtime.memGetInfo()
    dbscan = DBSCAN(eps=params["eps"], min_samples=params["min_samples"], metric=params.get("metric", "euclidean"),
                    calc_core_sample_indices=False, output_type="cupy",
                    max_mbytes_per_batch=dbscan_batch_mbytes(free))
    labels = dbscan.fit(xg, out_dtype="int64").labels_
    return cp.asnumpy(cp.asarray(labels)).astype(np.int64), None, None, {}


def nearest_to_centers(x: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Return, for each center, the index of the nearest row of `x` (Euclidean), as the original's
    pairwise_distances_argmin_min(centers, embeddings) did; ties go to the lower index."""
    from sklearn.metrics import pairwise_distances_argmin

    return pairwise_distances_argmin(np.asarray(centers, dtype=np.float32), x).astype(np.int64)


def _free_cupy_pools() -> None:
    """Hand CuPy's pooled GPU memory back once its arrays are gone: the trials that follow need it."""
    import cupy as cp

    cp.get_default_memory_pool().free_all_blocks()
    cp.get_default_pinned_memory_pool().free_all_blocks()


def rows_to_cluster(embeddings: np.ndarray, normalize: str = "none") -> np.ndarray:
    """Return the embeddings as contiguous float32 rows, scaled to unit length for normalize 'l2'."""
    x = np.ascontiguousarray(embeddings, dtype=np.float32)
    if normalize == "l2":  # cosine geometry: Euclidean distance on unit vectors = sqrt(2 - 2 cos)
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    return x


def dbscan_k_distance(embeddings: np.ndarray, params: dict[str, Any], out_dir: str | Path) -> dict[str, Any]:
    """Write out_dir/k_distance.png for a DBSCAN clustering; returns {'knee_eps', 'core_fraction'} at its eps."""
    x = rows_to_cluster(embeddings, params.get("normalize", "none"))
    distances = k_distances(x, params["min_samples"], params.get("metric", "euclidean"))
    k_distance_figure(distances, params["min_samples"], params["eps"], Path(out_dir) / "k_distance.png")
    suggested = knee(distances)
    log.info("DBSCAN k-distance (min_samples %d): knee at eps ~ %.3g; eps %g makes %.0f%% of points core points",
             params["min_samples"], suggested, params["eps"], 100 * float(np.mean(distances <= params["eps"])))
    return {"knee_eps": suggested, "core_fraction": float(np.mean(distances <= params["eps"]))}


def check_noise(meta: dict[str, Any], k_distance_plot: str | Path) -> None:
    """Raise TisRayError when a fitted DBSCAN clustering left >= 95% of the points as noise, naming the knee eps
    and where its k-distance plot is (a local path or a URI)."""
    if meta.get("algorithm") != "dbscan" or meta.get("noise_fraction", 0.0) < NOISE_STOP_FRACTION:
        return
    p = meta["params"]
    hint = (f"the k-distance knee suggests eps ~ {meta['knee_eps']:.3g} ({k_distance_plot})"
            if "knee_eps" in meta else "plot the k-distance curve with tis-ray cluster --k-distance")
    raise TisRayError(f"DBSCAN (eps={p['eps']}, min_samples={p['min_samples']}) leaves {meta['noise_fraction']:.1%} "
                      f"of {meta['n_rows']} points as noise, so no trial was started: {hint}; set eps near it, or "
                      "clustering.normalize: l2 for cosine geometry")


def fit_clusters(embeddings: np.ndarray, params: dict[str, Any], backend: str = "auto", seed: int = 0,
                 fingerprint: str | None = None) -> ClusterResult:
    """Return the clustering of `embeddings` for params {'algorithm': kmeans|dbscan, ...} on the chosen backend.

    kmeans params: n_clusters, method (refine (default: cuML's KMeans on a GPU, else MiniBatchKMeans refined by
    Lloyd passes), lloyd, minibatch (scikit-learn's MiniBatchKMeans alone, on the CPU on every backend: the
    original's algorithm, which cuML lacks)), batch_size (MiniBatchKMeans). KMeans also finds the row nearest
    each center (`centroid_nearest_`). dbscan params: eps, min_samples, metric. Both: normalize ('l2':
    unit-length rows first, cosine geometry).
    """
    params = dict(params)
    algorithm = params.get("algorithm")
    normalize = params.get("normalize", "none")
    if algorithm not in ALGORITHMS:
        raise TisRayError(f"unknown clustering algorithm {algorithm!r}; known: {', '.join(ALGORITHMS)}")
    method = params.get("method", "refine")
    if algorithm == "kmeans" and method == "minibatch" and backend != "sklearn":
        log.info("KMeans method minibatch (the original's MiniBatchKMeans) runs on scikit-learn: cuML has none")
        backend = "sklearn"
    backend = resolve_backend(backend)
    x = rows_to_cluster(embeddings, normalize)
    start = time.perf_counter()
    if backend == "cuml":
        labels, centers, distances, extra = _fit_cuml(x, algorithm, params, seed)
        _free_cupy_pools()
    elif algorithm == "kmeans":
        labels, centers, extra = _kmeans_sklearn(x, params["n_clusters"], seed, method,
                                                 params.get("batch_size", KMEANS_MINIBATCH_SIZE))
        distances = _distances_to_centers(x, centers, labels)
    else:
        labels = _dbscan_sklearn(x, params["eps"], params["min_samples"], params.get("metric", "euclidean"))
        centers = distances = None
        extra = {}
    nearest = nearest_to_centers(x, centers) if centers is not None else None
    seconds = time.perf_counter() - start
    result = ClusterResult(np.asarray(labels, dtype=np.int64), centers, distances, algorithm, params, backend,
                           seconds, fingerprint, extra, nearest)
    log.info("%s on %d x %d (%s, %.1f s): %s", algorithm, *x.shape, backend, seconds,
             describe_summary(result.summary()))
    return result


def save_clusters(result: ClusterResult, out_dir: str | Path) -> Path:
    """Write labels.npy, centers.npy, distances.npy, centroid_nearest.npy and meta.json into `out_dir`; returns it."""
    out = Path(out_dir)
    save_npy(out / "labels.npy", result.labels_)
    for name, value in (("centers", result.centers_), ("distances", result.distances_),
                        ("centroid_nearest", result.centroid_nearest_)):
        if value is not None:
            save_npy(out / f"{name}.npy", value)
    write_json(out / "meta.json", {
        "algorithm": result.algorithm, "params": result.params, "backend": result.backend,
        "seconds": result.seconds, "n_rows": len(result.labels_), **result.summary(),
        "fingerprint": result.fingerprint, **result.extra})
    return out


def load_clusters(path: str | Path, expected_rows: int | None = None, fingerprint: str | None = None) -> ClusterResult:
    """Return a saved clustering (a folder, or a bare labels .npy), refusing one that doesn't fit the data."""
    path = Path(path)
    labels_path = path / "labels.npy" if path.is_dir() else path
    if not labels_path.is_file():
        raise TisRayError(f"{path}: no cluster labels (labels.npy) there")
    labels = load_npy(labels_path).astype(np.int64)
    if labels.ndim != 1:
        raise TisRayError(f"{labels_path}: cluster labels must be a 1-D array, got shape {labels.shape}")
    if expected_rows is not None and len(labels) != expected_rows:
        raise TisRayError(f"{labels_path}: {len(labels)} cluster labels for a training set of {expected_rows} "
                          "examples: these labels belong to another dataset")
    meta = read_json(path / "meta.json") if (path / "meta.json").is_file() else {}
    if fingerprint and meta.get("fingerprint") and meta["fingerprint"] != fingerprint:
        raise TisRayError(f"{path}: cluster labels were computed for dataset {meta['fingerprint']}, "
                          f"not for this training set ({fingerprint})")

    def optional(name):
        file = path / f"{name}.npy"
        return load_npy(file) if path.is_dir() and file.is_file() else None

    return ClusterResult(labels, optional("centers"), optional("distances"), meta.get("algorithm", "unknown"),
                         meta.get("params", {}), meta.get("backend", "unknown"), meta.get("seconds", 0.0),
                         meta.get("fingerprint"), centroid_nearest_=optional("centroid_nearest"))
