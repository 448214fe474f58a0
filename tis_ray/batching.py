"""Batches of NLI pairs with dynamic padding: every batch pads only to its own longest pair.

Training order is grouped by length by Transformers' LengthGroupedSampler
(`train_sampling_strategy="group_by_length"`); evaluation and embedding sort by length.
"""

from __future__ import annotations

import numpy as np
import torch

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
        return pad_batch({k: [f[k] for f in features] for k in keys}, self.pad_id)


def length_sorted_batches(lengths: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Return row-index batches, longest rows first, so each batch pads to similar lengths."""
    order = np.argsort(-np.asarray(lengths), kind="stable")
    return [order[i: i + batch_size] for i in range(0, len(order), batch_size)]
