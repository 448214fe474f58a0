"""Embedding throughput of `tis-ray embed` against the original approach, same model and data, one run.

    python bench/bench_embed.py            # ~3 min on 2 CPU cores

Original approach: every pair padded to 128, batches of 512 in dataset order, no inference mode (plain
torch.no_grad forward). tis_ray: length-sorted batches with dynamic padding under torch.inference_mode,
streamed into a memory-mapped .npy. Model: ALBERT-base shape (random weights); data: synthetic pairs with
MNLI's length profile.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from common import machine, record
from models import albert_base_random

from tis_ray.data.prepare import prepare_data
from tis_ray.device import placement
from tis_ray.embeddings import embed_dataset, load_embeddings
from tis_ray.models import load_model, load_tokenizer
from tis_ray.spec import build_spec


def original_embed(model, tokenizer, raw, batch_size: int = 512) -> tuple[np.ndarray, float]:
    device = next(model.parameters()).device
    start = time.perf_counter()
    rows = []
    with torch.no_grad():
        for i in range(0, len(raw), batch_size):
            batch = raw[i: i + batch_size]
            enc = tokenizer(batch["premise"], batch["hypothesis"], padding="max_length", truncation=True,
                            max_length=128, return_tensors="pt", return_token_type_ids=True).to(device)
            rows.append(model.base_model(**enc).last_hidden_state[:, 0].float().cpu().numpy())
    return np.concatenate(rows), time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1536)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tis_ray_bench_"))
    model_path = albert_base_random(work / "albert-base-random")
    spec = build_spec({"data": {"synthetic": {"n_train": args.n, "n_eval": 8, "length_profile": "mnli"}}})
    tokenizer = load_tokenizer(model_path)
    data = prepare_data(spec, work / "prepared", tokenizer)
    model = load_model(model_path).to("cuda" if torch.cuda.is_available() else "cpu").eval()
    from tis_ray.data import load_data

    raw = load_data(spec.data, ["mnli_m"]).train
    baseline, baseline_s = original_embed(model, tokenizer, raw)
    manifest = embed_dataset(model, data.train, tokenizer.pad_token_id, work / "emb", batch_size=256,
                             placement=placement("bench embed", None, "fp32"), fingerprint=data.train_fingerprint)
    ours = load_embeddings(work / "emb", data.train_fingerprint)
    # same vectors, row for row (padding changes nothing under the attention mask)
    max_diff = float(np.abs(np.asarray(ours) - baseline).max())
    body = "\n".join([
        f"`python bench/bench_embed.py --n {args.n}` on {machine()}.", "",
        f"ALBERT-base shape, {args.n} synthetic pairs with MNLI's lengths, [CLS] pooling, fp32:", "",
        "| approach | examples/s |", "|---|---:|",
        f"| original: pad to 128, batch 512, dataset order, no inference mode | {args.n / baseline_s:.1f} |",
        f"| tis-ray embed: length-sorted batches of 256, dynamic padding, inference mode | {manifest['rows_per_s']:.1f} |",
        "", f"**Speed-up: {manifest['rows_per_s'] / (args.n / baseline_s):.2f}x**; largest difference between the two "
        f"embedding matrices: {max_diff:.1e} (row i is example i in both)."])
    record("Embedding throughput (issue 4)", body)


if __name__ == "__main__":
    main()
