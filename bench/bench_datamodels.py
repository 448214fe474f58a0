"""Datamodels on planted truth, and what hundreds of short trials cost.

    python bench/bench_datamodels.py                 # ~15 min on 2 CPU cores (300 trials)
    python bench/bench_datamodels.py --trials 1000   # the 1,000-short-trial overhead run

The synthetic corpus gets `counter_examples` planted pairs that counter the lexical-overlap shortcut (HANS-style
non-entailed pairs made of premise words, labelled neutral); nothing else in it is high-overlap and not entailed.
A sweep trains tiny-albert on random halves of the pool under many seeds; `tis-ray attribute` fits datamodels
for the mean margin on HANS lexical-overlap non-entailed pairs (and its accuracy). Measured:

1. the ROC AUC of the effect vector at telling the planted pairs from the rest (target >= 0.9);
2. the LDS of the planted indicator against a shuffled one, on held-out trials;
3. per trial: wall time of the sweep per trial against the time inside the trial (Tune's time_total_s), the
   driver's peak memory, and what the per-example outcomes add (seconds and bytes, at MNLI's sizes).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from common import machine, record, timed_sweep

from tis_ray.attribution import attribute, random_trials, target_values
from tis_ray.data.synthetic import counter_example_rows
from tis_ray.datamodels import lds, lds_with_interval, split_trials
from tis_ray.export import export_table
from tis_ray.spec import build_spec, run_location

TARGET = "margin:hans/lexical_overlap/non_entailed"
SHUFFLES = 200


def spec_for(storage: Path, trials: int, n_train: int, planted: int, epochs: int):
    return build_spec({
        "name": f"datamodels{trials}", "storage_path": str(storage), "model": {"name": "tiny-albert"},
        "data": {"synthetic": {"n_train": n_train, "n_eval": 100, "hans_per_cell": 30, "counter_examples": planted}},
        "train": {"epochs": epochs, "learning_rate": 3e-4, "warmup_ratio": 0.1, "batch_size": 16,
                  "group_by_length": False},
        "grid": {"seeds": list(range(trials)), "data_pct": [0.5], "samplers": [{"type": "random"}]},
        "resources": {"cpu": 1, "max_concurrent": 2},
    })


def outcome_cost(repeats: int = 5) -> tuple[float, int]:
    """Return (seconds, bytes) of writing one trial's per-example outcomes at MNLI's sizes (MNLI-m 9,815,
    MNLI-mm 9,832, HANS 30,000), from random logits."""
    from tis_ray.data.prepare import PreparedData
    from tis_ray.data.task import hans_set, mnli_set
    from tis_ray.trial import write_outcomes

    rng = np.random.default_rng(0)
    sizes = {"mnli_m": 9815, "mnli_mm": 9832, "hans": 30000}
    evals = {name: {"label": rng.integers(0, 2 if name == "hans" else 3, n)} for name, n in sizes.items()}
    definitions = {name: hans_set() if name == "hans" else mnli_set(name) for name in sizes}
    data = PreparedData(None, evals, {}, "f", None, {}, definitions=definitions)
    logits = {name: rng.normal(size=(n, 3)).astype(np.float32) for name, n in sizes.items()}
    id2label = {0: "entailment", 1: "neutral", 2: "contradiction"}
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(repeats):
            start = time.perf_counter()
            write_outcomes(Path(tmp) / "outcomes", data, logits, id2label)
            times.append(time.perf_counter() - start)
        size = sum(p.stat().st_size for p in (Path(tmp) / "outcomes").iterdir())
    return statistics.median(times), size


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=300)
    parser.add_argument("--n-train", type=int, default=300)
    parser.add_argument("--planted", type=int, default=30)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--skip-attribution", action="store_true", help="the overhead run only")
    parser.add_argument("--reuse", help="a run directory this script swept before: fit and measure only")
    args = parser.parse_args()

    command = (f"`python bench/bench_datamodels.py --trials {args.trials} --n-train {args.n_train} --planted "
               f"{args.planted} --epochs {args.epochs}{' --skip-attribution' if args.skip_attribution else ''}`")
    lines = [f"{command} on {machine()}.", ""]
    if args.reuse:  # the sweep's own numbers stay as the run that swept it measured them
        run_dir = args.reuse
        lines += [line + "\n" for line in previous_lines(f"Datamodels on planted truth ({args.trials} trials)")
                  if line.startswith(("Sweep of", "Per-example"))]
    else:
        run_dir, overhead = sweep(args)
        lines += overhead
    if not args.skip_attribution:
        lines += planted_truth(run_dir, args)
    record(f"Datamodels on planted truth ({args.trials} trials)" if not args.skip_attribution
           else f"Overhead of {args.trials} short trials", "\n".join(lines))


def previous_lines(section: str) -> list[str]:
    """Return the lines of `section` in bench/RESULTS.md (empty when it is not there)."""
    from common import RESULTS

    text = RESULTS.read_text() if RESULTS.is_file() else ""
    start = text.find(f"## {section}\n")
    if start < 0:
        return []
    end = text.find("\n## ", start + 1)
    return text[start: end if end > 0 else len(text)].splitlines()


def sweep(args) -> tuple[str, list[str]]:
    """Run the sweep; return its run directory and the lines on what its trials cost."""
    work = Path(tempfile.mkdtemp(prefix="tis_ray_bench_dm_"))
    spec = spec_for(work / "runs", args.trials, args.n_train, args.planted, args.epochs)
    wall = timed_sweep(spec)
    driver_peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    run_dir = run_location(spec)
    table = export_table(run_dir)
    done = table[table["status"] == "completed"]
    in_trial = [json.loads((Path(run_dir) / t / "result.json").read_text().splitlines()[-1])["time_total_s"]
                for t in done["trial_id"]]
    per_trial_wall = wall * 2 / len(done)  # two trials at a time
    mean_in_trial = statistics.mean(in_trial)
    extra = per_trial_wall - mean_in_trial
    write_s, write_bytes = outcome_cost()
    return run_dir, [
        f"Sweep of {len(done)} completed tiny-albert trials (random halves of a {args.n_train}-pair pool, "
        f"{args.epochs} epochs, 2 at a time x 1 CPU): {wall:.0f} s wall, {per_trial_wall:.2f} s of a CPU slot per "
        f"trial against {mean_in_trial:.2f} s inside it (Tune's time_total_s): **overhead {extra:.2f} s per trial "
        f"(preparation, Ray start-up and scheduling included), {100 * extra / 10:.1f}% of a 10-second trial**; "
        f"driver peak memory {driver_peak_mib:.0f} MiB.", "",
        f"Per-example outcomes at MNLI's sizes (MNLI-m, MNLI-mm, HANS: 49,647 examples): {1000 * write_s:.0f} ms "
        f"and {write_bytes / 1024:.0f} KiB per trial (float16 margin + correctness).", ""]


def planted_truth(run_dir: str, args) -> list[str]:
    """Fit the datamodels with each estimator; return the lines on how well they find the planted pairs."""
    from sklearn.metrics import roc_auc_score

    trials = random_trials(run_dir)
    planted = np.zeros(trials.masks.shape[1])
    planted[counter_example_rows(args.n_train, args.planted, 0)] = 1
    _, held_out = split_trials(len(trials.table))
    rows = []
    for estimator in ("ridge", "lasso"):
        start = time.perf_counter()
        attribute(run_dir, [TARGET, "hans/lexical_overlap/non_entailed"], estimator=estimator)
        fit_seconds = time.perf_counter() - start
        manifest = json.loads((Path(run_dir) / "attribution" / "manifest.json").read_text())
        planted = np.zeros(trials.masks.shape[1])
        planted[counter_example_rows(args.n_train, args.planted, 0)] = 1
        for target, entry in manifest["targets"].items():
            effects = np.load(Path(run_dir) / "attribution" / entry["file"])
            y = target_values(trials, target)
            lds_planted = lds_with_interval(planted, trials.masks[held_out], y[held_out])
            rng = np.random.default_rng(1)  # the null: the same number of examples, chosen at random
            null = [lds(rng.permutation(planted), trials.masks[held_out], y[held_out]) for _ in range(SHUFFLES)]
            rows.append(f"| {target} | {estimator} ({fit_seconds:.0f} s) | {entry['heldout_r2']:.3f} | "
                        f"{roc_auc_score(planted, effects):.3f} | {lds_planted[0]:.3f} ({lds_planted[1]:.2f} to "
                        f"{lds_planted[2]:.2f}) | {np.mean(null):.3f} (95th percentile {np.percentile(null, 95):.2f}) |")
    return [f"Planted truth: {args.planted} counter-examples in the pool of {args.n_train}; datamodels fitted on "
            f"{len(trials.table) - len(held_out)} trials, judged and LDS measured on {len(held_out)} held out:", "",
            "| target | estimator (fit + LDS time) | held-out R² | ROC AUC of the effects (planted vs rest) | LDS of "
            "the planted indicator (95% CI) | LDS of shuffled indicators: mean of 200 |", "|---|---|---:|---:|---:|---:|", *rows]


if __name__ == "__main__":
    main()
