"""GPU rows of the benchmarks (run by `make gpu-check`): cuML clustering at MNLI size, embedding and training
throughput of ALBERT-base at MNLI lengths, peak GPU memory. Writes bench/RESULTS-gpu.md.

    python bench/bench_gpu.py [--rows 392702] [--embed-pairs 20000] [--train-pairs 8192]

Data are synthetic (nothing is downloaded): embedding-shaped rows for clustering (norms in the tens, 512 loose
groups), the synthetic NLI corpus with MNLI's length profile for the model rows. Speed depends on the shapes
and lengths, not on the values.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch
from models import albert_base_random

from tis_ray.clustering import fit_clusters
from tis_ray.data.prepare import prepare_data
from tis_ray.device import gpu_facts, placement
from tis_ray.embeddings import embed_dataset
from tis_ray.models import load_model, load_tokenizer
from tis_ray.spec import build_spec
from tis_ray.training import fit

RESULTS_GPU = Path(__file__).with_name("RESULTS-gpu.md")
MNLI_TRAIN = 392_702


def embedding_rows(n: int, dim: int = 768, groups: int = 512, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 1.0, size=(groups, dim)).astype(np.float32)
    x = centers[rng.integers(0, groups, n)]
    x += rng.normal(0, 0.6, size=x.shape).astype(np.float32)
    return x


def clustering_rows(n: int) -> list[str]:
    x = embedding_rows(n)
    rows = []
    kmeans = fit_clusters(x, {"algorithm": "kmeans", "n_clusters": 512}, backend="cuml", seed=0)
    rows.append(f"| cuML KMeans, 512 clusters, {n:,} x 768 | {kmeans.seconds:.2f} s | target <= 3 s |")
    dbscan = fit_clusters(x, {"algorithm": "dbscan", "eps": 20.0, "min_samples": 50}, backend="cuml")
    rows.append(f"| cuML DBSCAN (eps 20, min_samples 50, int64 labels), {n:,} x 768 | {dbscan.seconds:.2f} s | "
                f"{dbscan.n_clusters} clusters, {int((dbscan.labels_ < 0).sum()):,} noise |")
    return rows


def model_rows(work: Path, embed_pairs: int, train_pairs: int) -> list[str]:
    model_path = albert_base_random(work / "albert-base-random")
    tokenizer = load_tokenizer(model_path)
    spec = build_spec({"model": {"name": model_path}, "eval_sets": ["mnli_m"],
                       "train": {"epochs": 1, "batch_size": 256, "learning_rate": 2e-5},
                       "data": {"synthetic": {"n_train": max(embed_pairs, train_pairs), "n_eval": 8,
                                              "length_profile": "mnli"}, "hans": None}})
    data = prepare_data(spec, work / "prepared", tokenizer)
    rows = []
    for precision in ("fp32", "bf16"):
        where = placement("bench embed", 1, precision)
        manifest = embed_dataset(load_model(model_path), data.train.select(range(embed_pairs)), tokenizer.pad_token_id,
                                 work / f"emb-{precision}", placement=where, batch_size=256)
        rows.append(f"| tis-ray embed, ALBERT-base, {embed_pairs:,} MNLI-length pairs, {precision} | "
                    f"{manifest['rows_per_s']:,.0f} pairs/s | full MNLI train: "
                    f"{MNLI_TRAIN / manifest['rows_per_s']:.0f} s |")
    torch.cuda.reset_peak_memory_stats()
    where = placement("bench trial", 1, "bf16")
    fit(spec, data.train.select(range(min(2048, train_pairs))), seed=0, tokenizer=tokenizer, placement=where)  # warm-up
    trained = fit(spec, data.train.select(range(train_pairs)), seed=0, tokenizer=tokenizer, placement=where)
    per_s = train_pairs / trained.seconds
    peak = torch.cuda.max_memory_allocated() / 2**30
    rows.append(f"| training ALBERT-base, bf16, batch 256, {train_pairs:,} MNLI-length pairs | {per_s:,.0f} "
                f"examples/s | one epoch of full MNLI: {MNLI_TRAIN / per_s:.0f} s (target <= 60 s on an H100); "
                f"peak GPU memory {peak:.1f} GiB |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=MNLI_TRAIN)
    parser.add_argument("--embed-pairs", type=int, default=20_000)
    parser.add_argument("--train-pairs", type=int, default=8_192)
    args = parser.parse_args()
    facts = gpu_facts()
    if not facts.device_count:
        raise SystemExit("bench_gpu: no usable CUDA GPU here")
    work = Path(tempfile.mkdtemp(prefix="tis_ray_bench_gpu_"))
    start = time.perf_counter()
    rows = clustering_rows(args.rows) + model_rows(work, args.embed_pairs, args.train_pairs)
    text = "\n".join([
        "# GPU benchmark results", "",
        f"Written by `make gpu-check` (`python bench/bench_gpu.py`) on {facts.name} (capability "
        f"{facts.capability[0]}.{facts.capability[1]}), torch {torch.__version__} (CUDA {facts.torch_cuda}), "
        f"{date.today().isoformat()}; {time.perf_counter() - start:.0f} s in all.", "",
        "| what | result | notes |", "|---|---:|---|", *rows, ""])
    RESULTS_GPU.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
