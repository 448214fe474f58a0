"""Every data source mapped to one schema: premise, hypothesis, label, idx (+ HANS columns).

MNLI labels: 0 entailment, 1 neutral, 2 contradiction. HANS labels: 0 entailment, 1 non-entailment, with
heuristic, subcase, template and pair_id columns.
"""

from __future__ import annotations

import logging
import os
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from datasets import Dataset

from tis_ray.data import synthetic
from tis_ray.data.schema import EVAL_SETS, HANS_COLUMNS, HANS_LABELS, MNLI_LABELS, SYNTHETIC_HANS_SEED_OFFSET
from tis_ray.data.tables import parse_label, read_rows, require_columns
from tis_ray.errors import DataError
from tis_ray.io import write_text
from tis_ray.spec import DataSpec

log = logging.getLogger(__name__)

HANS_URL = "https://raw.githubusercontent.com/tommccoy1/hans/master/heuristics_evaluation_set.txt"


@dataclass
class NLIData:
    """The training set and the evaluation sets by name (mnli_m, mnli_mm, hans)."""

    train: Dataset
    eval_sets: dict[str, Dataset] = field(default_factory=dict)


def cache_dir() -> Path:
    """Return tis_ray's cache folder ($TIS_RAY_CACHE, else ~/.cache/tis_ray)."""
    return Path(os.environ.get("TIS_RAY_CACHE", Path.home() / ".cache" / "tis_ray"))


def load_nli_file(path: str | Path, premise: str = "premise", hypothesis: str = "hypothesis",
                  label: str = "label") -> Dataset:
    """Return a CSV / TSV / JSONL file of NLI pairs in the canonical schema (label names or ids)."""
    cols = {"premise": [], "hypothesis": [], "label": [], "idx": []}
    skipped = 0
    for lineno, row in read_rows(path):
        require_columns(path, lineno, row, [premise, hypothesis, label])
        if str(row[label]).strip() == "-":  # no annotator consensus (GLUE keeps a few such rows)
            skipped += 1
            continue
        cols["premise"].append(str(row[premise]))
        cols["hypothesis"].append(str(row[hypothesis]))
        cols["label"].append(parse_label(row[label], MNLI_LABELS, f"{path}:{lineno}"))
        cols["idx"].append(len(cols["idx"]))
    if skipped:
        log.warning("%s: skipped %d rows without a gold label ('-')", path, skipped)
    return Dataset.from_dict(cols)


def load_glue_mnli(glue_dir: str | Path) -> dict[str, Dataset]:
    """Return train / mnli_m / mnli_mm from a GLUE MNLI folder (sentence1, sentence2, gold_label)."""
    glue_dir = Path(glue_dir)
    files = {"train": "train.tsv", "mnli_m": "dev_matched.tsv", "mnli_mm": "dev_mismatched.tsv"}
    return {name: load_nli_file(glue_dir / f, "sentence1", "sentence2", "gold_label") for name, f in files.items()}


def load_hub_mnli() -> dict[str, Dataset]:
    """Return train / mnli_m / mnli_mm of nyu-mll/glue (config mnli) from the Hugging Face hub."""
    from datasets import load_dataset

    glue = load_dataset("nyu-mll/glue", "mnli")
    splits = {"train": "train", "mnli_m": "validation_matched", "mnli_mm": "validation_mismatched"}
    return {name: glue[split].select_columns(["premise", "hypothesis", "label", "idx"])
            for name, split in splits.items()}


def load_hans_file(path: str | Path) -> Dataset:
    """Return HANS from its TSV (heuristics_evaluation_set.txt layout) in the canonical schema."""
    cols = {k: [] for k in ("premise", "hypothesis", "label", "idx", *HANS_COLUMNS)}
    needed = ["gold_label", "sentence1", "sentence2", "pairID", "heuristic", "subcase", "template"]
    for lineno, row in read_rows(path, delimiter="\t"):
        require_columns(path, lineno, row, needed)
        cols["premise"].append(row["sentence1"])
        cols["hypothesis"].append(row["sentence2"])
        cols["label"].append(parse_label(row["gold_label"], HANS_LABELS, f"{path}:{lineno}"))
        cols["idx"].append(len(cols["idx"]))
        for key, source in zip(HANS_COLUMNS, ("heuristic", "subcase", "template", "pairID"), strict=True):
            cols[key].append(row[source])
    return Dataset.from_dict(cols)


