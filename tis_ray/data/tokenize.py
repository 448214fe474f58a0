"""Tokenization once per (tokenizer, dataset, max length), cached on disk as Arrow via `datasets`."""

from __future__ import annotations

import hashlib
import logging
import time
from pathlib import Path

import numpy as np
from datasets import Dataset, load_from_disk

from tis_ray.data.task import text_columns_of
from tis_ray.io import folder_written_whole

log = logging.getLogger(__name__)

MODEL_COLUMNS = ["input_ids", "token_type_ids", "attention_mask", "label", "length"]


def fingerprint_dataset(dataset: Dataset) -> str:
    """Return a sha256 (16 hex digits) over every text (premise and hypothesis, or the sentence) and label, in
    order."""
    texts = text_columns_of(dataset.column_names)
    digest = hashlib.sha256()
    for batch in dataset.select_columns([*texts, "label"]).iter(batch_size=50_000):
        for i, column in enumerate(texts):
            if i:
                digest.update(b"\x1e")
            digest.update("\x1f".join(batch[column]).encode())
        digest.update(np.asarray(batch["label"], dtype="<i8").tobytes())
    return digest.hexdigest()[:16]


def fingerprint_tokenizer(tokenizer) -> str:
    """Return a sha256 (16 hex digits) of the tokenizer's full definition."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    text = backend.to_str() if backend is not None else repr(sorted(tokenizer.get_vocab().items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def tokenize(dataset: Dataset, tokenizer, max_length: int) -> Dataset:
    """Return the pairs encoded as (premise, hypothesis) with segment ids (or single sentences), unpadded, plus
    `length`."""
    texts = text_columns_of(dataset.column_names)

    def encode(batch):
        enc = tokenizer(*(batch[c] for c in texts), truncation=True, max_length=max_length,
                        return_token_type_ids=True)
        enc["length"] = [len(ids) for ids in enc["input_ids"]]
        return enc

    keep = set(MODEL_COLUMNS)
    return dataset.map(encode, batched=True, batch_size=2000,
                       remove_columns=[c for c in dataset.column_names if c not in keep],
                       desc="tokenizing").select_columns(MODEL_COLUMNS)


def tokenize_cached(dataset: Dataset, tokenizer, max_length: int, cache_root: str | Path,
                    dataset_fingerprint: str | None = None) -> Dataset:
    """Return the tokenized dataset from `cache_root`, tokenizing and saving it first on a miss.

    The cache key is (dataset fingerprint, tokenizer fingerprint, max_length); entries are written to a
    temporary folder and renamed, so a crashed writer never leaves a half entry behind.
    """
    key = f"{dataset_fingerprint or fingerprint_dataset(dataset)}-{fingerprint_tokenizer(tokenizer)}-{max_length}"
    target = Path(cache_root) / key
    if target.is_dir():
        log.debug("tokenization cache hit: %s", target)
        return load_from_disk(str(target))
    start = time.perf_counter()
    log.info("tokenizing %d pairs (max length %d)", len(dataset), max_length)
    tokenized = tokenize(dataset, tokenizer, max_length)
    with folder_written_whole(target) as tmp:  # another process may save the same entry first: fine
        tokenized.save_to_disk(str(tmp))
    seconds = time.perf_counter() - start
    log.info("tokenized %d pairs in %.1f s (%.0f pairs/s) -> %s", len(dataset), seconds,
             len(dataset) / max(seconds, 1e-9), target)
    return load_from_disk(str(target))


def cache_entries(cache_root: str | Path) -> list[Path]:
    """Return the finished entries of a tokenization cache (what benchmarks count)."""
    root = Path(cache_root)
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")) if root.is_dir() else []
