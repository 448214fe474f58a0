"""Sampler types: each turns (pool, budget, seed) into the sorted indices of a training subset.

Constructors only store their arguments; `validate()` checks them (the spec calls it before any trial) and
`select()` does the work. Same pool, budget and seed give the same indices.

    get_sampler("kmeans", mode="proportional", n_clusters=16).select(pool, budget=800, seed=42)
"""

from __future__ import annotations

import inspect
import json
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, create_model

from tis_ray.dynamics import Dynamics
from tis_ray.errors import SamplingError, SpecError, did_you_mean
from tis_ray.io import load_npy

NOISE = -1  # DBSCAN's label for points in no cluster


@dataclass(frozen=True)
class SamplingPool:
    """What samplers choose from: class labels; for cluster samplers the cluster of each example and its
    distance to that cluster's center (None for algorithms without centers), and for KMeans the training
    example nearest each center over the whole set; for dynamics samplers the reference run's training
    dynamics."""

    labels: np.ndarray
    clusters: np.ndarray | None = None
    distances: np.ndarray | None = None
    dynamics: Dynamics | None = None  # the reference run's training dynamics, for dynamics samplers
    centroid_nearest: np.ndarray | None = None  # [k]: the example nearest center j among all examples
    embeddings: np.ndarray | None = None  # [n, dim] (memory-mapped), for samplers that declare "embeddings"
    fingerprint: str | None = None  # of the training set: a per-example file made for another one is refused

    def __len__(self) -> int:
        return len(self.labels)


def largest_remainder(sizes: np.ndarray, budget: int, rng: np.random.Generator) -> np.ndarray:
    """Split `budget` across groups in proportion to `sizes`; returns counts that sum exactly to `budget`.

    Floors of the exact quotas first, then one more to the groups with the largest remainders (ties broken
    at random by `rng`), never more than a group holds.
    """
    sizes = np.asarray(sizes, dtype=np.int64)
    total = int(sizes.sum())
    if not 0 <= budget <= total:
        raise SamplingError(f"budget {budget} is outside [0, {total}] examples available")
    quotas = sizes * (budget / total) if total else np.zeros(len(sizes))
    counts = np.minimum(np.floor(quotas).astype(np.int64), sizes)
    short = budget - int(counts.sum())
    if short:
        remainder = np.where(counts < sizes, quotas - counts, -np.inf)
        order = np.lexsort((rng.random(len(sizes)), -remainder))
        counts[order[:short]] += 1
    return counts


def _groups(keys: np.ndarray) -> dict[int, np.ndarray]:
    """Member indices of each key, keys in ascending order."""
    order = np.argsort(keys, kind="stable")
    uniq, starts = np.unique(keys[order], return_index=True)
    return {int(k): members for k, members in zip(uniq, np.split(order, starts[1:]), strict=True)}


def _proportional(groups: dict[int, np.ndarray], budget: int, rng: np.random.Generator) -> np.ndarray:
    members = list(groups.values())
    counts = largest_remainder(np.array([len(m) for m in members]), budget, rng)
    picked = [rng.choice(m, size=c, replace=False) for m, c in zip(members, counts, strict=True) if c]
    return np.concatenate(picked) if picked else np.empty(0, dtype=np.int64)


def _interleave(streams: list[np.ndarray], budget: int) -> np.ndarray:
    """Take the first element of every stream, then every second, ... until `budget` are taken."""
    depth = max((len(s) for s in streams), default=0)
    # Row r of this matrix is the r-th pick of every stream; reading it row by row is the round robin.
    grid = np.full((depth, len(streams)), -1, dtype=np.int64)
    for j, stream in enumerate(streams):
        grid[: len(stream), j] = stream
    order = grid.ravel()
    order = order[order >= 0]
    if budget > len(order):
        raise SamplingError(f"budget {budget} is more than the {len(order)} examples in the clusters")
    return order[:budget]


def _round_robin(groups: dict[int, np.ndarray], budget: int, rng: np.random.Generator) -> np.ndarray:
    """One example per cluster in turn (cluster order and order within a cluster shuffled by the seed)."""
    streams = [rng.permutation(m) for m in groups.values()]
    return _interleave([streams[i] for i in rng.permutation(len(streams))], budget)


def _centroid(groups: dict[int, np.ndarray], distances: np.ndarray, budget: int,
              rng: np.random.Generator) -> np.ndarray:
    """The examples nearest each centroid: every cluster's nearest first, then every second-nearest, ...

    Clusters are visited in a seeded random order, so a budget smaller than the number of clusters takes
    the centroid examples of a random set of clusters.
    """
    ranked = {k: m[np.argsort(distances[m], kind="stable")] for k, m in groups.items()}
    return _interleave([ranked[k] for k in rng.permutation(list(ranked))], budget)


