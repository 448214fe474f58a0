"""Trial throughput: a tis_ray trial against the original project's approach, same model, data, settings.

    python bench/bench_trial.py                 # ~5 min on 2 CPU cores
    python bench/bench_trial.py --n-train 200   # quicker

Original approach: every pair padded to max_seq_length 128 and tokenized anew in the trial, default
(random) batching. tis_ray: tokenized once per sweep (cache hit in the trial), dynamic padding with
length-grouped batches. Model: ALBERT-base shape (random weights); data: the synthetic corpus with
MNLI's length profile (mean ~40 tokens, tail to 128). Both train 1 epoch at batch 32 with the HF Trainer.
With a CUDA GPU, the same in bf16/fp16 plus peak GPU memory.
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

from tis_ray.data.prepare import open_prepared, prepare_data
from tis_ray.inference import resolve_precision
from tis_ray.models import load_model, load_tokenizer
from tis_ray.spec import build_spec
from tis_ray.trial import run_trial


def original_approach(spec, model_path: str, n_train: int, precision: str) -> float:
    """Return training examples/s the way the original scripts trained: pad to 128, tokenize in the trial."""
    from tis_ray.data import load_data

    raw = load_data(spec.data, ["mnli_m"]).train.select(range(n_train))
    tokenizer = load_tokenizer(model_path)
    start = time.perf_counter()
    enc = tokenizer(raw["premise"], raw["hypothesis"], padding="max_length", truncation=True, max_length=128,
                    return_token_type_ids=True)
    train = Dataset.from_dict({**enc, "labels": raw["label"]})
    with tempfile.TemporaryDirectory() as scratch:
        args = TrainingArguments(output_dir=scratch, num_train_epochs=1, per_device_train_batch_size=32,
                                 learning_rate=2e-5, seed=0, report_to="none", save_strategy="no",
                                 disable_tqdm=True, use_cpu=not torch.cuda.is_available(),
                                 fp16=precision == "fp16", bf16=precision == "bf16")
        Trainer(model=load_model(model_path), args=args, train_dataset=train,
                data_collator=default_data_collator).train()
    return n_train / (time.perf_counter() - start)


def tis_ray_trial(spec, prepared: Path, n_train: int, out: Path) -> tuple[float, float]:
    """Return (training examples/s including opening the cached data, lengths' mean) of a tis_ray trial."""
    start = time.perf_counter()
    open_prepared(prepared)  # what a sweep's trial does before training
    load_seconds = time.perf_counter() - start
    final = run_trial({"spec": spec.model_dump(mode="json"), "seed": 0, "budget": {"n_examples": n_train},
                       "sampler": {"type": "random"}, "prepared": {"data": str(prepared)}}, out)
    return n_train / (final["train_time_s"] + load_seconds), final


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n-train", type=int, default=640)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tis_ray_bench_"))
    model_path = albert_base_random(work / "albert-base-random")
    spec = build_spec({"model": {"name": model_path},
                       "data": {"synthetic": {"n_train": args.n_train, "n_eval": 64, "length_profile": "mnli"},
                                "hans": None},
                       "eval_sets": ["mnli_m"], "train": {"epochs": 1, "batch_size": 32, "learning_rate": 2e-5},
                       "grid": {"n_examples": [args.n_train]}})
    precision = resolve_precision("auto")
    data = prepare_data(spec, work / "prepared", load_tokenizer(model_path))
    lengths = np.asarray(data.train["length"])
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    ours, final = tis_ray_trial(spec, work / "prepared", args.n_train, work / "trial")
    gpu_mem = torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None
    baseline = original_approach(spec, model_path, args.n_train, precision)
    body = "\n".join([
        f"`python bench/bench_trial.py --n-train {args.n_train}` on {machine()}, precision {precision}.", "",
        f"ALBERT-base shape, {args.n_train} synthetic pairs with MNLI's lengths (mean {lengths.mean():.1f} tokens, "
        f"max {lengths.max()}), 1 epoch, batch 32:", "",
        "| approach | training examples/s |", "|---|---:|",
        f"| original: pad to 128, tokenize in the trial, random batches | {baseline:.1f} |",
        f"| tis_ray: cached tokenization, dynamic padding, length-grouped batches | {ours:.1f} |", "",
        f"**Speed-up: {ours / baseline:.2f}x** (padding alone caps it near 128 / mean length = "
        f"{128 / lengths.mean():.1f}x)." + (f" Peak GPU memory of the tis_ray trial: {gpu_mem:.2f} GiB." if gpu_mem else "")])
    record("Trial throughput (issue 6.1)" + (f" on {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ""), body)


if __name__ == "__main__":
    main()
