"""GPU rows of the benchmarks (run by `make gpu-check`), written to bench/RESULTS-gpu.md with what ran and what
was skipped, and why.

    python bench/bench_gpu.py [--dry-run] [--rows 392702] [--embed-pairs 20000] [--train-pairs 8192]

Torch rows first, on any CUDA GPU (they need torch, transformers, datasets and pydantic, nothing else):
  - trial throughput: tis_ray's training loop (cached tokenization, dynamic padding, length buckets) in bf16
    (fp16 below capability 8.0) against the original pipeline (pad to 128, tokenize in the trial) in fp16 as
    the original ran, ALBERT-base shape, batch 256, MNLI lengths, each after a warm-up run;
  - `tis-ray embed` pairs/s in fp32 and bf16, each after a warm-up batch;
  - peak GPU memory of a training step per batch size (what `resources.gpu` shares must leave room for).
cuML rows only where cuML imports (skipped with the reason otherwise): KMeans-512 after a warm-up fit, and
DBSCAN at the eps the rows' own k-distance knee gives. Data are synthetic (nothing is downloaded): [CLS]-shaped
rows for clustering, the synthetic NLI corpus with MNLI's length profile for the model rows.

`--dry-run` prints the plan for this machine's facts and runs nothing; TIS_RAY_FAKE_GPU_FACTS (a JSON object of
GpuFacts fields) stands in for the facts, so the plan is tested where no GPU exists.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from tis_ray.device import BF16_MIN_CAPABILITY, GpuFacts, gpu_facts, pin_single_gpu

RESULTS_GPU = Path(__file__).with_name("RESULTS-gpu.md")
MNLI_TRAIN = 392_702
BATCH_SIZES = (32, 64, 128, 256)


@dataclass(frozen=True)
class Step:
    """One group of rows: whether it runs here, and why not when it does not."""

    name: str
    runs: bool
    reason: str = ""


def plan(facts: GpuFacts, cuml_usable: bool, cuml_error: str | None) -> list[Step]:
    """Return the row groups for a machine with `facts`: torch rows on any usable CUDA GPU, cuML rows when
    cuML imports."""
    if not facts.device_count:
        why = facts.init_error or "no CUDA device visible to torch"
        return [Step(name, False, why) for name in ("trial throughput", "embedding", "peak memory per batch size",
                                                    "cuML KMeans", "cuML DBSCAN")]
    ours = "bf16" if facts.capability and tuple(facts.capability) >= BF16_MIN_CAPABILITY else "fp16"
    cuml_reason = "" if cuml_usable else (f"cuML does not import: {cuml_error}" if cuml_error else
                                          "cuML not installed (tis-ray[gpu], or WHEELS=DIR on an offline machine)")
    return [Step(f"trial throughput ({ours} vs the original's fp16, pad to 128)", True),
            Step("embedding (fp32, bf16)" if ours == "bf16" else "embedding (fp32, fp16)", True),
            Step("peak memory per batch size", True),
            Step("cuML KMeans", cuml_usable, cuml_reason),
            Step("cuML DBSCAN (eps at the k-distance knee)", cuml_usable, cuml_reason)]


def facts_here() -> GpuFacts:
    """Return this machine's GPU facts, or those TIS_RAY_FAKE_GPU_FACTS stands in with (for --dry-run tests)."""
    fake = os.environ.get("TIS_RAY_FAKE_GPU_FACTS")
    if fake:
        fields = json.loads(fake)
        if fields.get("capability"):
            fields["capability"] = tuple(fields["capability"])
        return GpuFacts(**fields)
    return gpu_facts()


def embedding_rows(n: int, dim: int = 768, groups: int = 512, seed: int = 0):
    import numpy as np

    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 1.0, size=(groups, dim)).astype(np.float32)
    x = centers[rng.integers(0, groups, n)]
    x += rng.normal(0, 0.6, size=x.shape).astype(np.float32)
    return x


def clustering_rows(n: int, steps: list[Step]) -> list[str]:
    import numpy as np

    from tis_ray.clustering import fit_clusters
    from tis_ray.kdistance import k_distances, knee

    x = embedding_rows(n)
    rows = []
    if steps[3].runs:
        fit_clusters(x[:20_000], {"algorithm": "kmeans", "n_clusters": 512}, backend="cuml", seed=0)  # warm-up
        kmeans = fit_clusters(x, {"algorithm": "kmeans", "n_clusters": 512}, backend="cuml", seed=0)
        rows.append(f"| cuML KMeans, 512 clusters, {n:,} x 768 (after a warm-up fit) | {kmeans.seconds:.2f} s | "
                    "target <= 3 s |")
    if steps[4].runs:
        sample = x[np.random.default_rng(0).choice(n, min(n, 20_000), replace=False)]
        eps = float(knee(k_distances(sample, 50)))
        dbscan = fit_clusters(x, {"algorithm": "dbscan", "eps": eps, "min_samples": 50}, backend="cuml")
        rows.append(f"| cuML DBSCAN (eps {eps:.3g} at the k-distance knee, min_samples 50, int64 labels), "
                    f"{n:,} x 768 | {dbscan.seconds:.2f} s | {dbscan.n_clusters} clusters, "
                    f"{int((dbscan.labels_ < 0).sum()):,} noise |")
    return rows


