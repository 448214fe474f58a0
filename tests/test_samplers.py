import numpy as np
import pytest

from tis_ray.errors import SamplingError, SpecError
from tis_ray.samplers import SamplingPool, get_sampler, largest_remainder

# 10 examples in 3 clusters of sizes 5, 3, 2; labels cycle 0,1,2.
CLUSTERS = np.array([0, 0, 0, 0, 0, 1, 1, 1, 2, 2])
DISTANCES = np.array([0.5, 0.1, 0.9, 0.3, 0.7, 0.2, 0.05, 0.8, 0.4, 0.6])
POOL = SamplingPool(labels=np.arange(10) % 3, clusters=CLUSTERS, distances=DISTANCES)


def test_largest_remainder_by_hand():
    # budget 5 over sizes 5,3,2 (n=10): quotas 2.5, 1.5, 1.0 -> floors 2,1,1 (4); one more to a .5 remainder
    counts = largest_remainder(np.array([5, 3, 2]), 5, np.random.default_rng(0))
    assert counts.sum() == 5 and counts[2] == 1 and sorted(counts[:2].tolist()) == [2, 2]
    assert largest_remainder(np.array([7, 0, 3]), 10, np.random.default_rng(0)).tolist() == [7, 0, 3]


@pytest.mark.parametrize("name,params", [("random", {}), ("stratified", {}),
                                         ("kmeans", {"mode": "proportional"}), ("kmeans", {"mode": "centroid"}),
                                         ("kmeans", {"mode": "round_robin"})])
@pytest.mark.parametrize("budget", [1, 4, 7, 10])
def test_budgets_are_exact_without_duplicates_and_deterministic(name, params, budget):
    sampler = get_sampler(name, **params)
    a = sampler.select(POOL, budget, seed=3)
    assert len(a) == budget == len(np.unique(a))
    assert np.array_equal(a, sampler.select(POOL, budget, seed=3))


def test_seed_changes_random_subset():
    s = get_sampler("random")
    assert not np.array_equal(s.select(POOL, 5, 1), s.select(POOL, 5, 2))


def test_proportional_allocation_follows_cluster_sizes():
    picked = get_sampler("kmeans", mode="proportional").select(POOL, 5, seed=0)
    counts = np.bincount(CLUSTERS[picked], minlength=3)
    assert counts[2] == 1 and sorted(counts[:2].tolist()) == [2, 2]
    picked = get_sampler("stratified").select(POOL, 6, seed=0)  # labels 4x0, 3x1, 3x2 -> 2.4, 1.8, 1.8
    assert np.bincount(POOL.labels[picked]).tolist() in ([2, 2, 2],)


def test_centroid_mode_takes_nearest_of_every_cluster_first():
    picked = get_sampler("kmeans", mode="centroid").select(POOL, 3, seed=0)
    assert picked.tolist() == [1, 6, 8]  # nearest in clusters 0, 1, 2
    picked = get_sampler("kmeans", mode="centroid").select(POOL, 6, seed=0)
    assert picked.tolist() == [1, 3, 5, 6, 8, 9]  # then the second nearest of each


def test_round_robin_takes_one_per_cluster_before_seconds():
    picked = get_sampler("kmeans", mode="round_robin").select(POOL, 3, seed=5)
    assert sorted(CLUSTERS[picked].tolist()) == [0, 1, 2]
    picked = get_sampler("kmeans", mode="round_robin").select(POOL, 8, seed=5)
    assert np.bincount(CLUSTERS[picked]).tolist() == [3, 3, 2]  # cluster 2 exhausted after two rounds


def test_num_clusters_takes_whole_clusters():
    picked = get_sampler("kmeans", mode="num_clusters", clusters_to_take=2).select(POOL, None, seed=0)
    sizes = np.bincount(CLUSTERS[picked], minlength=3)
    assert all(size in (0, full) for size, full in zip(sizes, [5, 3, 2], strict=True))
    assert (sizes > 0).sum() == 2
    with pytest.raises(SamplingError, match="only 3 clusters"):
        get_sampler("kmeans", mode="num_clusters", clusters_to_take=4).select(POOL, None, seed=0)


