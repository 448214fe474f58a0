"""Load and tokenize every split once, and describe the result in a manifest that trials read.

A sweep prepares its data in the driver; each trial then opens the cached Arrow files named in the
manifest instead of reading and tokenizing the raw data again.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from datasets import Dataset, load_from_disk

from tis_ray.data.loaders import NLIData, load_data
from tis_ray.data.schema import HANS_COLUMNS
from tis_ray.data.tokenize import fingerprint_dataset, tokenize_cached
from tis_ray.io import load_npy, read_json, save_npy, write_json, write_via
from tis_ray.overlap import overlap_flags
from tis_ray.spec import SweepSpec

log = logging.getLogger(__name__)

MANIFEST = "data.json"
OVERLAP = "train_overlap.npy"  # beside the manifest: the HANS heuristics' flags of every training pair


@dataclass
class PreparedData:
    """Tokenized train and evaluation sets, the HANS metadata, and the training set's fingerprint."""

    train: Dataset
    eval_sets: dict[str, Dataset]
    hans_meta: pd.DataFrame | None
    train_fingerprint: str
    train_overlap: np.ndarray | None = None  # [n, 2] lexical overlap / subsequence per pair (tis_ray.overlap)
    eval_fingerprints: dict[str, str] = field(default_factory=dict)  # of each evaluation set's text and labels

    @property
    def train_labels(self) -> np.ndarray:
        return np.asarray(self.train["label"], dtype=np.int64)


def prepare_data(spec: SweepSpec, root: str | Path, tokenizer, raw: NLIData | None = None,
                 tokenized_root: str | Path | None = None) -> PreparedData:
    """Return the spec's data tokenized with `tokenizer` (reused when already there), writing root/data.json.

    `raw` is the loaded data when the caller has it already; tokenized splits go to `tokenized_root`
    (default root/tokenized), keyed by dataset and tokenizer, so several tokenizers can share one cache.
    """
    root = Path(root)
    data = raw or load_data(spec.data, spec.eval_sets)
    fingerprint = fingerprint_dataset(data.train)
    tokenized = Path(tokenized_root or root / "tokenized")
    max_len = spec.data.max_seq_length
    train = tokenize_cached(data.train, tokenizer, max_len, tokenized, fingerprint)
    evals = {name: tokenize_cached(ds, tokenizer, max_len, tokenized) for name, ds in data.eval_sets.items()}
    hans_meta = None
    if "hans" in data.eval_sets:
        hans_meta = data.eval_sets["hans"].select_columns([*HANS_COLUMNS, "label"]).to_pandas()
        write_via(root / "hans_meta.parquet", hans_meta.to_parquet)
    eval_fingerprints = {name: fingerprint_dataset(ds) for name, ds in data.eval_sets.items()}
    overlap = overlap_flags(data.train["premise"], data.train["hypothesis"])
    save_npy(root / OVERLAP, overlap)

    def relative(ds) -> str:  # relative to the manifest, so the folder can move (a copy on another node)
        return os.path.relpath(ds.cache_files[0]["filename"].rsplit("/", 1)[0], root)

    write_json(root / MANIFEST, {
        "train": relative(train),
        "eval_sets": {name: relative(ds) for name, ds in evals.items()},
        "hans_meta": "hans_meta.parquet" if hans_meta is not None else None,
        "train_fingerprint": fingerprint,
        "n_train": len(train),
        "train_overlap": OVERLAP,
        "eval_fingerprints": eval_fingerprints,
    })
    return PreparedData(train, evals, hans_meta, fingerprint, overlap, eval_fingerprints)


def open_prepared(root: str | Path) -> PreparedData:
    """Return the PreparedData described by root/data.json without touching the raw data."""
    root = Path(root)
    manifest = read_json(root / MANIFEST)
    meta = manifest["hans_meta"]
    return PreparedData(
        train=load_from_disk(str(root / manifest["train"])),
        eval_sets={name: load_from_disk(str(root / path)) for name, path in manifest["eval_sets"].items()},
        hans_meta=pd.read_parquet(root / meta) if meta else None,
        train_fingerprint=manifest["train_fingerprint"],
        train_overlap=load_npy(root / manifest["train_overlap"]) if manifest.get("train_overlap") else None,
        eval_fingerprints=manifest.get("eval_fingerprints", {}),
    )
