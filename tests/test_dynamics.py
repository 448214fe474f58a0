"""Training dynamics and the samplers on them, against a small table worked out by hand."""

import numpy as np
import pytest

from tis_ray.dynamics import Dynamics, load_dynamics, save_dynamics
from tis_ray.errors import SamplingError, SpecError, TisRayError
from tis_ray.samplers import SamplingPool, get_sampler

# 4 examples x 3 epochs x 3 classes; gold labels 0, 1, 2, 0 (model ids)
PROBS = np.array([
    [[0.9, 0.05, 0.05], [0.5, 0.3, 0.2], [0.4, 0.4, 0.2], [0.6, 0.2, 0.2]],  # epoch 1
    [[0.8, 0.1, 0.1], [0.2, 0.6, 0.2], [0.5, 0.3, 0.2], [0.3, 0.4, 0.3]],    # epoch 2
    [[0.7, 0.2, 0.1], [0.6, 0.3, 0.1], [0.3, 0.5, 0.2], [0.7, 0.2, 0.1]],    # epoch 3
], dtype=np.float32)
LABELS = np.array([0, 1, 2, 0])
GOLD = np.array([[0.9, 0.3, 0.2, 0.6], [0.8, 0.6, 0.2, 0.3], [0.7, 0.3, 0.2, 0.7]])
TABLE = Dynamics(PROBS, -np.log(GOLD).astype(np.float32), LABELS)
POOL = SamplingPool(labels=np.array([0, 1, 2, 0]), dynamics=TABLE)


def test_cartography_measures_by_hand():
    np.testing.assert_allclose(TABLE.confidence(), [0.8, 0.4, 0.2, 1.6 / 3], rtol=1e-6)
    # population std over epochs: (0.9, 0.8, 0.7) -> sqrt(0.02 / 3); (0.3, 0.6, 0.3) -> sqrt(0.02)
    np.testing.assert_allclose(TABLE.variability(), [np.sqrt(0.02 / 3), np.sqrt(0.02), 0.0, 0.16997], atol=1e-5)
    # argmax per epoch: ex1 wrong/right/wrong, ex2 never right (a tie at epoch 1 goes to class 0), ex3 right/wrong/right
    np.testing.assert_allclose(TABLE.correctness(), [1.0, 1 / 3, 0.0, 2 / 3])


def test_el2n_and_forgetting_by_hand():
    # epoch 1: |p - onehot|: sqrt(.015), sqrt(.78), sqrt(.96), sqrt(.24)
    np.testing.assert_allclose(TABLE.el2n(1), np.sqrt([0.015, 0.78, 0.96, 0.24]), rtol=1e-5)
    # right -> wrong transitions: ex1 once (epoch 2 -> 3), ex3 once (1 -> 2); ex2 never learned: infinite
    assert TABLE.forgetting().tolist() == [0.0, 1.0, np.inf, 1.0]
    with pytest.raises(TisRayError, match="EL2N at epoch 4, but the reference run recorded epochs 1..3"):
        TABLE.el2n(4)


@pytest.mark.parametrize(("name", "params", "budget", "expected"), [
    ("cartography", {"region": "ambiguous"}, 2, [1, 3]),  # variability: .170 (ex3), .141 (ex1), .082, 0
    ("cartography", {"region": "hard"}, 2, [1, 2]),  # confidence ascending: .2 (ex2), .4 (ex1)
    ("cartography", {"region": "easy"}, 2, [0, 3]),  # confidence descending: .8 (ex0), .533 (ex3)
    ("el2n", {"epoch": 1}, 2, [1, 2]),  # EL2N descending: .980 (ex2), .883 (ex1), .490, .122
    ("el2n", {"epoch": 1, "drop_hardest": 0.25}, 2, [1, 3]),  # floor(.25 * 4) = 1 dropped: ex2
    ("forgetting", {}, 1, [2]),  # never learned first
    ("forgetting", {}, 3, [1, 2, 3]),
    ("loss", {"order": "high"}, 2, [1, 2]),  # mean loss: 1.609 (ex2), .973 (ex1), .691 (ex3), .228 (ex0)
    ("loss", {"order": "low"}, 2, [0, 3]),
])
def test_dynamics_samplers_exact_indices(name, params, budget, expected):
    for seed in (0, 1, 2):
        assert get_sampler(name, **params).select(POOL, budget, seed=seed).tolist() == expected


def test_ties_are_broken_by_the_seed():
    # forgetting at budget 2: ex2 first, then ex1 or ex3 (both forgotten once), chosen by the seed
    picks = {tuple(get_sampler("forgetting").select(POOL, 2, seed=s).tolist()) for s in range(20)}
    assert picks == {(1, 2), (2, 3)}
    assert get_sampler("forgetting").select(POOL, 2, seed=5).tolist() == \
        get_sampler("forgetting").select(POOL, 2, seed=5).tolist()


def test_bad_dynamics_settings_are_one_line_errors():
    with pytest.raises(SpecError, match="sampler 'cartography': unknown region 'middle'; known: ambiguous, hard, easy"):
        get_sampler("cartography", region="middle")
    for bad in (1.0, -0.1):
        with pytest.raises(SpecError, match=r"sampler 'el2n': drop_hardest must be in \[0, 1\)"):
            get_sampler("el2n", drop_hardest=bad)
    with pytest.raises(SpecError, match="epoch must be an integer >= 1"):
        get_sampler("el2n", epoch=0)
    with pytest.raises(SamplingError, match="sampler 'el2n': epoch 5, but the reference run recorded 3 epochs"):
        get_sampler("el2n", epoch=5).select(POOL, 2, seed=0)
    with pytest.raises(SamplingError, match="needs training dynamics, and none were recorded"):
        get_sampler("loss").select(SamplingPool(labels=np.zeros(4, dtype=np.int64)), 2, seed=0)


def test_saved_dynamics_refuse_another_dataset(tmp_path):
    save_dynamics(TABLE, tmp_path, fingerprint="abc", model="tiny-albert", seed=1, seconds=0.1)
    loaded = load_dynamics(tmp_path, fingerprint="abc")
    np.testing.assert_array_equal(loaded.probs, PROBS)
    with pytest.raises(TisRayError, match="training dynamics belong to dataset abc, not to this training set"):
        load_dynamics(tmp_path, fingerprint="xyz")
    with pytest.raises(TisRayError, match="not a training-dynamics folder"):
        load_dynamics(tmp_path / "nothing")
