"""Training dynamics of every training example, recorded once from the reference run's own forward passes.

Per example and epoch: the softmax over the classes and the loss, taken from the training forward passes
themselves (no extra pass; dropout on, as in Swayamdipta et al.'s cartography code). From them:

- confidence: mean gold-label probability over epochs; variability: its standard deviation; correctness:
  fraction of epochs the prediction was right (Dataset Cartography, Swayamdipta et al., EMNLP 2020);
- EL2N at an epoch: L2 norm of softmax minus the one-hot gold label (Paul et al., NeurIPS 2021);
- forgetting events: how often an example goes from right to wrong between consecutive epochs; an example
  never learned counts as forgotten the most (Toneva et al., ICLR 2019).

The recording itself is `training.DynamicsRecorder` (it needs torch; this module stays numpy-only, so the
samplers and the spec can use it without importing torch). Stored like embeddings: probs.npy [epochs, n, classes], loss.npy [epochs, n], labels.npy [n] (model ids)
and manifest.json with the training set's fingerprint, the model and the epochs; never pickled.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tis_ray.errors import TisRayError
from tis_ray.io import load_npy, read_json, save_npy, write_json

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Dynamics:
    """Recorded training dynamics: probs [epochs, n, classes], loss [epochs, n], gold labels [n]."""

    probs: np.ndarray
    loss: np.ndarray
    labels: np.ndarray

    @property
    def epochs(self) -> int:
        return self.probs.shape[0]

    def __len__(self) -> int:
        return self.probs.shape[1]

    def gold_prob(self) -> np.ndarray:
        """Return [epochs, n]: the probability given to the gold label."""
        return np.take_along_axis(self.probs, self.labels[None, :, None], axis=2)[..., 0]

    def correct(self) -> np.ndarray:
        """Return [epochs, n]: whether the argmax prediction was the gold label."""
        return self.probs.argmax(axis=2) == self.labels[None, :]

    def confidence(self) -> np.ndarray:
        return self.gold_prob().mean(axis=0)

    def variability(self) -> np.ndarray:
        return self.gold_prob().std(axis=0)  # population std over epochs, as the cartography code

    def correctness(self) -> np.ndarray:
        return self.correct().mean(axis=0)

    def el2n(self, epoch: int) -> np.ndarray:
        """Return the EL2N score of every example at `epoch` (1-based)."""
        if not 1 <= epoch <= self.epochs:
            raise TisRayError(f"EL2N at epoch {epoch}, but the reference run recorded epochs 1..{self.epochs}")
        onehot = np.eye(self.probs.shape[2], dtype=np.float64)[self.labels]
        return np.linalg.norm(self.probs[epoch - 1] - onehot, axis=1)

    def forgetting(self) -> np.ndarray:
        """Return forgetting events per example (right at epoch t, wrong at t+1); never learned: +inf."""
        correct = self.correct()
        events = (correct[:-1] & ~correct[1:]).sum(axis=0).astype(np.float64)
        events[~correct.any(axis=0)] = np.inf
        return events

    def mean_loss(self) -> np.ndarray:
        """Return each example's training loss averaged over the epochs."""
        return self.loss.mean(axis=0)


SCORES = ("confidence", "variability", "correctness", "forgetting", "mean_loss")  # per-example, epoch-free


@dataclass(frozen=True)
class DynamicsEnsemble:
    """The dynamics of several reference runs that differ only in seed: every score is the mean of the runs'
    scores (dynamics.seeds), so a ranking does not hang on one run's luck. `members[0]` is the first seed's."""

    members: tuple[Dynamics, ...]
    seeds: tuple[int, ...]

    @property
    def labels(self) -> np.ndarray:
        return self.members[0].labels

    @property
    def epochs(self) -> int:
        return self.members[0].epochs

    def __len__(self) -> int:
        return len(self.members[0])

    def _mean(self, score: str, *args) -> np.ndarray:
        return np.mean([getattr(m, score)(*args) for m in self.members], axis=0)

    def confidence(self) -> np.ndarray:
        return self._mean("confidence")

    def variability(self) -> np.ndarray:
        return self._mean("variability")

    def correctness(self) -> np.ndarray:
        return self._mean("correctness")

    def el2n(self, epoch: int) -> np.ndarray:
        return self._mean("el2n", epoch)

    def forgetting(self) -> np.ndarray:
        return self._mean("forgetting")

    def mean_loss(self) -> np.ndarray:
        return self._mean("mean_loss")


def save_dynamics(dynamics: Dynamics, out_dir: str | Path, *, fingerprint: str, model: str, seed: int,
                  seconds: float) -> Path:
    """Write probs.npy, loss.npy, labels.npy and manifest.json into `out_dir`; returns it."""
    out = Path(out_dir)
    save_npy(out / "probs.npy", dynamics.probs)
    save_npy(out / "loss.npy", dynamics.loss)
    save_npy(out / "labels.npy", dynamics.labels)
    write_json(out / "manifest.json", {"fingerprint": fingerprint, "model": model, "epochs": dynamics.epochs,
                                       "rows": len(dynamics), "seed": seed, "record_seconds": seconds})
    return out


SEEDS_DIR = "seeds"  # <dynamics>/seeds/<seed>: the reference runs of dynamics.seeds after the first


def load_dynamics(path: str | Path, fingerprint: str | None = None) -> Dynamics | DynamicsEnsemble:
    """Return saved dynamics, refusing those recorded on another training set than `fingerprint`; with runs of
    further seeds under path/seeds, their DynamicsEnsemble (the folder's own run first)."""
    path = Path(path)
    first = _load_one(path, fingerprint)
    others = sorted((p for p in (path / SEEDS_DIR).iterdir() if p.is_dir()), key=lambda p: int(p.name)) \
        if (path / SEEDS_DIR).is_dir() else []
    if not others:
        return first
    seeds = (int(read_json(path / "manifest.json").get("seed", 0)), *(int(p.name) for p in others))
    return DynamicsEnsemble((first, *(_load_one(p, fingerprint) for p in others)), seeds)


def _load_one(path: Path, fingerprint: str | None) -> Dynamics:
    if not (path / "manifest.json").is_file():
        raise TisRayError(f"{path}: no manifest.json: not a training-dynamics folder (tis-ray dynamics writes one)")
    manifest = read_json(path / "manifest.json")
    if fingerprint and manifest.get("fingerprint") != fingerprint:
        raise TisRayError(f"{path}: training dynamics belong to dataset {manifest.get('fingerprint')}, not to this "
                          f"training set ({fingerprint}); record them again with tis-ray dynamics")
    return Dynamics(load_npy(path / "probs.npy"), load_npy(path / "loss.npy"), load_npy(path / "labels.npy"))