def _centroid_overall(nearest: np.ndarray | None, budget: int, rng: np.random.Generator) -> np.ndarray:
    """The original's centroid rule (core/clustering.py, get_cluster_indices_from_centroid): for each center,
    the nearest example of the whole training set (pairwise_distances_argmin_min), duplicates kept.

    With a budget equal to the number of centers (the original's case) every center contributes; a smaller
    budget takes a seeded random set of centers. Two centers can share their nearest example, so the subset
    can hold fewer distinct examples than rows: the trial trains on the rows, as the original's Subset did.
    """
    if nearest is None:
        raise SamplingError("kmeans mode centroid_overall needs each center's nearest example "
                            "(centroid_nearest.npy, written by tis_ray's KMeans preparation); these cluster "
                            "labels have none: prepare the clustering again")
    if budget > len(nearest):
        raise SamplingError(f"kmeans mode centroid_overall takes one example per center: a budget of {budget} "
                            f"is more than the {len(nearest)} centers")
    return nearest[rng.permutation(len(nearest))[:budget]] if budget < len(nearest) else nearest


def _under_budget(groups: dict[int, np.ndarray], budget: int) -> np.ndarray:
    """The original's rule for a data % (core/clustering.py, get_cluster_indices_by_pct): whole clusters in
    `groups` order while the running total stays strictly below `budget`; the first cluster that would reach
    it ends the walk. The same for every seed, and smaller than the budget."""
    taken, total = [], 0
    for members in groups.values():
        total += len(members)
        if total >= budget:
            break
        taken.append(members)
    if not taken:
        first = next(iter(groups))
        raise SamplingError(f"whole clusters under a budget of {budget}: the first cluster in label order ({first}) "
                            f"holds {len(groups[first])} examples, so no whole cluster fits; use a larger budget "
                            "or mode proportional")
    return np.concatenate(taken)


def _whole_clusters(groups: dict[int, np.ndarray], k: int, order: str, rng: np.random.Generator) -> np.ndarray:
    """All members of `k` clusters: the first k in `groups` order (order 'label', the original's
    get_cluster_indices_by_num) or k drawn by the seed (order 'random')."""
    if k > len(groups):
        raise SamplingError(f"clusters_to_take={k} but the clustering has only {len(groups)} clusters")
    keys = list(groups)[:k] if order == "label" else rng.choice(list(groups), size=k, replace=False)
    return np.concatenate([groups[int(key)] for key in keys])


