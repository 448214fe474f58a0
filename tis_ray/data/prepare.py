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

from tis_ray.data.loaders import TaskData, load_data
from tis_ray.data.task import MNLI_TASK, EvalDefinition, Task
from tis_ray.data.tokenize import fingerprint_dataset, tokenize_cached
from tis_ray.io import load_npy, read_json, save_npy, write_json, write_via
from tis_ray.overlap import OVERLAP_RULE, entailment_id, overlap_flags
from tis_ray.spec import SweepSpec

log = logging.getLogger(__name__)

MANIFEST = "data.json"
OVERLAP = "train_overlap.npy"  # beside the manifest: the HANS heuristics' flags of every training pair


EVAL_META = "eval_meta"  # beside the manifest: <set>.parquet, each evaluation example's label and group columns


@dataclass
class PreparedData:
    """Tokenized train and evaluation sets, each set's definition and metadata (labels, group columns), the
    task, the training set's fingerprint and the revisions of what was read."""

    train: Dataset
    eval_sets: dict[str, Dataset]
    eval_meta: dict[str, pd.DataFrame]
    train_fingerprint: str
    train_overlap: np.ndarray | None = None  # [n, 2] lexical overlap / subsequence per pair (tis_ray.overlap)
    eval_fingerprints: dict[str, str] = field(default_factory=dict)  # of each evaluation set's text and labels
    task: Task = MNLI_TASK
    definitions: dict[str, EvalDefinition] = field(default_factory=dict)
    revisions: dict[str, str] = field(default_factory=dict)
    train_overlap_rule: str | None = None  # the rule train_overlap was computed under (None: before it was recorded)

    @property
    def train_labels(self) -> np.ndarray:
        return np.asarray(self.train["label"], dtype=np.int64)

    @property
    def hans_meta(self) -> pd.DataFrame | None:
        """HANS's metadata (heuristic, subcase, template, pair_id, gold, label), when HANS is evaluated."""
        return self.eval_meta.get("hans")


def prepare_data(spec: SweepSpec, root: str | Path, tokenizer, raw: TaskData | None = None,
                 tokenized_root: str | Path | None = None) -> PreparedData:
    """Return the spec's data tokenized with `tokenizer` (reused when already there), writing root/data.json.

    `raw` is the loaded data when the caller has it already; tokenized splits go to `tokenized_root`
    (default root/tokenized), keyed by dataset and tokenizer, so several tokenizers can share one cache.
    """
    root = Path(root)
    data = raw or load_data(spec.data, spec.eval_sets)
    if data.task.nli:  # refused before any tokenization: the overlap statistics name the entailment label
        entailment_id(data.task.labels)
    fingerprint = fingerprint_dataset(data.train)
    tokenized = Path(tokenized_root or root / "tokenized")
    max_len = spec.data.max_seq_length
    train = tokenize_cached(data.train, tokenizer, max_len, tokenized, fingerprint)
    evals = {name: tokenize_cached(ds, tokenizer, max_len, tokenized) for name, ds in data.eval_sets.items()}
    eval_meta = {}
    for name, ds in data.eval_sets.items():
        eval_meta[name] = ds.select_columns([*data.definitions[name].meta_columns, "label"]).to_pandas()
        write_via(root / EVAL_META / f"{name}.parquet", eval_meta[name].to_parquet)
    eval_fingerprints = {name: fingerprint_dataset(ds) for name, ds in data.eval_sets.items()}
    overlap = None
    if data.task.nli:  # HANS's heuristics are properties of premise-hypothesis pairs
        overlap = overlap_flags(data.train["premise"], data.train["hypothesis"])
        save_npy(root / OVERLAP, overlap)

    def relative(ds) -> str:  # relative to the manifest, so the folder can move (a copy on another node)
        return os.path.relpath(ds.cache_files[0]["filename"].rsplit("/", 1)[0], root)

    write_json(root / MANIFEST, {
        "train": relative(train),
        "eval_sets": {name: relative(ds) for name, ds in evals.items()},
        "eval_meta": {name: f"{EVAL_META}/{name}.parquet" for name in evals},
        "train_fingerprint": fingerprint,
        "n_train": len(train),
        "train_overlap": OVERLAP if overlap is not None else None,
        "train_overlap_rule": OVERLAP_RULE if overlap is not None else None,
        "eval_fingerprints": eval_fingerprints,
        "task": data.task.to_json(),
        "definitions": {name: d.to_json() for name, d in data.definitions.items()},
        "revisions": data.revisions,
    })
    return PreparedData(train, evals, eval_meta, fingerprint, overlap, eval_fingerprints, data.task,
                        dict(data.definitions), dict(data.revisions),
                        train_overlap_rule=OVERLAP_RULE if overlap is not None else None)


def open_prepared(root: str | Path) -> PreparedData:
    """Return the PreparedData described by root/data.json without touching the raw data."""
    root = Path(root)
    manifest = read_json(root / MANIFEST)
    return PreparedData(
        train=load_from_disk(str(root / manifest["train"])),
        eval_sets={name: load_from_disk(str(root / path)) for name, path in manifest["eval_sets"].items()},
        eval_meta={name: pd.read_parquet(root / path) for name, path in manifest["eval_meta"].items()},
        train_fingerprint=manifest["train_fingerprint"],
        train_overlap=load_npy(root / manifest["train_overlap"]) if manifest.get("train_overlap") else None,
        train_overlap_rule=manifest.get("train_overlap_rule"),
        eval_fingerprints=manifest.get("eval_fingerprints", {}),
        task=Task.from_json(manifest["task"]),
        definitions={name: EvalDefinition.from_json(d) for name, d in manifest["definitions"].items()},
        revisions=manifest.get("revisions", {}),
    )