DB = SamplingPool(labels=np.zeros(8, dtype=int), clusters=np.array([0, 0, 0, 1, 1, -1, -1, -1]))


def test_dbscan_noise_policies():
    exclude = get_sampler("dbscan", noise="exclude", mode="round_robin").select(DB, 5, seed=0)
    assert set(exclude.tolist()) == {0, 1, 2, 3, 4}
    with pytest.raises(SamplingError):
        get_sampler("dbscan", noise="exclude").select(DB, 6, seed=0)  # only 5 non-noise points
    # include: each noise point is a cluster of its own, so 5 round-robin picks = one per "cluster"
    include = get_sampler("dbscan", noise="include", mode="round_robin").select(DB, 5, seed=0)
    assert {5, 6, 7} <= set(include.tolist())
    # cluster: noise is one cluster of 3, like the others
    grouped = get_sampler("dbscan", noise="cluster", mode="round_robin").select(DB, 3, seed=0)
    assert len(set(DB.clusters[grouped].tolist())) == 3


def test_dbscan_degenerate_clustering_is_an_error_not_random():
    all_noise = SamplingPool(labels=np.zeros(4, dtype=int), clusters=np.full(4, -1))
    with pytest.raises(SamplingError, match="found 0 cluster"):
        get_sampler("dbscan", noise="include").select(all_noise, 2, seed=0)
    one = SamplingPool(labels=np.zeros(4, dtype=int), clusters=np.zeros(4, dtype=int))
    with pytest.raises(SamplingError, match="would be random sampling"):
        get_sampler("dbscan").select(one, 2, seed=0)


def test_invalid_sampler_settings_are_spec_errors():
    with pytest.raises(SpecError, match="unknown mode 'centroid'; known: proportional, round_robin"):
        get_sampler("dbscan", mode="centroid")
    with pytest.raises(SpecError, match="unknown noise policy"):
        get_sampler("dbscan", noise="drop")
    with pytest.raises(SpecError, match="n_clusters must be an integer >= 2"):
        get_sampler("kmeans", n_clusters=1)


def test_budget_outside_pool_and_missing_clusters():
    with pytest.raises(SamplingError, match="outside"):
        get_sampler("random").select(POOL, 11, seed=0)
    with pytest.raises(SamplingError, match="needs cluster labels"):
        get_sampler("kmeans").select(SamplingPool(labels=np.zeros(5, dtype=int)), 2, seed=0)


def test_random_subsets_nest_across_budgets_only_when_asked():
    pool = SamplingPool(labels=np.zeros(1000, dtype=np.int64))
    nested = get_sampler("random", nested=True)
    small, large = nested.select(pool, 100, seed=3), nested.select(pool, 300, seed=3)
    assert set(small) <= set(large)
    assert set(small) == set(np.random.default_rng(3).permutation(1000)[:100])  # a prefix of one permutation
    plain = get_sampler("random")
    assert not set(plain.select(pool, 100, seed=3)) <= set(plain.select(pool, 300, seed=3))


def test_a_sampler_that_selects_nothing_is_an_error():
    from tis_ray.samplers import Sampler

    class Empty(Sampler):
        name = "empty"

        def _select(self, pool, budget, rng):
            return np.empty(0, dtype=np.int64)

    with pytest.raises(SamplingError, match="sampler 'empty' selected no training examples"):
        Empty().select(SamplingPool(labels=np.zeros(10, dtype=np.int64)), 5, seed=0)