def _noise_last(groups: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
    """The groups in ascending label order with DBSCAN's noise group after every cluster, as the original met
    it (Python's set order puts -1 after the non-negative labels)."""
    return {k: v for k, v in groups.items() if k != NOISE} | ({NOISE: groups[NOISE]} if NOISE in groups else {})


# What a sampler can need from the pool; the preparation, the trial's pool and the report follow these
# declarations (a sampler that declares "dynamics" gets a data map in the report, say).
NEEDS = ("labels", "clusters", "distances", "centroid_nearest", "embeddings", "dynamics")


class Sampler:
    """Base class: subclasses set `name`, `modes`, `needs` and implement `_select`.

    A new sampler is one subclass, registered in SAMPLERS: its constructor's keyword arguments (with type hints
    and defaults) are its spec parameters, `validate()` checks them, `needs` says what the pool must hold.
    """

    name = ""
    modes: tuple[str, ...] = ()
    algorithm: str | None = None  # clustering algorithm a cluster sampler needs, None for the others
    needs: frozenset[str] = frozenset({"labels"})  # what select() reads from the pool, among NEEDS
    reads_file = False  # its `path` parameter names a file the preparation copies into the run directory

    @property
    def needs_dynamics(self) -> bool:
        """True for samplers that rank examples by the reference run's training dynamics."""
        return "dynamics" in self.needs

    @property
    def needs_embeddings(self) -> bool:
        """True for samplers that read the training set's embeddings themselves (not through a clustering)."""
        return "embeddings" in self.needs

    def validate(self) -> Sampler:
        """Check the stored parameters; raises SpecError naming the parameter. Returns self."""
        mode = getattr(self, "mode", None)
        if self.modes and mode not in self.modes:
            raise SpecError(f"sampler '{self.name}': unknown mode {mode!r}; known: {', '.join(self.modes)}")
        return self

    @property
    def budget_free(self) -> bool:
        """True when the sampler decides the subset size itself (whole clusters), so no budget is given."""
        return getattr(self, "mode", None) == "num_clusters"

    def selection_record(self, pool: SamplingPool, indices: np.ndarray) -> dict:
        """Return what a trial's subset.json records about how this sampler chose `indices` (empty by default)."""
        return {}

    def clustering_params(self) -> dict | None:
        """Return the clustering this sampler needs as {'algorithm': ..., **params}, or None."""
        return None

    def params(self) -> dict:
        """Return the constructor arguments as a plain dict (what the spec and the export record)."""
        return {p: getattr(self, p) for p in inspect.signature(type(self)).parameters}

    def select(self, pool: SamplingPool, budget: int | None, seed: int) -> np.ndarray:
        """Return the sorted int64 indices of the subset for this budget and seed."""
        self.validate()
        if budget is None and not self.budget_free:
            raise SamplingError(f"sampler '{self.name}' needs a budget (data_pct or n_examples)")
        if budget is not None and not 1 <= budget <= len(pool):
            raise SamplingError(f"budget {budget} is outside [1, {len(pool)}] training examples")
        indices = self._select(pool, budget, np.random.default_rng(seed))
        if len(indices) == 0:
            raise SamplingError(f"sampler '{self.name}' selected no training examples")
        return np.sort(np.asarray(indices, dtype=np.int64))

    def _select(self, pool: SamplingPool, budget: int | None, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError


class RandomSampler(Sampler):
    """Uniform sampling without replacement.

    nested: False draws each budget independently (subsets of one seed need not nest across budgets);
    True takes the first `budget` rows of one seeded permutation, so a seed's 10% lies inside its 20%.
    """

    name = "random"

    def __init__(self, *, nested: bool = False):
        self.nested = nested

    def _select(self, pool, budget, rng):
        if self.nested:
            return rng.permutation(len(pool))[:budget]
        return rng.choice(len(pool), size=budget, replace=False)


class RepeatedRandomSampler(Sampler):
    """A fresh uniform random subset of the budget every epoch (repeated random sampling without replacement,
    RS2: Okanovic et al., 2023): consecutive slices of one seeded permutation, a new permutation when it runs
    out, so every example is seen once before any is seen twice. Same budget per epoch as a fixed subset."""

    name = "repeated_random"
    per_epoch = True  # the trial asks for `epoch_subsets` and trains epoch p on the p-th

    def _select(self, pool, budget, rng):
        return self._subsets(len(pool), budget, rng, 1)[0]

    def epoch_subsets(self, pool: SamplingPool, budget: int, seed: int, passes: int) -> list[np.ndarray]:
        """Return the sorted subsets of `passes` epochs (the first is what `select` returns)."""
        return [np.sort(s) for s in self._subsets(len(pool), budget, np.random.default_rng(seed), passes)]

    @staticmethod
    def _subsets(n: int, budget: int, rng: np.random.Generator, passes: int) -> list[np.ndarray]:
        stream, out = rng.permutation(n), []
        for _ in range(passes):
            take, stream = stream[:budget], stream[budget:]
            if len(take) < budget:  # the permutation ran out: fill from a new one, no example twice in a pass
                fresh = rng.permutation(n)
                fresh = fresh[~np.isin(fresh, take)]
                take, stream = np.concatenate([take, fresh[: budget - len(take)]]), fresh[budget - len(take):]
            out.append(take)
        return out


class StratifiedSampler(Sampler):
    """Keeps the label proportions of the training set (largest-remainder allocation)."""

    name = "stratified"

    def _select(self, pool, budget, rng):
        return _proportional(_groups(pool.labels), budget, rng)


# What each cluster mode follows: the original's function (prajjwal1/generalize_lm_nli@e84ab5a,
# core/clustering.py) or, for tis_ray's own modes, what it adds.
MODE_RULES = {
    "proportional": "tis_ray: the budget split across clusters by size, a seeded draw in each (extension)",
    "round_robin": "tis_ray: one example per cluster in turn, seeded (extension)",
    "centroid": "tis_ray: each cluster's own nearest member first, no duplicates (extension)",
    "whole_clusters": "original get_cluster_indices_by_pct: whole clusters in ascending label order while the "
                      "total stays below the budget, noise last",
    "num_clusters": "original get_cluster_indices_by_num (cluster_order label: clusters 0..k-1); cluster_order "
                    "random is a seeded choice of k clusters (extension)",
    "centroid_overall": "original get_cluster_indices_from_centroid: each center's nearest example in the whole "
                        "training set, duplicates kept",
}
CLUSTER_ORDERS = ("label", "random")


class _ClusterSampler(Sampler):
    needs = frozenset({"labels", "clusters"})

    @property
    def mode_needs(self) -> frozenset[str]:
        """What this sampler's mode reads beyond the cluster labels."""
        return self.needs | {"centroid": {"distances"}, "centroid_overall": {"centroid_nearest"}}.get(self.mode, set())

    def _cluster_groups(self, pool: SamplingPool) -> dict[int, np.ndarray]:
        if pool.clusters is None:
            raise SamplingError(f"sampler '{self.name}' needs cluster labels, none were prepared")
        return _groups(pool.clusters)

    def _by_mode(self, groups, pool, budget, rng):
        if self.mode == "proportional":
            return _proportional(groups, budget, rng)
        if self.mode == "round_robin":
            return _round_robin(groups, budget, rng)
        if self.mode == "centroid":
            if pool.distances is None:
                raise SamplingError(f"sampler '{self.name}' mode centroid needs each example's distance to its "
                                    "center (distances.npy), and these cluster labels have none")
            return _centroid(groups, pool.distances, budget, rng)
        if self.mode == "centroid_overall":
            return _centroid_overall(pool.centroid_nearest, budget, rng)
        if self.mode == "whole_clusters":
            return _under_budget(_noise_last(groups), budget)
        return _whole_clusters(_noise_last(groups), self.clusters_to_take, self.cluster_order, rng)

    def validate(self):
        super().validate()
        if (self.mode == "num_clusters") != (self.clusters_to_take is not None):
            raise SpecError(f"sampler '{self.name}': clusters_to_take goes with mode num_clusters and only "
                            f"with it (got mode={self.mode!r}, clusters_to_take={self.clusters_to_take})")
        if self.clusters_to_take is not None and self.clusters_to_take < 1:
            raise SpecError(f"sampler '{self.name}': clusters_to_take must be >= 1")
        if self.cluster_order not in CLUSTER_ORDERS:
            raise SpecError(f"sampler '{self.name}': unknown cluster_order {self.cluster_order!r}; "
                            f"known: {', '.join(CLUSTER_ORDERS)}")
        if self.cluster_order != "label" and self.mode != "num_clusters":
            raise SpecError(f"sampler '{self.name}': cluster_order goes with mode num_clusters")
        return self

    def selection_record(self, pool, indices):
        """The mode's rule, the clusters the subset touches and, for whole-cluster modes, which were taken."""
        record = {"rule": MODE_RULES[self.mode], "n_distinct": len(np.unique(indices))}
        if self.mode in ("whole_clusters", "num_clusters") and pool.clusters is not None:
            record["clusters_taken"] = sorted(int(k) for k in np.unique(pool.clusters[indices]))
        return record


class KMeansSampler(_ClusterSampler):
    """Subsets drawn from KMeans clusters of [CLS] embeddings.

    mode: proportional (budget split by cluster size), centroid (each cluster's nearest member first),
    round_robin (one per cluster in turn), whole_clusters (the original's data % rule), num_clusters (all
    members of `clusters_to_take` clusters, in `cluster_order`), centroid_overall (the original's centroid
    rule). MODE_RULES says which follow the original's functions.
    """

    name = "kmeans"
    modes = ("proportional", "centroid", "round_robin", "whole_clusters", "num_clusters", "centroid_overall")
    algorithm = "kmeans"

    def __init__(self, *, mode: str = "proportional", n_clusters: int = 16, clusters_to_take: int | None = None,
                 cluster_order: str = "label"):
        self.mode, self.n_clusters, self.clusters_to_take = mode, n_clusters, clusters_to_take
        self.cluster_order = cluster_order

    def validate(self):
        super().validate()
        if not isinstance(self.n_clusters, int) or self.n_clusters < 2:
            raise SpecError(f"sampler 'kmeans': n_clusters must be an integer >= 2, got {self.n_clusters!r}")
        return self

    def clustering_params(self):
        return {"algorithm": "kmeans", "n_clusters": self.n_clusters}

    def _select(self, pool, budget, rng):
        return self._by_mode(self._cluster_groups(pool), pool, budget, rng)


class DBSCANSampler(_ClusterSampler):
    """Subsets drawn from DBSCAN clusters, with an explicit policy for noise points.

    noise: exclude (never selected), include (each noise point is a cluster of its own),
    cluster (all noise points form one extra cluster). mode: proportional, round_robin, whole_clusters,
    num_clusters; the two whole-cluster modes reach noise only after every cluster, as the original did.
    """

    name = "dbscan"
    modes = ("proportional", "round_robin", "whole_clusters", "num_clusters")
    noise_policies = ("exclude", "include", "cluster")
    metrics = ("euclidean", "cosine")  # what cuML's DBSCAN supports, so both backends run every spec
    algorithm = "dbscan"

    def __init__(self, *, mode: str = "proportional", eps: float = 0.2, min_samples: int = 50,
                 metric: str = "euclidean", noise: str = "exclude", clusters_to_take: int | None = None,
                 cluster_order: str = "label"):
        self.mode, self.eps, self.min_samples, self.metric = mode, eps, min_samples, metric
        self.noise, self.clusters_to_take, self.cluster_order = noise, clusters_to_take, cluster_order

    def validate(self):
        super().validate()
        if self.noise not in self.noise_policies:
            raise SpecError(f"sampler 'dbscan': unknown noise policy {self.noise!r}; "
                            f"known: {', '.join(self.noise_policies)}")
        if self.metric not in self.metrics:
            raise SpecError(f"sampler 'dbscan': unknown metric {self.metric!r}; known: {', '.join(self.metrics)}")
        if (not isinstance(self.eps, int | float) or isinstance(self.eps, bool) or not self.eps > 0
                or not (isinstance(self.min_samples, int) and self.min_samples >= 1)):
            raise SpecError("sampler 'dbscan': eps must be > 0 and min_samples an integer >= 1")
        return self

    def clustering_params(self):
        return {"algorithm": "dbscan", "eps": self.eps, "min_samples": self.min_samples, "metric": self.metric}

    def _select(self, pool, budget, rng):
        if pool.clusters is None:
            raise SamplingError("sampler 'dbscan' needs cluster labels, none were prepared")
        clusters = np.asarray(pool.clusters)
        n_real = len(np.unique(clusters[clusters != NOISE]))
        n_noise = int((clusters == NOISE).sum())
        if n_real < 2:
            raise SamplingError(
                f"DBSCAN (eps={self.eps}, min_samples={self.min_samples}) found {n_real} cluster(s) and "
                f"{n_noise} noise points of {len(clusters)}: cluster sampling would be random sampling; "
                "change eps / min_samples or use sampler 'random'")
        if self.noise == "exclude":
            keep = np.flatnonzero(clusters != NOISE)
            groups = {k: keep[m] for k, m in _groups(clusters[keep]).items()}
        elif self.noise == "include":
            singletons = np.where(clusters == NOISE, clusters.max() + 1 + np.arange(len(clusters)), clusters)
            groups = _groups(singletons)
        else:
            groups = _groups(clusters)
        return self._by_mode(groups, pool, budget, rng)


def _check_file(sampler: Sampler) -> None:
    if not sampler.path or not Path(sampler.path).is_file():
        raise SpecError(f"sampler '{sampler.name}': no such .npy file: {sampler.path!r}")


class IndicesSampler(Sampler):
    """An explicit subset: the training-set indices in a .npy file (what `tis-ray train --indices` trains on).

    Its budget is n_examples = the number of distinct indices in the file; any other budget is refused.
    """

    name = "indices"
    reads_file = True

    def __init__(self, *, path: str = ""):
        self.path = path

    def validate(self):
        _check_file(self)
        return self

    def load(self) -> np.ndarray:
        """Return the file's distinct indices, sorted, as int64."""
        try:
            indices = load_npy(self.path)
        except ValueError as exc:
            raise SamplingError(f"{self.path}: not a numeric .npy array ({exc})") from None
        if indices.ndim != 1 or not np.issubdtype(indices.dtype, np.integer):
            raise SamplingError(f"{self.path}: indices must be a 1-D integer array, got {indices.dtype} {indices.shape}")
        return np.unique(indices.astype(np.int64))

    def _select(self, pool, budget, rng):
        indices = self.load()
        if len(indices) == 0 or indices[0] < 0 or indices[-1] >= len(pool):
            raise SamplingError(f"{self.path}: indices must be in [0, {len(pool)})")
        if budget != len(indices):
            raise SamplingError(f"{self.path} holds {len(indices)} distinct indices, but the budget is {budget}: "
                                f"use n_examples: {len(indices)}")
        return indices


def _ranked(score: np.ndarray, rng: np.random.Generator, descending: bool) -> np.ndarray:
    """Indices by score (descending or ascending), ties broken by a seeded random order."""
    score = np.asarray(score, dtype=np.float64)
    return np.lexsort((rng.random(len(score)), -score if descending else score))


BALANCES = ("none", "class")


class _DynamicsSampler(Sampler):
    """Ranks examples by a score of the reference run's dynamics and takes the top of the ranking.

    balance: none takes the top `budget` overall; class takes the top of each label's own ranking, as many of
    each label as a random subset holds on average (the label shares, largest remainder), so a score cannot
    win by shifting the label mix.
    """

    needs = frozenset({"labels", "dynamics"})
    balances = BALANCES
    balance = "none"

    def _dynamics(self, pool: SamplingPool) -> Dynamics:
        if pool.dynamics is None:
            raise SamplingError(f"sampler '{self.name}' needs training dynamics, and none were recorded")
        if len(pool.dynamics) != len(pool):
            raise SamplingError(f"training dynamics of {len(pool.dynamics)} examples for a training set of "
                                f"{len(pool)}: they belong to another dataset")
        return pool.dynamics

    def validate(self):
        _check_balance(self)
        return self

    def _order(self, pool: SamplingPool, rng: np.random.Generator) -> np.ndarray:
        """Return the examples in the order they are taken (best first)."""
        return _ranked(self.score(self._dynamics(pool)), rng, self.descending)

    def _select(self, pool, budget, rng):
        order = self._order(pool, rng)
        if budget > len(order):
            raise SamplingError(f"budget {budget} is more than the {len(order)} examples ranked")
        return _take_ranked(order, pool.labels, budget, self.balance, rng)


def _check_balance(sampler: Sampler) -> None:
    if sampler.balance not in BALANCES:
        raise SpecError(f"sampler '{sampler.name}': unknown balance {sampler.balance!r}; known: {', '.join(BALANCES)}")


def _take_ranked(order: np.ndarray, labels: np.ndarray, budget: int, balance: str,
                 rng: np.random.Generator) -> np.ndarray:
    """Return the first `budget` examples of `order`, overall (balance none) or per label (class)."""
    return order[:budget] if balance == "none" else _class_balanced(order, labels, budget, rng)


def _class_balanced(order: np.ndarray, labels: np.ndarray, budget: int, rng: np.random.Generator) -> np.ndarray:
    """Return the first examples of `order` within each label, the label counts in proportion to the whole
    training set's (largest remainder), capped by what `order` holds of each label."""
    ranked_labels = labels[order]
    classes, sizes = np.unique(labels, return_counts=True)
    available = np.array([(ranked_labels == c).sum() for c in classes])
    counts = np.minimum(largest_remainder(sizes, budget, rng), available)
    while counts.sum() < budget:  # a label short of its share: the rest go where examples are left
        counts[np.argmax(available - counts)] += 1
    return np.concatenate([order[ranked_labels == c][:k] for c, k in zip(classes, counts, strict=True)])


class CartographySampler(_DynamicsSampler):
    """A Dataset Cartography region (Swayamdipta et al., 2020) of the reference run's data map.

    region: ambiguous (most variable gold-label probability first), hard (least confident first; "hard to
    learn"), easy (most confident first; "easy to learn").
    """

    name = "cartography"
    regions = ("ambiguous", "hard", "easy")

    def __init__(self, *, region: str = "ambiguous", balance: str = "none"):
        self.region, self.balance = region, balance

    def validate(self):
        if self.region not in self.regions:
            raise SpecError(f"sampler 'cartography': unknown region {self.region!r}; known: {', '.join(self.regions)}")
        return super().validate()

    @property
    def descending(self) -> bool:
        return self.region != "hard"

    def score(self, dynamics: Dynamics) -> np.ndarray:
        return dynamics.variability() if self.region == "ambiguous" else dynamics.confidence()


class EL2NSampler(_DynamicsSampler):
    """Highest EL2N score at `epoch` first (Paul et al., 2021), after leaving out the `drop_hardest` fraction
    of the very highest scores (likely label noise)."""

    name = "el2n"

    def __init__(self, *, epoch: int = 1, drop_hardest: float = 0.0, balance: str = "none"):
        self.epoch, self.drop_hardest, self.balance = epoch, drop_hardest, balance

    def validate(self):
        if not isinstance(self.epoch, int) or isinstance(self.epoch, bool) or self.epoch < 1:
            raise SpecError(f"sampler 'el2n': epoch must be an integer >= 1 (1 = after the first epoch), got {self.epoch!r}")
        if not isinstance(self.drop_hardest, int | float) or not 0 <= self.drop_hardest < 1:
            raise SpecError(f"sampler 'el2n': drop_hardest must be in [0, 1), got {self.drop_hardest!r}")
        return super().validate()

    def _order(self, pool, rng):
        dynamics = self._dynamics(pool)
        if self.epoch > dynamics.epochs:
            raise SamplingError(f"sampler 'el2n': epoch {self.epoch}, but the reference run recorded "
                                f"{dynamics.epochs} epochs")
        order = _ranked(dynamics.el2n(self.epoch), rng, descending=True)
        return order[int(np.floor(self.drop_hardest * len(order))):]  # the hardest, likely mislabelled, left out


class ForgettingSampler(_DynamicsSampler):
    """Most forgotten first (Toneva et al., 2019): forgetting events across the reference run's epochs;
    examples never learned count as forgotten the most."""

    name = "forgetting"
    descending = True

    def __init__(self, *, balance: str = "none"):
        self.balance = balance

    def score(self, dynamics: Dynamics) -> np.ndarray:
        return dynamics.forgetting()


class LossSampler(_DynamicsSampler):
    """The baseline the others must beat: highest (or lowest) training loss, averaged over the epochs."""

    name = "loss"
    orders = ("high", "low")

    def __init__(self, *, order: str = "high", balance: str = "none"):
        self.order, self.balance = order, balance

    def validate(self):
        if self.order not in self.orders:
            raise SpecError(f"sampler 'loss': unknown order {self.order!r}; known: {', '.join(self.orders)}")
        return super().validate()

    @property
    def descending(self) -> bool:
        return self.order == "high"

    def score(self, dynamics: Dynamics) -> np.ndarray:
        return dynamics.mean_loss()


class ScoreSampler(Sampler):
    """Any per-example score in a .npy file, one value per training example in training-set order: an effect
    vector of `tis-ray attribute`, or imported (TRAK, cleanlab, ...).

    policy: top (highest first), bottom (lowest first), or coverage (coverage-centric coreset selection, Zheng
    et al., ICLR 2023: the `hard_cutoff` fraction of the highest scores left out, the rest cut into `bins` equal
    score ranges, the budget spread over them from the sparsest up, a seeded draw in each). balance: class
    takes each label's share of the training set (largest remainder): the top or bottom of its own ranking, or
    coverage within the label (its own hardest `hard_cutoff` left out, its own score ranges). A manifest.json beside the file naming another training set's
    fingerprint (`pool_fingerprint`, as `tis-ray attribute` writes) is refused, as is a file of another length.
    """

    name = "score"
    reads_file = True
    policies = ("top", "bottom", "coverage")
    balances = BALANCES

    def __init__(self, *, path: str = "", policy: str = "top", balance: str = "none", hard_cutoff: float = 0.0,
                 bins: int = 50):
        self.path, self.policy, self.balance = path, policy, balance
        self.hard_cutoff, self.bins = hard_cutoff, bins

    def validate(self):
        _check_file(self)
        if self.policy not in self.policies:
            raise SpecError(f"sampler 'score': unknown policy {self.policy!r}; known: {', '.join(self.policies)}")
        _check_balance(self)
        if not isinstance(self.hard_cutoff, int | float) or not 0 <= self.hard_cutoff < 1:
            raise SpecError(f"sampler 'score': hard_cutoff must be in [0, 1), got {self.hard_cutoff!r}")
        if not isinstance(self.bins, int) or self.bins < 1:
            raise SpecError(f"sampler 'score': bins must be an integer >= 1, got {self.bins!r}")
        return self

    def scores(self, pool: SamplingPool) -> np.ndarray:
        """Return the file's scores, checked against the pool (length, and fingerprint when a manifest names one)."""
        scores = load_npy(self.path).astype(np.float64)
        if scores.ndim != 1 or len(scores) != len(pool):
            raise SamplingError(f"{self.path}: {scores.shape} scores for a training set of {len(pool)} examples")
        manifest = Path(self.path).with_name("manifest.json")
        if manifest.is_file() and pool.fingerprint:
            named = json.loads(manifest.read_text()).get("pool_fingerprint")
            if named and named != pool.fingerprint:
                raise SamplingError(f"{self.path}: scores of training set {named}, not of this one ({pool.fingerprint})")
        return scores

    def _select(self, pool, budget, rng):
        scores = self.scores(pool)
        if self.policy == "coverage" and self.balance == "class":
            return _coverage_by_class(scores, pool.labels, budget, self.hard_cutoff, self.bins, rng)
        if self.policy == "coverage":
            return _coverage(scores, budget, self.hard_cutoff, self.bins, rng)
        return _take_ranked(_ranked(scores, rng, descending=self.policy == "top"), pool.labels, budget, self.balance,
                            rng)


def _coverage(scores: np.ndarray, budget: int, hard_cutoff: float, bins: int, rng: np.random.Generator) -> np.ndarray:
    """Coverage-centric selection: drop the `hard_cutoff` highest scores, split the rest into `bins` equal-width
    score ranges, and give each range, sparsest first, an equal share of what is left of the budget."""
    order = np.argsort(-scores, kind="stable")
    kept = order[int(np.floor(hard_cutoff * len(order))):]
    if budget > len(kept):
        raise SamplingError(f"budget {budget} is more than the {len(kept)} examples left after the hard cutoff")
    edges = np.linspace(scores[kept].min(), scores[kept].max(), bins + 1)
    strata = np.clip(np.searchsorted(edges, scores[kept], side="right") - 1, 0, bins - 1)
    groups = sorted((kept[strata == b] for b in range(bins) if (strata == b).any()), key=len)
    picked, left = [], budget
    for i, members in enumerate(groups):
        take = min(len(members), left // (len(groups) - i))
        picked.append(rng.choice(members, size=take, replace=False))
        left -= take
    chosen = np.concatenate(picked)
    if left:  # the shares' remainders: a seeded draw from what no range gave yet
        rest = np.setdiff1d(kept, chosen)
        chosen = np.concatenate([chosen, rng.choice(rest, size=left, replace=False)])
    return chosen


def _coverage_by_class(scores: np.ndarray, labels: np.ndarray, budget: int, hard_cutoff: float, bins: int,
                       rng: np.random.Generator) -> np.ndarray:
    """Return coverage-centric selection within each label: the budget split by the labels' shares of the
    training set (largest remainder; a label with fewer examples left than its share gives the rest to the
    others), each label's part chosen by `_coverage` over that label's scores alone."""
    classes, sizes = np.unique(labels, return_counts=True)
    members = [np.flatnonzero(labels == c) for c in classes]
    kept = np.array([len(m) - int(np.floor(hard_cutoff * len(m))) for m in members])
    if budget > kept.sum():
        raise SamplingError(f"budget {budget} is more than the {kept.sum()} examples left after each label's hard cutoff")
    counts = np.minimum(largest_remainder(sizes, budget, rng), kept)
    while counts.sum() < budget:
        counts[np.argmax(kept - counts)] += 1
    picked = [m[_coverage(scores[m], int(k), hard_cutoff, bins, rng)] for m, k in zip(members, counts, strict=True) if k]
    return np.concatenate(picked) if picked else np.empty(0, dtype=np.int64)


SAMPLERS: dict[str, Callable[..., Sampler]] = {
    cls.name: cls for cls in (RandomSampler, StratifiedSampler, KMeansSampler, DBSCANSampler, IndicesSampler,
                              CartographySampler, EL2NSampler, ForgettingSampler, LossSampler,
                              RepeatedRandomSampler, ScoreSampler)
}


# parameters whose allowed values a sampler class lists in an attribute: they become Literal types in the schema
CHOICES = {"mode": "modes", "noise": "noise_policies", "metric": "metrics", "region": "regions", "order": "orders",
           "balance": "balances", "policy": "policies"}


def entry_model(cls: type[Sampler]) -> type[BaseModel]:
    """Return the pydantic model of a sampler's spec entry: `type` plus the constructor's keyword arguments,
    their types and defaults (allowed values as Literals), nothing else."""
    hints = typing.get_type_hints(cls.__init__)
    fields: dict[str, Any] = {"type": (Literal[cls.name], ...)}
    for name, param in inspect.signature(cls).parameters.items():
        annotation = hints.get(name, Any)
        choices = CLUSTER_ORDERS if name == "cluster_order" else getattr(cls, CHOICES.get(name, ""), None)
        if choices:
            annotation = Literal[tuple(choices)]
        fields[name] = (annotation, param.default)
    doc = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else cls.name
    return create_model(f"{cls.__name__}Entry", __config__=ConfigDict(extra="forbid", title=cls.name),
                        __doc__=doc, **fields)


def normalized_entry(sampler: dict) -> dict:
    """Return a sampler entry validated and with its defaults left out, so that equal samplers are equal entries
    (one trial, one label): {'type': 'kmeans', 'mode': 'proportional', 'n_clusters': 8} -> kmeans(n_clusters=8)."""
    built = sampler_from_entry(sampler)  # tis_ray's own one-line errors first
    model = ENTRY_MODELS[sampler["type"]]
    return model.model_validate({"type": sampler["type"], **built.params()}).model_dump(
        mode="json", exclude_defaults=True) | {"type": sampler["type"]}


def get_sampler(name: str, **params) -> Sampler:
    """Return the validated sampler `name` built from `params`; unknown names or parameters raise SpecError."""
    if name not in SAMPLERS:
        raise SpecError(f"unknown sampler {name!r}; known: {', '.join(SAMPLERS)}{did_you_mean(name, SAMPLERS)}")
    known = list(inspect.signature(SAMPLERS[name]).parameters)
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise SpecError(f"sampler {name!r}: unknown parameter {unknown[0]!r}; known: {', '.join(known) or 'none'}"
                        f"{did_you_mean(unknown[0], known)}")
    return SAMPLERS[name](**params).validate()


def sampler_from_entry(sampler: dict) -> Sampler:
    """Return the validated sampler of a spec entry {'type': ..., params}, via `get_sampler`."""
    return get_sampler(sampler["type"], **{k: v for k, v in sampler.items() if k != "type"})


ENTRY_MODELS: dict[str, type[BaseModel]] = {name: entry_model(cls) for name, cls in SAMPLERS.items()}


def register(cls: type[Sampler]) -> type[Sampler]:
    """Add a Sampler subclass to the registry under its `name` (usable as a class decorator); returns it."""
    SAMPLERS[cls.name] = cls
    ENTRY_MODELS[cls.name] = entry_model(cls)
    return cls
# a grid's sampler entry: one of the registered samplers' models, told apart by `type` (the JSON Schema of specs)
SamplerEntry = Annotated[Union[tuple(ENTRY_MODELS.values())], Field(discriminator="type")]  # noqa: UP007


def canonical_entry(sampler: dict) -> dict:
    """Return a sampler entry with every parameter written out (defaults filled in), for comparing entries."""
    return {"type": sampler["type"], **sampler_from_entry(sampler).params()}


def sampler_key(sampler: dict) -> str:
    """Return a stable text key of a sampler spec dict ({'type': ..., params}): the same for equal samplers,
    whether or not their defaults are written out."""
    return json.dumps(canonical_entry(sampler), sort_keys=True)


def sampler_label(sampler: dict) -> str:
    """Return a readable name of a sampler spec dict, e.g. 'kmeans(mode=centroid, n_clusters=512)'."""
    params = ", ".join(f"{k}={v}" for k, v in sorted(sampler.items()) if k != "type")
    return f"{sampler['type']}({params})" if params else sampler["type"]
