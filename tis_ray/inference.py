"""Batched forward passes shared by evaluation and embedding: length-sorted batches, dynamic padding."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import torch

from tis_ray.batching import INPUT_COLUMNS, length_sorted_batches, pad_batch


def autocast(device: torch.device, precision: str):
    """Return the autocast context for `precision` on `device` (a no-op context for fp32)."""
    if precision == "fp32" or device.type != "cuda":
        return contextlib.nullcontext()
    return torch.autocast("cuda", dtype=torch.bfloat16 if precision == "bf16" else torch.float16)


def forward_batches(model, tokenized, pad_id: int, batch_size: int, precision: str = "fp32",
                    **forward_kwargs) -> Iterator[tuple[np.ndarray, object, torch.Tensor]]:
    """Yield (row indices, model outputs, attention mask) for length-sorted batches under inference mode."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode(), autocast(device, precision):
            for rows in length_sorted_batches(tokenized["length"], batch_size):
                batch = pad_batch(tokenized.select_columns(list(INPUT_COLUMNS))[rows], pad_id)
                batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
                yield rows, model(**batch, **forward_kwargs), batch["attention_mask"]
    finally:
        model.train(was_training)


def predict_logits(model, tokenized, pad_id: int, batch_size: int, precision: str = "fp32") -> np.ndarray:
    """Return the model's output logits [rows, classes] as float32, in row order."""
    logits = np.empty((len(tokenized), model.config.num_labels), dtype=np.float32)
    for rows, outputs, _ in forward_batches(model, tokenized, pad_id, batch_size, precision):
        logits[rows] = outputs.logits.float().cpu().numpy()
    return logits


def predict_ids(model, tokenized, pad_id: int, batch_size: int, precision: str = "fp32") -> np.ndarray:
    """Return the model's argmax output id for every row, in row order."""
    return predict_logits(model, tokenized, pad_id, batch_size, precision).argmax(-1)
