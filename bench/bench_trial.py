"""Trial throughput: a tis_ray trial against the original project's approach, same model, data, settings.

    python bench/bench_trial.py                  # ~9 min on 2 CPU cores

Original approach: every pair padded to max_seq_length 128 and tokenized anew in the trial, default
(random) batching. tis_ray: the trial's training loop (the HF Trainer with
train_sampling_strategy="group_by_length" and tis_ray's PairCollator for dynamic padding) on data tokenized
once per sweep (a cache hit in the trial). Model: ALBERT-base shape (random weights); data: 3,200 synthetic
pairs with MNLI's length profile (mean ~40 tokens, tail to 128), batch 32, fp32 on CPU. Each side trains 25
optimizer steps: for 3,200 pairs Transformers' length-grouped sampler sorts windows of 25 batches, so 25
steps are one whole window, a fair sample of the epoch (it starts with the longest batch). Each side's
one-off data preparation (tokenizing / opening the cache) is charged in proportion: examples/s =
steps x 32 / (train seconds + prep seconds x steps x 32 / n_train). With a CUDA GPU: bf16/fp16 and peak
GPU memory too.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from common import machine, record
from datasets import Dataset
from models import albert_base_random
from transformers import Trainer, TrainingArguments, default_data_collator

from tis_ray.batching import PairCollator
from tis_ray.data import load_data
from tis_ray.data.prepare import open_prepared, prepare_data
from tis_ray.device import placement
from tis_ray.models import load_model, load_tokenizer
from tis_ray.spec import build_spec
from tis_ray.training import BucketTrainer


def _args(scratch: str, steps: int, precision: str, strategy: str, batch: int = 32) -> TrainingArguments:
    return TrainingArguments(output_dir=scratch, max_steps=steps, per_device_train_batch_size=batch, learning_rate=2e-5,
                             seed=0, data_seed=0, report_to="none", save_strategy="no", disable_tqdm=True,
                             use_cpu=not torch.cuda.is_available(), fp16=precision == "fp16",
                             bf16=precision == "bf16", train_sampling_strategy=strategy, remove_unused_columns=False)


def original_approach(raw, model_path: str, steps: int, precision: str, batch: int = 32) -> float:
    """Return training examples/s the way the original scripts trained: pad to 128, tokenize in the trial."""
    tokenizer = load_tokenizer(model_path)
    start = time.perf_counter()
    enc = tokenizer(list(raw["premise"]), list(raw["hypothesis"]), padding="max_length", truncation=True,
                    max_length=128, return_token_type_ids=True)
    train = Dataset.from_dict({**enc, "labels": list(raw["label"])})
    prep = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as scratch:
        trainer = Trainer(model=load_model(model_path), args=_args(scratch, steps, precision, "random", batch),
                          train_dataset=train, data_collator=default_data_collator)
        start = time.perf_counter()
        trainer.train()
    return _throughput(steps, time.perf_counter() - start, prep, len(raw), batch)


def tis_ray_loop(prepared: Path, model_path: str, steps: int, precision: str, batch: int = 32) -> float:
    """Return training examples/s of the tis_ray trial's training loop on the cached, tokenized data."""
    tokenizer = load_tokenizer(model_path)
    start = time.perf_counter()
    train = open_prepared(prepared).train  # what a sweep's trial does before training
    prep = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as scratch:
        trainer = BucketTrainer(model=load_model(model_path), args=_args(scratch, steps, precision, "random", batch),
                                train_dataset=train, data_collator=PairCollator(tokenizer.pad_token_id),
                                group_by_length=True)
        start = time.perf_counter()
        trainer.train()
    return _throughput(steps, time.perf_counter() - start, prep, len(train), batch)


def _throughput(steps: int, train_seconds: float, prep_seconds: float, n_train: int, batch: int = 32) -> float:
    examples = steps * batch
    return examples / (train_seconds + prep_seconds * examples / n_train)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n-train", type=int, default=3200)
    parser.add_argument("--steps", type=int, default=25)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tis_ray_bench_"))
    model_path = albert_base_random(work / "albert-base-random")
    spec = build_spec({"model": {"name": model_path}, "eval_sets": ["mnli_m"],
                       "data": {"synthetic": {"n_train": args.n_train, "n_eval": 64, "length_profile": "mnli"},
                                "hans": None}})
    precision = placement("bench trial", None, "auto").precision
    data = prepare_data(spec, work / "prepared", load_tokenizer(model_path))
    lengths = np.asarray(data.train["length"])
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    ours = tis_ray_loop(work / "prepared", model_path, args.steps, precision)
    gpu_mem = torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None
    baseline = original_approach(load_data(spec.data, ["mnli_m"]).train, model_path, args.steps, precision)
    body = "\n".join([
        f"`python bench/bench_trial.py --n-train {args.n_train} --steps {args.steps}` on {machine()}, "
        f"precision {precision}.", "",
        f"ALBERT-base shape, {args.n_train} synthetic pairs with MNLI's lengths (mean {lengths.mean():.1f} tokens, "
        f"median {np.median(lengths):.0f}, max {lengths.max()}), batch 32, {args.steps} optimizer steps each:", "",
        "| approach | training examples/s |", "|---|---:|",
        f"| original: pad to 128, tokenize in the trial, random batches | {baseline:.2f} |",
        f"| tis_ray: cached tokenization, dynamic padding, length-bucketed batches in random order | {ours:.2f} |", "",
        f"**Speed-up: {ours / baseline:.2f}x** (padding alone would give 128 / mean length = "
        f"{128 / lengths.mean():.1f}x if cost were linear in length; attention makes it superlinear)."
        + (f" Peak GPU memory of the tis_ray loop: {gpu_mem:.2f} GiB." if gpu_mem else "")])
    record("Trial throughput (issue 6.1)" + (f" on {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ""),
           body)


if __name__ == "__main__":
    main()