def download_hans() -> Path:
    """Return the local path of the public HANS evaluation set, downloading it once into the cache."""
    target = cache_dir() / "hans" / "heuristics_evaluation_set.txt"
    if not target.is_file():
        log.info("downloading HANS from %s", HANS_URL)
        try:
            with urllib.request.urlopen(HANS_URL, timeout=60) as response:
                text = response.read().decode("utf-8")
        except OSError as exc:
            raise DataError(f"could not download HANS from {HANS_URL} ({exc}); "
                            "pass a local heuristics_evaluation_set.txt as data.hans") from None
        write_text(target, text)
    return target


def synthetic_splits(spec: DataSpec) -> dict[str, Dataset]:
    """Return the built-in synthetic train / mnli_m / mnli_mm / hans sets for `spec.synthetic`."""
    s = spec.synthetic
    return {
        "train": Dataset.from_dict(synthetic.generate_nli(s.n_train, s.seed, "people", s.length_profile,
                                                          s.counter_examples)),
        "mnli_m": Dataset.from_dict(synthetic.generate_nli(s.n_eval, s.seed + 1, "people", s.length_profile)),
        "mnli_mm": Dataset.from_dict(synthetic.generate_nli(s.n_eval, s.seed + 2, "animals", s.length_profile)),
        "hans": synthetic_hans(spec),
    }


def synthetic_hans(spec: DataSpec) -> Dataset:
    """Return the synthetic HANS-style set of `spec.synthetic` (the same for every data source)."""
    s = spec.synthetic
    return Dataset.from_dict(synthetic.generate_hans(s.hans_per_cell, s.seed + SYNTHETIC_HANS_SEED_OFFSET))


def _even_subset(dataset: Dataset, n: int | None) -> Dataset:
    """At most `n` rows spread evenly over the set (so a capped HANS keeps every heuristic)."""
    if n is None or len(dataset) <= n:
        return dataset
    return dataset.select(np.unique(np.linspace(0, len(dataset) - 1, n).astype(int)))


def pool_rows(n: int, size: int, seed: int) -> np.ndarray:
    """Return the sorted training-set rows of a seeded pool of `size` examples out of `n`."""
    if size > n:
        raise DataError(f"data.pool_size {size} is more than the {n} training examples")
    return np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False))


def pool_of(train: Dataset, size: int, seed: int) -> Dataset:
    """Return the training pool: `size` examples of `train` chosen by `seed`, in their training-set order."""
    return train.select(pool_rows(len(train), size, seed))


def load_data(spec: DataSpec, eval_sets: tuple[str, ...] | list[str] = EVAL_SETS) -> NLIData:
    """Return the training set and the requested evaluation sets described by `spec`."""
    if spec.source == "synthetic":
        splits = synthetic_splits(spec)
    elif spec.source == "glue_dir":
        splits = load_glue_mnli(spec.glue_dir)
    elif spec.source == "mnli_hub":
        splits = load_hub_mnli()
    else:
        cols = spec.columns
        splits = {"train": load_nli_file(spec.train_file, cols.premise, cols.hypothesis, cols.label),
                  "mnli_m": load_nli_file(spec.matched_file, cols.premise, cols.hypothesis, cols.label)}
        if spec.mismatched_file:
            splits["mnli_mm"] = load_nli_file(spec.mismatched_file, cols.premise, cols.hypothesis, cols.label)
    if "hans" in eval_sets and spec.source != "synthetic":
        if spec.hans == "synthetic":
            splits["hans"] = synthetic_hans(spec)
        elif spec.hans == "download":
            splits["hans"] = load_hans_file(download_hans())
        elif spec.hans:
            splits["hans"] = load_hans_file(spec.hans)
    train = splits["train"]
    if spec.max_train_examples:
        train = train.select(range(min(spec.max_train_examples, len(train))))
    if spec.pool_size:
        train = pool_of(train, spec.pool_size, spec.pool_seed)
    evals = {name: _even_subset(splits[name], spec.max_eval_examples)
             for name in eval_sets if name in splits and (name != "hans" or spec.hans)}
    return NLIData(train=train, eval_sets=evals)
