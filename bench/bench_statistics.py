"""Do the report's verdicts, the plan's promises and the learning curves' intervals hold? Monte-Carlo over
simulated report tables with a planted truth, scored by the functions the report itself calls.

    python bench/bench_statistics.py            # ~4 min on 1 core; rewrites its section of bench/RESULTS.md
    python bench/bench_statistics.py --quick    # a smoke run (seconds), prints only

Scenarios, on the demo spec's family (2 samplers vs random x 2 budgets below 100% x 6 metrics = 24
comparisons, Holm over the table, the plan's default stds):
1. no difference anywhere: the family-wise rate of any 'better'/'worse' verdict must be <= 0.05;
2. a true MNLI difference of 1 point (HANS lexical overlap: 5) at the seeds `tis-ray plan` asks for: the rate
   of 'better' per true cell must reach the power the plan promised (its Bonferroni bound);
3. a true MNLI difference of 0.5 inside the ±1 margin at the plan's MNLI seeds: 'equivalent' (alone or with
   'better') at least as often as TOST's bound promises at alpha / m;
4. learning curves: how often the 95% interval of "random needs X% of the data" holds the planted share.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tis_ray.curves import learning_curves, saturating_power_law  # noqa: E402
from tis_ray.planning import seed_plan  # noqa: E402
from tis_ray.report import paired_vs_random  # noqa: E402
from tis_ray.spec import load_spec  # noqa: E402
from tis_ray.statistics import equivalence_power_bound, paired_t_power  # noqa: E402

SPEC = Path(__file__).resolve().parents[1] / "experiments" / "demo.yaml"
SAMPLERS = ("kmeans", "cartography")
BUDGETS = (0.1, 0.3)  # the demo's budgets below 100%
CURVE = (0.8, 0.1, 0.5)  # acc(x) = 0.8 - 0.1 / sqrt(x): 0.6 at a quarter of the data


def plan_rows() -> pd.DataFrame:
    """Return the demo spec's plan (defaults, 24 comparisons): the stds and promises the scenarios test."""
    return seed_plan(load_spec(SPEC))


def simulated_table(rng, plan: pd.DataFrame, seeds: int, truth: dict[str, float]) -> pd.DataFrame:
    """Return a results table of random and SAMPLERS at BUDGETS over `seeds` seeds: each metric per arm is a
    per-seed draw with half the plan's paired variance (so the paired std is the plan's); sampler minus random
    is `truth[metric]` points (0 where absent)."""
    stds = plan.groupby("metric")["paired_std"].first()
    rows = []
    for budget in BUDGETS:
        for seed in range(seeds):
            for setting in ("random", *SAMPLERS):
                row = {"setting": setting, "sampler": setting, "overrides": "{}", "seed": seed,
                       "data_pct": budget, "n_examples": None, "budget": round(100 * budget, 4)}
                for metric, std in stds.items():
                    shift = truth.get(metric, 0.0) if setting != "random" else 0.0
                    row[metric] = (50.0 + shift + rng.normal(0.0, std / math.sqrt(2))) / 100
                rows.append(row)
    return pd.DataFrame(rows)


def verdicts(rng, plan: pd.DataFrame, seeds: int, truth: dict[str, float], reps: int) -> pd.DataFrame:
    """Return the report's paired table (tis_ray.report.paired_vs_random) of `reps` simulated sweeps, with `rep`."""
    metrics = list(dict.fromkeys(plan["metric"]))
    tables = []
    for rep in range(reps):
        table = paired_vs_random(simulated_table(rng, plan, seeds, truth), metrics=metrics, mnli_margin=1.0,
                                 hans_margin=5.0, holm_family="table")
        tables.append(table.assign(rep=rep))
    return pd.concat(tables, ignore_index=True)


def rate(hits: int, total: int) -> str:
    """Return 'p (± 2 SE, k/n)'."""
    p = hits / total
    return f"{p:.3f} (± {2 * math.sqrt(max(p * (1 - p), 1 / total) / total):.3f}, {hits}/{total})"


def null_scenario(rng, plan, reps: int, seeds: int) -> dict:
    """Return the family-wise rate of any better/worse verdict when no sampler differs from random."""
    table = verdicts(rng, plan, seeds, {}, reps)
    directional = table["verdict"].str.startswith(("better", "worse"))
    hits = int(directional.groupby(table["rep"]).any().sum())
    return {"scenario": f"no difference, {seeds} seeds, 24 comparisons",
            "claim": "family-wise P(any better/worse) <= 0.05", "measured": rate(hits, reps),
            "holds": hits / reps <= 0.05 + 2 * math.sqrt(0.05 * 0.95 / reps)}


def power_scenario(rng, plan, reps: int, metric: str) -> dict:
    """Return the rate of 'better' per truly better cell of `metric` at the seeds the plan asks for, beside the
    power the plan promised (the Bonferroni bound at those seeds)."""
    row = plan[plan["metric"] == metric].iloc[0]
    seeds = int(row["seeds_needed"])
    promised = paired_t_power(row["difference"] / row["paired_std"], seeds, row["alpha_per_test"])
    table = verdicts(rng, plan, seeds, {metric: float(row["difference"])}, reps)
    cells = table[table["metric"] == metric]
    hits = int(cells["verdict"].str.startswith("better").sum())
    return {"scenario": f"{metric} +{row['difference']:g} points, the plan's {seeds} seeds",
            "claim": f"P(better) >= the plan's {promised:.3f}", "measured": rate(hits, len(cells)),
            "holds": hits / len(cells) >= promised - 2 * math.sqrt(promised * (1 - promised) / len(cells))}


