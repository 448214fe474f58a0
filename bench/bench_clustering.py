"""KMeans (512 clusters) on MNLI-sized embeddings and DBSCAN on a 50,000-row slice, CPU backend.

    python bench/bench_clustering.py            # ~8 min on 2 cores (full Lloyd alone takes ~5)
    python bench/bench_clustering.py --quick    # 40,000 rows, for a smoke run

Data: 392,702 x 768 float32 drawn around 512 random centers (MNLI train's size; real [CLS] embeddings
also cluster). Compares tis_ray's CPU default (MiniBatchKMeans + 2 Lloyd passes) with full Lloyd and with
MiniBatchKMeans alone, by wall time and inertia, in one run. With cuML and a GPU, the same on the GPU.
"""

from __future__ import annotations

import argparse

import numpy as np
from common import machine, record

from tis_ray.clustering import cuml_available, fit_clusters


def structured(n: int, dim: int = 768, centers: int = 512, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(centers, dim)).astype(np.float32)
    x = c[rng.integers(centers, size=n)]
    x += rng.normal(scale=0.6, size=x.shape).astype(np.float32)
    return x


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n = 40_000 if args.quick else 392_702
    x = structured(n)
    rows = []
    timings = {}
    for method in ("refine", "minibatch", "lloyd"):
        result = fit_clusters(x, {"algorithm": "kmeans", "n_clusters": 512, "method": method}, backend="sklearn")
        timings[method] = (result.seconds, result.extra["inertia"])
        print(method, timings[method], flush=True)
    lloyd_time, lloyd_inertia = timings["lloyd"]
    for method, label in (("lloyd", "scikit-learn KMeans (full Lloyd)"), ("minibatch", "MiniBatchKMeans alone"),
                          ("refine", "tis_ray CPU default: MiniBatch + 2 Lloyd passes")):
        seconds, inertia = timings[method]
        rows.append(f"| {label} | {seconds:.1f} | {lloyd_time / seconds:.1f}x | {100 * (inertia / lloyd_inertia - 1):+.2f}% |")

    db_rows = []
    for size in (30_000, 50_000) if not args.quick else (10_000,):
        result = fit_clusters(structured(size, seed=1), {"algorithm": "dbscan", "eps": 28.0, "min_samples": 10},
                              backend="sklearn")
        db_rows.append(f"| {size:,} | {result.seconds:.1f} | {result.n_clusters} | {int((result.labels_ < 0).sum())} |")
    gpu = ""
    if cuml_available():
        g = fit_clusters(x, {"algorithm": "kmeans", "n_clusters": 512}, backend="cuml")
        d = fit_clusters(structured(50_000, seed=1), {"algorithm": "dbscan", "eps": 28.0, "min_samples": 10},
                         backend="cuml")
        gpu = (f"\ncuML on the GPU: KMeans {g.seconds:.1f} s (inertia {100 * (g.extra['inertia'] / lloyd_inertia - 1):+.2f}% "
               f"vs Lloyd), DBSCAN 50,000 rows {d.seconds:.1f} s.\n")
    else:
        gpu = "\ncuML: not available on this machine (no GPU); the GPU numbers are not measured yet.\n"
    body = "\n".join([
        f"`python bench/bench_clustering.py{' --quick' if args.quick else ''}` on {machine()}.", "",
        f"KMeans, 512 clusters, {n:,} x 768 float32 (cluster-structured random data):", "",
        "| method | seconds | speed vs Lloyd | inertia vs Lloyd |", "|---|---:|---:|---:|", *rows, "",
        "DBSCAN (eps 28, min_samples 10) on 768-d slices: cost grows with rows^2, so full MNLI (392,702 rows) "
        "is a GPU job:", "", "| rows | seconds | clusters | noise |", "|---:|---:|---:|---:|", *db_rows, gpu])
    record("Clustering (issue 4)" + (" [quick]" if args.quick else ""), body)


if __name__ == "__main__":
    main()
