"""[CLS] (or mean / pooler) representations of every training example, streamed into a .npy on disk."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import numpy as np
import torch
from numpy.lib.format import open_memmap

from tis_ray.device import Placement
from tis_ray.errors import TisRayError
from tis_ray.inference import forward_batches
from tis_ray.io import load_npy, read_json, write_json
from tis_ray.progress import Progress

log = logging.getLogger(__name__)

POOLINGS = ("cls", "mean", "pooler")


def pool(outputs, attention_mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """Return one vector per row: last-layer [CLS] state, masked mean of the last layer, or the pooler output."""
    if pooling == "cls":
        return outputs.last_hidden_state[:, 0]
    if pooling == "mean":
        mask = attention_mask.unsqueeze(-1).to(outputs.last_hidden_state.dtype)
        return (outputs.last_hidden_state * mask).sum(1) / mask.sum(1).clamp(min=1)
    if outputs.pooler_output is None:
        raise TisRayError("pooling 'pooler' asked for, but this model has no pooler")
    return outputs.pooler_output


def embed_dataset(model, tokenized, pad_id: int, out_dir: str | Path, *, placement: Placement,
                  pooling: str = "cls", batch_size: int = 256, dtype: str = "float32",
                  model_name: str = "", fingerprint: str | None = None) -> dict:
    """Embed every row of `tokenized` into out_dir/embeddings.npy (row i = example i) and write manifest.json.

    The model runs on `placement` (its device and precision); rows are written straight into a memory-mapped
    .npy as each batch finishes, so the embeddings are never held in memory twice. Returns the manifest.
    """
    if pooling not in POOLINGS:
        raise TisRayError(f"unknown pooling {pooling!r}; known: {', '.join(POOLINGS)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    encoder = model.to(placement.device).base_model
    dim = model.config.hidden_size
    tmp = out / ".embeddings.npy.tmp"
    matrix = open_memmap(tmp, mode="w+", dtype=np.dtype(dtype), shape=(len(tokenized), dim))
    start = time.perf_counter()
    with Progress("embedding", len(tokenized), unit="pair") as progress:
        for rows, outputs, mask in forward_batches(encoder, tokenized, pad_id, batch_size, placement.precision):
            matrix[rows] = pool(outputs, mask, pooling).float().cpu().numpy().astype(dtype, copy=False)
            progress.update(len(rows))
    matrix.flush()
    del matrix
    os.replace(tmp, out / "embeddings.npy")
    seconds = time.perf_counter() - start
    manifest = {"model": model_name, "pooling": pooling, "fingerprint": fingerprint, "rows": len(tokenized),
                "dim": dim, "dtype": dtype, "device": placement.device, "precision": placement.precision,
                "seconds": seconds,
                "rows_per_s": len(tokenized) / seconds}
    write_json(out / "manifest.json", manifest)
    return manifest


def load_embeddings(path: str | Path, fingerprint: str | None = None, mmap: bool = True) -> np.ndarray:
    """Return saved embeddings, refusing them when their manifest names another dataset than `fingerprint`."""
    path = Path(path)
    manifest_path = path / "manifest.json"
    if not manifest_path.is_file():
        raise TisRayError(f"{path}: no manifest.json: not an embeddings folder written by tis-ray embed")
    manifest = read_json(manifest_path)
    if fingerprint and manifest.get("fingerprint") != fingerprint:
        raise TisRayError(f"{path}: embeddings belong to dataset {manifest.get('fingerprint')}, not to this "
                          f"training set ({fingerprint}); embed it again with tis-ray embed")
    matrix = load_npy(path / "embeddings.npy", mmap=mmap)
    if matrix.shape != (manifest["rows"], manifest["dim"]):
        raise TisRayError(f"{path}: embeddings.npy has shape {matrix.shape}, manifest says "
                          f"({manifest['rows']}, {manifest['dim']})")
    return matrix
