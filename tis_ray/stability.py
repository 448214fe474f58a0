"""How much a sampler's choice hangs on the seed of what scored the examples.

Dynamics scores come from reference fine-tunes, clusters from KMeans; both depend on a seed. With several
(dynamics.seeds, clustering.stability_seeds) this module measures the agreement: the Spearman correlation of
each score between seeds, the overlap (Jaccard) of the subsets a sampler takes from each seed's scores alone,
and the adjusted Rand index between clusterings.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd

from tis_ray.dynamics import SCORES, DynamicsEnsemble


def rank_stability(ensemble: DynamicsEnsemble) -> pd.DataFrame:
    """Return per score (and EL2N after the first epoch) the mean and the lowest Spearman correlation between
    the reference runs of every pair of seeds."""
    from scipy.stats import spearmanr

    rows = []
    for score, args in [*((s, ()) for s in SCORES), ("el2n", (1,))]:
        values = [np.nan_to_num(getattr(m, score)(*args), posinf=1e9) for m in ensemble.members]
        rhos = [float(spearmanr(a, b)[0]) for a, b in combinations(values, 2)]
        rows.append({"score": score + ("@1" if args else ""), "seeds": len(values), "pairs": len(rhos),
                     "spearman_mean": float(np.nanmean(rhos)), "spearman_min": float(np.nanmin(rhos))})
    return pd.DataFrame(rows)


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Return |a ∩ b| / |a ∪ b| of two index sets."""
    a, b = set(a.tolist()), set(b.tolist())
    return len(a & b) / len(a | b) if a | b else 1.0


def subset_overlap(entry: dict, ensemble: DynamicsEnsemble, labels: np.ndarray, budget: int, seed: int) -> dict:
    """Return the Jaccard overlap of the subsets that sampler `entry` takes at `budget` from each reference
    run's dynamics alone (mean and lowest over pairs of runs), and of each with the averaged scores' subset."""
    from tis_ray.samplers import SamplingPool, sampler_from_entry

    sampler = sampler_from_entry(entry)
    picks = [sampler.select(SamplingPool(labels, dynamics=m), budget, seed) for m in ensemble.members]
    averaged = sampler.select(SamplingPool(labels, dynamics=ensemble), budget, seed)
    pairwise = [jaccard(a, b) for a, b in combinations(picks, 2)]
    return {"jaccard_mean": float(np.mean(pairwise)), "jaccard_min": float(np.min(pairwise)),
            "jaccard_with_mean_scores": float(np.mean([jaccard(p, averaged) for p in picks]))}


def cluster_agreement(reference: np.ndarray, others: list[np.ndarray]) -> list[float]:
    """Return the adjusted Rand index of each clustering in `others` with `reference` (1: the same partition)."""
    from sklearn.metrics import adjusted_rand_score

    return [float(adjusted_rand_score(reference, other)) for other in others]