# The original's rules (prajjwal1/generalize_lm_nli@e84ab5a, core/clustering.py), worked out by hand on
# clusters of unequal size with DBSCAN noise: cluster 0 has 3 members, 1 has 1, 2 has 4, noise (-1) has 2.
ORIG = np.array([2, 0, -1, 2, 1, 0, 2, -1, 0, 2])
ORIG_POOL = SamplingPool(labels=np.zeros(10, dtype=np.int64), clusters=ORIG)
MEMBERS = {0: [1, 5, 8], 1: [4], 2: [0, 3, 6, 9], -1: [2, 7]}


@pytest.mark.parametrize("budget,taken", [
    (4, [0]),        # 3 < 4 takes cluster 0; 3 + 1 = 4 is not < 4 (strict), so the walk ends at cluster 1
    (5, [0, 1]),     # 3 < 5, 4 < 5; 8 >= 5 ends it: 4 examples, under the budget
    (8, [0, 1]),     # 3 + 1 + 4 = 8 lands exactly on the budget: cluster 2 is not taken
    (9, [0, 1, 2]),  # 8 < 9; noise comes last and 10 >= 9
    (10, [0, 1, 2]),
])
def test_whole_clusters_under_budget_as_the_original(budget, taken):
    expected = sorted(i for k in taken for i in MEMBERS[k])
    for noise in ("exclude", "cluster"):
        sampler = get_sampler("dbscan", mode="whole_clusters", noise=noise)
        picked = sampler.select(ORIG_POOL, budget, seed=0)
        assert picked.tolist() == expected
        assert np.array_equal(picked, sampler.select(ORIG_POOL, budget, seed=99))  # seed-independent
        record = sampler.selection_record(ORIG_POOL, picked)
        assert record["clusters_taken"] == taken and "get_cluster_indices_by_pct" in record["rule"]


def test_whole_clusters_reach_noise_last_and_only_when_allowed():
    kmeans_like = SamplingPool(labels=np.zeros(10, dtype=np.int64), clusters=np.where(ORIG < 0, 3, ORIG))
    # noise as one cluster (the original's set order puts -1 after 0, 1, 2): taken after them, like cluster 3
    with_noise = get_sampler("dbscan", mode="whole_clusters", noise="cluster")
    assert with_noise.select(ORIG_POOL, 10, seed=0).tolist() == [0, 1, 3, 4, 5, 6, 8, 9]
    assert np.array_equal(get_sampler("kmeans", mode="whole_clusters").select(kmeans_like, 10, seed=0),
                          with_noise.select(ORIG_POOL, 10, seed=0))
    with pytest.raises(SamplingError, match=r"first cluster in label order \(0\) holds 3 examples"):
        with_noise.select(ORIG_POOL, 3, seed=0)


def test_num_clusters_in_label_order_takes_clusters_0_to_k_minus_1():
    two = get_sampler("dbscan", mode="num_clusters", clusters_to_take=2, noise="cluster")
    assert two.select(ORIG_POOL, None, seed=5).tolist() == [1, 4, 5, 8]  # clusters 0 and 1, every seed
    assert two.select(ORIG_POOL, None, seed=6).tolist() == [1, 4, 5, 8]
    # noise is the last "cluster": only a request for all 4 groups reaches it, and only when noise allows it
    assert get_sampler("dbscan", mode="num_clusters", clusters_to_take=4, noise="cluster").select(
        ORIG_POOL, None, seed=0).tolist() == list(range(10))
    with pytest.raises(SamplingError, match="clusters_to_take=4 but the clustering has only 3 clusters"):
        get_sampler("dbscan", mode="num_clusters", clusters_to_take=4).select(ORIG_POOL, None, seed=0)
    # cluster_order random: today's seeded choice, an extension
    shuffled = get_sampler("dbscan", mode="num_clusters", clusters_to_take=2, cluster_order="random")
    subsets = {tuple(shuffled.select(ORIG_POOL, None, seed=s).tolist()) for s in range(20)}
    assert len(subsets) > 1 and all(set(ORIG[list(sub)]) <= {0, 1, 2} for sub in subsets)
    with pytest.raises(SpecError, match="cluster_order goes with mode num_clusters"):
        get_sampler("kmeans", mode="proportional", cluster_order="random")