def model_rows(work: Path, embed_pairs: int, train_pairs: int, ours: str) -> list[str]:
    import torch
    from bench_trial import original_approach, tis_ray_loop
    from models import albert_base_random

    from tis_ray.data import load_data
    from tis_ray.data.prepare import prepare_data
    from tis_ray.device import placement
    from tis_ray.embeddings import embed_dataset
    from tis_ray.models import load_model, load_tokenizer
    from tis_ray.spec import build_spec

    model_path = albert_base_random(work / "albert-base-random")
    tokenizer = load_tokenizer(model_path)
    n = max(embed_pairs, train_pairs)
    spec = build_spec({"model": {"name": model_path}, "eval_sets": ["mnli_m"],
                       "data": {"synthetic": {"n_train": n, "n_eval": 8, "length_profile": "mnli"}, "hans": None}})
    data = prepare_data(spec, work / "prepared", tokenizer)
    rows = []
    steps = max(8, train_pairs // 256)
    tis_ray_loop(work / "prepared", model_path, 4, ours, batch=256)  # warm-up: kernels, allocator
    mine = tis_ray_loop(work / "prepared", model_path, steps, ours, batch=256)
    raw = load_data(spec.data, ["mnli_m"]).train
    original_approach(raw, model_path, 4, "fp16", batch=256)
    theirs = original_approach(raw, model_path, steps, "fp16", batch=256)
    rows.append(f"| trial throughput, ALBERT-base, batch 256, {steps} steps: tis_ray {ours} vs the original's fp16 "
                f"pad-to-128 | **{mine / theirs:.2f}x** ({mine:,.0f} vs {theirs:,.0f} examples/s) | one epoch of "
                f"full MNLI: {MNLI_TRAIN / mine:.0f} s (target <= 60 s on an H100) |")
    for precision in ("fp32", ours):
        where = placement("bench embed", 1, precision)
        warm = data.train.select(range(512))
        embed_dataset(load_model(model_path), warm, tokenizer.pad_token_id, work / f"warm-{precision}",
                      placement=where, batch_size=256)
        manifest = embed_dataset(load_model(model_path), data.train.select(range(embed_pairs)),
                                 tokenizer.pad_token_id, work / f"emb-{precision}", placement=where, batch_size=256)
        rows.append(f"| tis-ray embed, ALBERT-base, {embed_pairs:,} MNLI-length pairs, {precision} | "
                    f"{manifest['rows_per_s']:,.0f} pairs/s | full MNLI train: "
                    f"{MNLI_TRAIN / manifest['rows_per_s']:.0f} s |")
    peaks = []
    for batch in BATCH_SIZES:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        tis_ray_loop(work / "prepared", model_path, 3, ours, batch=batch)
        peaks.append(f"{batch}: {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")
    total = torch.cuda.get_device_properties(0).total_memory / 2**30
    rows.append(f"| peak GPU memory of ALBERT-base training, {ours}, MNLI lengths, by batch size | "
                f"{'; '.join(peaks)} | of {total:.0f} GiB: a trial at resources.gpu g may use g x that |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=MNLI_TRAIN)
    parser.add_argument("--embed-pairs", type=int, default=20_000)
    parser.add_argument("--train-pairs", type=int, default=8_192)
    parser.add_argument("--dry-run", action="store_true", help="print what would run here, and why not, only")
    args = parser.parse_args()
    pin_single_gpu()  # one GPU, as a trial has: never the Trainer's DataParallel over all of them
    from tis_ray.clustering import cuml_status

    facts = facts_here()
    usable, error = cuml_status()
    steps = plan(facts, usable, error)
    lines = [f"- {'runs' if s.runs else 'skipped'}: {s.name}" + (f" ({s.reason})" if s.reason else "")
             for s in steps]
    if args.dry_run or not facts.device_count:
        print("\n".join(["bench_gpu plan:", *lines]))
        return
    import torch

    work = Path(tempfile.mkdtemp(prefix="tis_ray_bench_gpu_"))
    start = time.perf_counter()
    ours = "bf16" if tuple(facts.capability) >= BF16_MIN_CAPABILITY else "fp16"
    rows = model_rows(work, args.embed_pairs, args.train_pairs, ours)  # torch first: cuML may be missing
    rows += clustering_rows(args.rows, steps)
    text = "\n".join([
        "# GPU benchmark results", "",
        f"Written by `make gpu-check` (`python bench/bench_gpu.py`) on {facts.name} (capability "
        f"{facts.capability[0]}.{facts.capability[1]}), torch {torch.__version__} (CUDA {facts.torch_cuda}), "
        f"{date.today().isoformat()}; {time.perf_counter() - start:.0f} s in all.", "", *lines, "",
        "| what | result | notes |", "|---|---:|---|", *rows, ""])
    RESULTS_GPU.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
