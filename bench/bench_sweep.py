"""Sweep overhead and shared preparation, measured side by side in one run.

    python bench/bench_sweep.py          # ~12 min on 2 CPU cores

1. N tiny-albert trials of ~30 s back to back in one process (no Ray) against the same N trials as a Ray
   Tune sweep with one trial at a time (2 CPUs each): Tune's overhead, Ray start-up included.
2. The same trials at 1 CPU each (torch threads = CPUs held), one after another and 2 at a time: speed-up.
3. Shared preparation: a sweep with a cluster sampler prepares (tokenizes, fine-tunes the embedding model,
   embeds, clusters) once; preparing inside each of K trials would repeat it K times.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from common import machine, record

from tis_ray.data.prepare import prepare_data
from tis_ray.data.tokenize import cache_entries
from tis_ray.models import load_tokenizer
from tis_ray.spec import build_spec
from tis_ray.sweep import prepare_shared, run_dir_of, run_sweep
from tis_ray.trial import run_trial


def spec_for(storage: Path, name: str, n_trials: int, cpu: int, n_train: int, epochs: int, samplers=None,
             concurrent: int = 1):
    return build_spec({
        "name": name, "storage_path": str(storage),
        "data": {"synthetic": {"n_train": n_train, "n_eval": 300, "hans_per_cell": 50}},
        "train": {"epochs": epochs, "learning_rate": 3e-4, "warmup_ratio": 0.1},
        "clustering": {"embedding_epochs": 1},
        "grid": {"seeds": list(range(n_trials)), "data_pct": [1.0], "samplers": samplers or [{"type": "random"}]},
        "resources": {"cpu": cpu, "max_concurrent": concurrent},
    })


def back_to_back(spec, work: Path) -> float:
    start = time.perf_counter()
    prepare_data(spec, work / "prepared", load_tokenizer(spec.model.name))
    for seed in spec.grid.seeds:
        run_trial({"spec": spec.model_dump(mode="json"), "seed": seed, "budget": {"data_pct": 1.0},
                   "sampler": {"type": "random"}, "prepared": {"data": str(work / "prepared")}, "num_threads": 2},
                  work / f"trial{seed}")
    return time.perf_counter() - start


def under_tune(spec) -> float:
    import ray

    start = time.perf_counter()
    try:
        run_sweep(spec, num_cpus=2)
    finally:
        ray.shutdown()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--n-train", type=int, default=6000)
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tis_ray_bench_"))
    sequential = spec_for(work / "runs", "seq", args.trials, 2, args.n_train, args.epochs)
    one_cpu = spec_for(work / "runs", "seq1", args.trials, 1, args.n_train, args.epochs)
    concurrent = spec_for(work / "runs", "conc", args.trials, 1, args.n_train, args.epochs, concurrent=2)
    plain = back_to_back(sequential, work / "plain")
    tune_seq = under_tune(sequential)
    tune_one_cpu = under_tune(one_cpu)
    tune_conc = under_tune(concurrent)
    per_trial = plain / args.trials

    samplers = [{"type": "random"}, {"type": "kmeans", "n_clusters": 8}, {"type": "kmeans", "mode": "round_robin",
                                                                         "n_clusters": 8}]
    shared = spec_for(work / "runs", "shared", 2, 1, 4000, 1, samplers)
    start = time.perf_counter()
    prepare_shared(shared, run_dir_of(shared))
    prep_seconds = time.perf_counter() - start
    root = run_dir_of(shared) / "prepared"
    k = shared.n_trials()
    n_tokenized = len(cache_entries(root / "data" / "tokenized"))
    n_clusterings = len(list((root / "clusters").iterdir()))
    body = "\n".join([
        f"`python bench/bench_sweep.py --trials {args.trials} --n-train {args.n_train} --epochs {args.epochs}` "
        f"on {machine()}.", "",
        f"{args.trials} tiny-albert trials of ~{per_trial:.0f} s each ({args.n_train} pairs, {args.epochs} epochs):", "",
        "| run | wall seconds | vs back to back |", "|---|---:|---:|",
        f"| back to back in one process, no Ray (2 torch threads) | {plain:.1f} | 1.00x |",
        f"| Ray Tune, 1 trial at a time x 2 CPUs (Ray start-up included) | {tune_seq:.1f} | "
        f"{tune_seq / plain:.2f}x (overhead {100 * (tune_seq / plain - 1):+.1f}%) |",
        f"| Ray Tune, 1 trial at a time x 1 CPU (1 torch thread) | {tune_one_cpu:.1f} | {tune_one_cpu / plain:.2f}x |",
        f"| Ray Tune, 2 concurrent trials x 1 CPU (1 torch thread each) | {tune_conc:.1f} | {tune_conc / plain:.2f}x |", "",
        f"**Tune overhead: {100 * (tune_seq / plain - 1):+.1f}%** (same trials, same threads). "
        f"**2 concurrent 1-CPU trials: {tune_one_cpu / tune_conc:.2f}x faster than the same trials one after "
        f"another** ({plain / tune_conc:.2f}x against back to back with 2 threads each).", "",
        f"Shared preparation for a {k}-trial sweep with two kmeans samplers: tokenized {n_tokenized} datasets once "
        f"(train, matched, mismatched, HANS) and fitted {n_clusterings} clustering for both samplers, "
        f"in {prep_seconds:.1f} s (embedding model fine-tuned once, embeddings computed once). Preparing inside "
        f"every trial would cost {k} x {prep_seconds:.1f} = {k * prep_seconds:.0f} s: "
        f"{(k - 1) * prep_seconds:.0f} s saved."])
    record("Sweep overhead and shared preparation (issue 6.2, 6.3)", body)


if __name__ == "__main__":
    main()