def test_centroid_overall_keeps_duplicates_as_the_original():
    # centers 0 and 2 are both nearest to example 6 (a far-off example of cluster 2 sits between them)
    nearest = np.array([6, 4, 6])
    pool = SamplingPool(labels=np.zeros(10, dtype=np.int64), clusters=np.where(ORIG < 0, 0, ORIG),
                        centroid_nearest=nearest)
    sampler = get_sampler("kmeans", mode="centroid_overall", n_clusters=3)
    picked = sampler.select(pool, 3, seed=0)
    assert picked.tolist() == [4, 6, 6]  # 3 rows, 2 distinct examples: the original's Subset trained on both
    assert sampler.selection_record(pool, picked)["n_distinct"] == 2
    assert set(sampler.select(pool, 2, seed=1)) <= {4, 6}
    with pytest.raises(SamplingError, match="more than the 3 centers"):
        sampler.select(pool, 4, seed=0)
    with pytest.raises(SamplingError, match="centroid_nearest.npy"):
        sampler.select(ORIG_POOL, 2, seed=0)


def test_centroid_mode_without_distances_is_one_line():
    with pytest.raises(SamplingError, match="needs each example's distance to its center"):
        get_sampler("kmeans", mode="centroid").select(SamplingPool(labels=np.zeros(10, dtype=int), clusters=CLUSTERS),
                                                     3, seed=0)


def test_nearest_to_centers_matches_a_brute_force_argmin():
    from tis_ray.clustering import fit_clusters

    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(c, 0.3, size=(40, 4)) for c in (0.0, 3.0, 6.0)]).astype(np.float32)
    result = fit_clusters(x, {"algorithm": "kmeans", "n_clusters": 3}, backend="sklearn", seed=0)
    brute = np.argmin(((result.centers_[:, None, :] - x[None, :, :]) ** 2).sum(-1), axis=1)
    assert result.centroid_nearest_.tolist() == brute.tolist()


def test_a_dbscan_eps_that_is_not_a_number_is_a_spec_error():
    with pytest.raises(SpecError, match="eps must be > 0"):
        get_sampler("dbscan", eps="1e-09")  # YAML 1.1 reads 1e-09 (no dot) as a string


def test_class_balanced_score_samplers_keep_the_label_shares_by_hand():
    from tis_ray.dynamics import Dynamics

    # 10 examples, labels 0 x 6 then 1 x 4; the loss ranks 0..9 highest first, so the top 5 are all label 0
    labels = np.array([0] * 6 + [1] * 4)
    loss = np.tile(np.arange(10, 0, -1, dtype=np.float32), (2, 1))
    probs = np.full((2, 10, 3), 1 / 3, dtype=np.float32)
    pool = SamplingPool(labels, dynamics=Dynamics(probs, loss, labels))
    assert get_sampler("loss").select(pool, 5, seed=0).tolist() == [0, 1, 2, 3, 4]
    # balanced: 6/10 and 4/10 of 5 = 3 of label 0 and 2 of label 1, each the top of its own label's ranking
    assert get_sampler("loss", balance="class").select(pool, 5, seed=0).tolist() == [0, 1, 2, 6, 7]
    # a label with fewer ranked examples than its share gives the rest to the others: EL2N with the hardest dropped
    el2n = get_sampler("el2n", balance="class", drop_hardest=0.5)  # all EL2N equal: a seeded order, half left
    picked = el2n.select(pool, 5, seed=3)
    assert len(picked) == 5 and len(set(picked)) == 5
    with pytest.raises(SpecError, match="unknown balance 'labels'; known: none, class"):
        get_sampler("forgetting", balance="labels")