def equivalence_scenario(rng, plan, reps: int, seeds: int, difference: float) -> dict:
    """Return the rate of an 'equivalent' verdict on MNLI-m for a true difference inside the ±1 margin, beside
    TOST's promise at alpha / m (a lower bound)."""
    row = plan[plan["metric"] == "mnli_m/acc"].iloc[0]
    promised = equivalence_power_bound(difference, row["paired_std"], seeds, 1.0, row["alpha_per_test"])
    table = verdicts(rng, plan, seeds, {"mnli_m/acc": difference}, reps)
    cells = table[table["metric"] == "mnli_m/acc"]
    hits = int(cells["verdict"].str.contains("equivalent").sum())
    both = int(cells["verdict"].str.contains("better,").sum())
    return {"scenario": f"mnli_m/acc +{difference:g} points (margin ±1), {seeds} seeds",
            "claim": f"P(equivalent) >= TOST's bound {promised:.3f}",
            "measured": rate(hits, len(cells)) + f"; of which 'better, within ±1': {both}",
            "holds": hits / len(cells) >= promised - 2 * math.sqrt(max(promised * (1 - promised), 1e-4) / len(cells))}


def curve_trials(rng, budgets, seeds: int, noise: float) -> pd.DataFrame:
    """Return trials of random on CURVE at `budgets` and of a sampler at 10% that random matches at 25%."""
    rows = []
    for seed in range(seeds):
        for share in budgets:
            rows.append({"setting": "random", "seed": seed, "n_train": int(share * 10_000),
                         "acc": saturating_power_law(share, *CURVE) + rng.normal(0, noise)})
        rows.append({"setting": "smart", "seed": seed, "n_train": 1000,
                     "acc": saturating_power_law(0.25, *CURVE) + rng.normal(0, noise)})
    return pd.DataFrame(rows)


def curve_scenario(rng, reps: int, budgets, seeds: int, noise: float = 0.01) -> dict:
    """Return how often learning_curves' 95% interval holds the planted 25%, and its median width."""
    hits, widths, missing = 0, [], 0
    for rep in range(reps):
        row = learning_curves(curve_trials(rng, budgets, seeds, noise), "acc", 10_000, "random", seed=rep)[1].iloc[0]
        if not np.isfinite(row["ci_low"]):
            missing += 1
            continue
        hits += bool(row["ci_low"] <= 0.25 <= row["ci_high"])
        widths.append(row["ci_high"] - row["ci_low"])
    done = reps - missing
    return {"scenario": f"learning curve, budgets {', '.join(f'{100 * b:g}%' for b in budgets)}, {seeds} seeds, "
                        f"noise {100 * noise:g} points",
            "claim": "95% interval of 'random needs 25%' holds 25% in >= 93%",
            "measured": rate(hits, done) + f"; median width {100 * np.median(widths):.1f} points"
                        + (f"; {missing} without an interval" if missing else ""),
            "holds": hits / max(done, 1) >= 0.93}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=200,
                        help="simulated sweeps per verdict scenario (x5 for the null, /4 for HANS's 193 seeds)")
    parser.add_argument("--curve-reps", type=int, default=60, help="simulated sweeps per learning-curve scenario")
    parser.add_argument("--quick", action="store_true", help="a few reps, print only")
    args = parser.parse_args()
    reps, curve_reps = (20, 5) if args.quick else (args.reps, args.curve_reps)
    rng = np.random.default_rng(2026)
    plan = plan_rows()
    start = time.perf_counter()
    rows = [null_scenario(rng, plan, 5 * reps, seeds=4),
            power_scenario(rng, plan, reps, "mnli_m/acc"),
            power_scenario(rng, plan, max(reps // 4, 5), "hans/lexical_overlap/non_entailed"),
            equivalence_scenario(rng, plan, reps, seeds=int(plan.loc[plan["metric"] == "mnli_m/acc", "seeds_needed"]
                                                            .iloc[0]), difference=0.5),
            curve_scenario(rng, curve_reps, (0.05, 0.1, 0.2, 0.5, 1.0), seeds=3),
            curve_scenario(rng, curve_reps, (0.1, 0.3, 1.0), seeds=3),
            curve_scenario(rng, curve_reps, (0.1, 0.3, 1.0), seeds=2)]
    seconds = time.perf_counter() - start
    table = pd.DataFrame(rows).to_markdown(index=False)
    command = "python bench/bench_statistics.py" + " ".join(["", *sys.argv[1:]])
    from common import machine, record

    body = (f"`{command}` on {machine()}; {seconds:.0f} s.\n\n"
            "Simulated report tables with a planted truth, scored by tis_ray.report.paired_vs_random (Holm over "
            "the table's 24 comparisons, the demo spec's family) and tis_ray.curves.learning_curves; promises from "
            "tis_ray.planning.seed_plan (each test at alpha / 24) and tis_ray.statistics. ± is two standard errors "
            "of the simulation.\n\n" + table)
    if args.quick:
        print(body)
    else:
        record("Statistics: verdicts, plan and intervals against a planted truth (issue 28)", body)


if __name__ == "__main__":
    main()
