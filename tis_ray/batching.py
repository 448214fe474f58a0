"""Batches of NLI pairs with dynamic padding: every batch pads only to its own longest pair.

Training batches group pairs of similar length (`LengthBucketSampler`) and come in a random order;
evaluation and embedding sort by length.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Sampler

INPUT_COLUMNS = ("input_ids", "token_type_ids", "attention_mask")


def pad_batch(columns: dict[str, list], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad the token columns of one batch to its longest row; `label` becomes `labels`."""
    ids = columns["input_ids"]
    width = max(len(row) for row in ids)
    out = {}
    for name in INPUT_COLUMNS:
        if name not in columns:
            continue
        fill = pad_id if name == "input_ids" else 0
        matrix = np.full((len(ids), width), fill, dtype=np.int64)
        for i, row in enumerate(columns[name]):
            matrix[i, : len(row)] = row
        out[name] = torch.from_numpy(matrix)
    if "label" in columns:
        out["labels"] = torch.as_tensor(columns["label"], dtype=torch.long)
    return out


class PairCollator:
    """Data collator for the HF Trainer: keeps model inputs and labels, pads dynamically."""

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        keys = [k for k in (*INPUT_COLUMNS, "label") if k in features[0]]
        batch = pad_batch({k: [f[k] for f in features] for k in keys}, self.pad_id)
        if "row" in features[0]:  # training-set positions, for training-dynamics recording
            batch["rows"] = torch.as_tensor([f["row"] for f in features], dtype=torch.long)
        return batch


def length_sorted_batches(lengths: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Return row-index batches, longest rows first, so each batch pads to similar lengths."""
    order = np.argsort(-np.asarray(lengths), kind="stable")
    return [order[i: i + batch_size] for i in range(0, len(order), batch_size)]


class LengthBucketSampler(Sampler[int]):
    """Training order: batches of similar-length pairs, the batches themselves in a random order.

    Each epoch shuffles the rows, sorts them by length within mega-batches of `mega_batches` batches (as
    Transformers' LengthGroupedSampler does), cuts the result into batches and then shuffles the batch order,
    so that long and short batches alternate at random (Transformers' sampler leaves every mega-batch in
    descending length). The last, possibly partial, batch stays last so batch boundaries hold. Seeded by
    (seed, epoch): the Trainer calls `set_epoch` before each epoch, so a resumed run repeats the same order.
    """

    def __init__(self, lengths, batch_size: int, seed: int, mega_batches: int | None = None):
        self.lengths = np.asarray(lengths)
        self.batch_size, self.seed, self.epoch = batch_size, seed, 0
        n_batches = -(-len(self.lengths) // batch_size)
        self.mega_batches = mega_batches or max(1, min(50, n_batches // 4))

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.lengths)

    def batches(self) -> list[np.ndarray]:
        """Return this epoch's batches of row indices, in training order."""
        rng = np.random.default_rng([self.seed, self.epoch])
        order = rng.permutation(len(self.lengths))
        mega = self.mega_batches * self.batch_size
        for start in range(0, len(order), mega):
            chunk = order[start: start + mega]
            order[start: start + mega] = chunk[np.argsort(-self.lengths[chunk], kind="stable")]
        batches = [order[i: i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        full = len(batches) - (len(batches[-1]) < self.batch_size if batches else 0)
        shuffled = [batches[i] for i in rng.permutation(full)]
        return shuffled + batches[full:]

    def __iter__(self):
        return iter(np.concatenate(self.batches()).tolist() if len(self.lengths) else [])


class PassSampler(Sampler[int]):
    """Training order as a stream of passes over subsets, cut into epochs of `samples_per_epoch` examples.

    Pass p goes over `passes[p % len(passes)]` (row positions in the training set) in a random order seeded by
    (seed, p), length-bucketed as LengthBucketSampler when `lengths` are given. Two uses: a fixed compute budget
    (one subset cycled, epochs of the full-data run's steps, so a 10% subset takes 10 passes per epoch) and a
    fresh random subset every pass (repeated random sampling). Epoch e is a fixed slice of the stream: a resumed
    run repeats it exactly.
    """

    def __init__(self, passes, samples_per_epoch: int, batch_size: int, seed: int, lengths=None):
        self.passes = [np.asarray(p, dtype=np.int64) for p in passes]
        if len({len(p) for p in self.passes}) != 1 or not len(self.passes[0]):
            raise ValueError("every pass needs the same, non-zero number of rows")
        self.samples_per_epoch, self.batch_size, self.seed = samples_per_epoch, batch_size, seed
        self.lengths = None if lengths is None else np.asarray(lengths)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.samples_per_epoch

    def pass_order(self, p: int) -> np.ndarray:
        """Return the rows of pass `p` in training order."""
        rows = self.passes[p % len(self.passes)]
        if self.lengths is None:
            return np.random.default_rng([self.seed, p]).permutation(rows)
        bucketed = LengthBucketSampler(self.lengths[rows], self.batch_size, seed=self.seed)
        bucketed.set_epoch(p)
        return rows[np.fromiter(bucketed, dtype=np.int64)]

    def __iter__(self):
        width = len(self.passes[0])
        start, stop = self.epoch * self.samples_per_epoch, (self.epoch + 1) * self.samples_per_epoch
        chunks = [self.pass_order(p) for p in range(start // width, -(-stop // width))]
        first = (start // width) * width
        return iter(np.concatenate(chunks)[start - first: stop - first].tolist())
