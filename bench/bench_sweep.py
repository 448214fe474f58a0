"""Sweep overhead and shared preparation, measured side by side in one run.

    python bench/bench_sweep.py          # ~24 min on 2 CPU cores

1. N tiny-albert trials of ~30 s back to back in one process (no Ray) against the same N trials as a Ray
   Tune sweep with one trial at a time (2 CPUs each): Tune's overhead, Ray start-up included, split into what a
   sweep pays once and what each trial pays; the pair is repeated (the machine is noisy).
2. The same trials at 1 CPU each (torch threads = CPUs held), one after another and 2 at a time: speed-up.
3. Shared preparation: a sweep with a cluster sampler prepares (tokenizes, fine-tunes the embedding model,
   embeds, clusters) once; preparing inside each of K trials would repeat it K times.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from common import machine, record, timed_sweep

from tis_ray.data.prepare import prepare_data
from tis_ray.data.tokenize import cache_entries
from tis_ray.models import load_tokenizer
from tis_ray.preparation import prepare_shared
from tis_ray.spec import GridPoint, build_spec, run_location
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


def back_to_back(spec, work: Path) -> tuple[float, float]:
    """Return (wall seconds, seconds inside the trials) of the spec's trials run one after another here."""
    start = time.perf_counter()
    prepare_data(spec, work / "prepared", load_tokenizer(spec.model.name))
    in_trials = 0.0
    for seed in spec.grid.seeds:
        trial_start = time.perf_counter()
        run_trial({"spec": spec.model_dump(mode="json"), "point": GridPoint(seed=seed, data_pct=1.0).model_dump(),
                   "prepared": {"data": str(work / "prepared")}, "gpus": 0, "num_threads": 2}, work / f"trial{seed}")
        in_trials += time.perf_counter() - trial_start
    return time.perf_counter() - start, in_trials


def under_tune(spec) -> tuple[float, float, float]:
    """Return (wall seconds incl. Ray start-up and shutdown, seconds inside the trials as Tune timed them, the
    worker's one-off imports inside its first trial: its first epoch minus the other trials' median first epoch)."""
    wall = timed_sweep(spec)
    trials = [[json.loads(line) for line in path.read_text().splitlines()]
              for path in Path(run_location(spec)).glob("*/result.json")]
    first_epochs = sorted(results[0]["time_this_iter_s"] for results in trials)
    imports = first_epochs[-1] - statistics.median(first_epochs[:-1]) if len(trials) > 1 else 0.0
    return wall, sum(results[-1]["time_total_s"] for results in trials), imports


def overhead(args, work: Path, repeat: int) -> dict[str, float]:
    """Return one back-to-back vs Tune pair of the same trials: wall times and where Tune's extra time went."""
    spec = spec_for(work / "runs", f"overhead{repeat}", args.trials, 2, args.n_train, args.epochs)
    plain, plain_in_trials = back_to_back(spec, work / f"plain{repeat}")
    tune, tune_in_trials, imports = under_tune(spec)
    # Tune's cost splits into what a sweep pays once (Ray start-up, the worker's start and imports, shutdown;
    # workers are reused across trials) and any slow-down of the trials themselves (paid per trial).
    return {"plain": plain, "tune": tune, "overhead_pct": 100 * (tune / plain - 1),
            "once": (tune - tune_in_trials) - (plain - plain_in_trials) + imports,
            "per_trial": plain_in_trials / args.trials,
            "per_trial_extra": (tune_in_trials - imports - plain_in_trials) / args.trials}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--n-train", type=int, default=6000)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3, help="back-to-back vs Tune pairs (the machine is noisy)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tis_ray_bench_"))
    pairs = [overhead(args, work, repeat) for repeat in range(args.repeats)]
    one_cpu = spec_for(work / "runs", "one_cpu", args.trials, 1, args.n_train, args.epochs)
    concurrent = spec_for(work / "runs", "conc", args.trials, 1, args.n_train, args.epochs, concurrent=2)
    tune_one_cpu, _, _ = under_tune(one_cpu)
    tune_conc, _, _ = under_tune(concurrent)
    plain = statistics.median(pair["plain"] for pair in pairs)
    overheads = sorted(pair["overhead_pct"] for pair in pairs)
    once = statistics.median(pair["once"] for pair in pairs)
    per_trial = statistics.median(pair["per_trial"] for pair in pairs)

    samplers = [{"type": "random"}, {"type": "kmeans", "n_clusters": 8}, {"type": "kmeans", "mode": "round_robin",
                                                                         "n_clusters": 8}]
    shared = spec_for(work / "runs", "shared", 2, 1, 4000, 1, samplers)
    start = time.perf_counter()
    prepare_shared(shared, run_location(shared), gpus=0)
    prep_seconds = time.perf_counter() - start
    root = Path(run_location(shared)) / "prepared"
    k = shared.n_trials()
    n_tokenized = len(cache_entries(root / "data" / "tokenized"))
    n_clusterings = len(list((root / "clusters").iterdir()))
    body = "\n".join([
        f"`python bench/bench_sweep.py --trials {args.trials} --n-train {args.n_train} --epochs {args.epochs} "
        f"--repeats {args.repeats}` on {machine()}.", "",
        f"Tune overhead: {args.trials} tiny-albert trials of ~{per_trial:.0f} s each ({args.n_train} pairs, "
        f"{args.epochs} epochs, 2 torch threads), back to back in one process without Ray, then the same trials as a "
        "Ray Tune sweep one at a time x 2 CPUs (Ray start-up and shutdown included); the pair repeated:", "",
        "| repeat | back to back s | Ray Tune s | overhead | once per sweep s | per trial s |",
        "|---:|---:|---:|---:|---:|---:|",
        *[f"| {i + 1} | {pair['plain']:.1f} | {pair['tune']:.1f} | {pair['overhead_pct']:+.1f}% | {pair['once']:.1f} | "
          f"{pair['per_trial_extra']:+.1f} |" for i, pair in enumerate(pairs)], "",
        f"**Tune overhead: {statistics.median(overheads):+.1f}% (median of {len(pairs)} repeats; "
        f"{overheads[0]:+.1f}% to {overheads[-1]:+.1f}%).** What Tune adds for sure is paid once per sweep (median "
        f"{once:.1f} s: Ray start-up, the trial worker's start and its imports of torch and transformers, shutdown; "
        f"workers are reused across trials), {100 * once / (50 * per_trial):.1f}% of a 50-trial sweep of such "
        "trials. The last column is the rest spread over the trials: the same trials' durations under Tune minus "
        "back to back, which moves with this 2-core machine's own noise (the back-to-back runs alone differ by "
        f"{100 * (max(p['plain'] for p in pairs) / min(p['plain'] for p in pairs) - 1):.0f}%).", "",
        f"Concurrency: the same {args.trials} trials at 1 CPU each (torch threads = CPUs held):", "",
        "| run | wall seconds |", "|---|---:|",
        f"| Ray Tune, 1 trial at a time x 1 CPU | {tune_one_cpu:.1f} |",
        f"| Ray Tune, 2 concurrent trials x 1 CPU | {tune_conc:.1f} |", "",
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
