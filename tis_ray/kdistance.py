"""Choosing DBSCAN's eps: the k-distance curve (each point's distance to its min_samples-th neighbour, sorted)
and its knee, the standard heuristic of Ester et al. (1996) and Schubert et al. (2017).

A point is a DBSCAN core point when its min_samples-th neighbour (itself included) lies within eps, so the
sorted curve says directly which eps makes which fraction of points core points; the knee, where the curve
turns sharply upward, separates dense regions from sparse ones.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tis_ray.io import write_via

K_DISTANCE_QUERIES = 2_000  # points whose neighbour distance is measured (against all points)


def k_distances(x: np.ndarray, min_samples: int, metric: str = "euclidean", queries: int = K_DISTANCE_QUERIES,
                seed: int = 0) -> np.ndarray:
    """Return, sorted ascending, the distance of up to `queries` sampled points to their min_samples-th
    neighbour among all points (the point itself counts as the first, as in DBSCAN)."""
    from sklearn.neighbors import NearestNeighbors

    x = np.asarray(x, dtype=np.float32)
    k = min(min_samples, len(x))
    rows = np.random.default_rng(seed).choice(len(x), size=min(queries, len(x)), replace=False)
    distances, _ = NearestNeighbors(n_neighbors=k, metric=metric, algorithm="brute").fit(x).kneighbors(x[rows])
    return np.sort(distances[:, -1])


def knee(sorted_distances: np.ndarray) -> float:
    """Return the curve's value at its knee: the point farthest from the chord joining its two ends."""
    y = np.asarray(sorted_distances, dtype=np.float64)
    if len(y) < 3 or y[-1] == y[0]:
        return float(y[-1]) if len(y) else float("nan")
    t = np.linspace(0.0, 1.0, len(y))
    scaled = (y - y[0]) / (y[-1] - y[0])
    return float(y[np.argmax(t - scaled)])  # the chord is scaled == t; the convex curve lies below it


def k_distance_figure(sorted_distances: np.ndarray, min_samples: int, eps: float | None, path: str | Path) -> Path:
    """Write the k-distance plot with the knee (and the eps in use) marked; returns the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    suggested = knee(sorted_distances)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.plot(np.arange(len(sorted_distances)), sorted_distances, color="tab:blue")
    ax.axhline(suggested, color="tab:green", linestyle="--", label=f"knee: eps ≈ {suggested:.3g}")
    if eps is not None:
        core = float(np.mean(sorted_distances <= eps))
        ax.axhline(eps, color="tab:red", linestyle=":", label=f"eps in use {eps:g}: {core:.0%} core points")
    ax.set_xlabel("sampled points, sorted by distance")
    ax.set_ylabel(f"distance to {min_samples}-th neighbour")
    ax.set_title(f"k-distance (k = min_samples = {min_samples})")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    write_via(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)
    return Path(path)