def test_score_sampler_policies_by_hand(tmp_path):
    import json

    scores = np.array([0.9, 0.1, 0.5, 0.7, 0.3, 0.8, 0.2, 0.6, 0.4, 0.0])
    path = tmp_path / "effects.npy"
    np.save(path, scores)
    labels = np.array([0, 0, 0, 0, 0, 1, 1, 1, 1, 1])
    pool = SamplingPool(labels, fingerprint="pool-a")
    assert get_sampler("score", path=str(path)).select(pool, 3, seed=0).tolist() == [0, 3, 5]  # 0.9 0.8 0.7
    assert get_sampler("score", path=str(path), policy="bottom").select(pool, 3, seed=0).tolist() == [1, 6, 9]
    # class-balanced top 4: two of each label, each label's own best (0.9, 0.7 | 0.8, 0.6)
    assert get_sampler("score", path=str(path), balance="class").select(pool, 4, seed=0).tolist() == [0, 3, 5, 7]
    # coverage: the hardest 20% (0.9, 0.8) out; 0.0..0.7 in 2 ranges [0, 0.35) and [0.35, 0.7]: 4 each,
    # a budget of 4 takes 2 from each
    picked = get_sampler("score", path=str(path), policy="coverage", hard_cutoff=0.2, bins=2).select(pool, 4, seed=1)
    assert len(picked) == 4 and not {0, 5} & set(picked.tolist())
    assert sum(scores[picked] < 0.35) == 2 and sum(scores[picked] >= 0.35) == 2
    # another training set's scores are refused by the manifest beside them, another length by the length
    (tmp_path / "manifest.json").write_text(json.dumps({"pool_fingerprint": "pool-b"}))
    with pytest.raises(SamplingError, match="scores of training set pool-b, not of this one"):
        get_sampler("score", path=str(path)).select(pool, 3, seed=0)
    with pytest.raises(SamplingError, match=r"\(10,\) scores for a training set of 4 examples"):
        get_sampler("score", path=str(path)).select(SamplingPool(labels[:4]), 2, seed=0)
    with pytest.raises(SpecError, match="unknown policy 'middle'; known: top, bottom, coverage"):
        get_sampler("score", path=str(path), policy="middle")


def test_coverage_within_each_class_by_hand(tmp_path):
    # label 0: 8 examples scored 0.0 .. 1.0, label 1: 2 examples scored 1.0; budget 5 -> shares 4 and 1
    scores = np.array([0.0, 0.1, 0.2, 0.3, 0.4, 0.8, 0.9, 1.0, 1.0, 1.0])
    labels = np.array([0] * 8 + [1] * 2)
    path = tmp_path / "scores.npy"
    np.save(path, scores)
    pool = SamplingPool(labels)
    sampler = get_sampler("score", path=str(path), policy="coverage", balance="class", hard_cutoff=0.25, bins=2)
    for seed in range(5):
        picked = set(sampler.select(pool, 5, seed=seed).tolist())
        # label 0 leaves out its own hardest 2 (0.9, 1.0: rows 6, 7); 0.0..0.8 in [0, 0.4) and [0.4, 0.8]: the
        # sparser range {4, 5} gets 4 // 2 = 2, the other 2 of {0, 1, 2, 3}; label 1 (floor(0.5) = 0 left out)
        # gives 1 of its 2
        assert {4, 5} <= picked and len(picked & {0, 1, 2, 3}) == 2 and len(picked & {8, 9}) == 1
        assert not picked & {6, 7}
    # without balance the cut and the ranges are global: label 1's share is not kept
    overall = get_sampler("score", path=str(path), policy="coverage", hard_cutoff=0.25, bins=2)
    assert {len(set(overall.select(pool, 5, seed=s).tolist()) & {8, 9}) for s in range(20)} != {1}
    with pytest.raises(SamplingError, match="budget 9 is more than the 8 examples left after each label's hard cutoff"):
        sampler.select(pool, 9, seed=0)
