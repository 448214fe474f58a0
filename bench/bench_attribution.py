"""The LDS and the datamodel's trial needs against planted truths, by simulation (no training).

    python bench/bench_attribution.py            # ~10 min on 2 CPU cores (18 min while shared)
    python bench/bench_attribution.py --quick    # fewer repetitions, smaller grid (~3 min)

Outcomes come from bench/bench_datamodels.py's planted truth without training: a pool with a share of planted
examples of one effect, random subsets, the outcome their summed effects plus seed noise, plus (for mixed budgets)
a concave effect of the subset's size, as accuracy grows with data. Measured:

1. a uniform random score's LDS on trials of two budgets (30% and 70%), pooled over budgets as before and
   within budgets as `tis-ray attribute` computes it now: centred on 0, and how often its 95% interval holds 0;
2. a leaked score (a datamodel refitted on every trial) against an honest one (fitted on the fit trials), on the
   held-out trials, and the refusal `tis-ray attribute` gives the leaked one;
3. the datamodel at experiments/datamodels.yaml's scale (500 trials, 10,000-example pool): ROC AUC of the planted
   examples and held-out R²;
4. the closed form `tis-ray plan` uses for trials per target against the ridge datamodel's simulated AUC.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from common import machine, record

from tis_ray.datamodel_power import planted_trials, simulate, trials_for_auc
from tis_ray.datamodels import fit_datamodel, lds, lds_with_interval, split_trials


def mixed_budget_trials(per_budget: int, pool: int, planted: int, seed: int):
    """Return (masks, outcomes, budgets): `per_budget` random subsets at 30% and at 70% of the pool; outcome =
    0.4 sqrt(fraction) + 0.02 x planted examples included + noise (std 0.02)."""
    rng = np.random.default_rng(seed)
    truth = np.zeros(pool)
    truth[rng.choice(pool, planted, replace=False)] = 0.02
    masks, budgets = [], []
    for pct in (30.0, 70.0):
        for _ in range(per_budget):
            mask = np.zeros(pool, dtype=bool)
            mask[rng.choice(pool, int(round(pct / 100 * pool)), replace=False)] = True
            masks.append(mask)
            budgets.append(pct)
    masks, budgets = np.array(masks), np.array(budgets)
    outcomes = 0.4 * np.sqrt(masks.mean(axis=1)) + masks @ truth + rng.normal(0, 0.02, len(masks))
    return masks, outcomes, budgets


def random_score_on_mixed_budgets(reps: int, per_budget: int) -> list[str]:
    """Return the lines on a uniform random score's LDS over mixed budgets, before and after stratifying."""
    pooled, within, covered = [], [], 0
    for rep in range(reps):
        masks, outcomes, budgets = mixed_budget_trials(per_budget, 300, 30, rep)
        _, held = split_trials(len(outcomes), budgets=budgets)
        score = np.random.default_rng(10_000 + rep).random(masks.shape[1])
        pooled.append(lds(score, masks[held], outcomes[held]))
        value, low, high = lds_with_interval(score, masks[held], outcomes[held], budgets[held], boot=200)
        within.append(value)
        covered += low <= 0 <= high
    se = np.std(within) / np.sqrt(reps)
    return [f"Uniform random scores on {2 * per_budget} trials of a 300-example pool, {per_budget} at 30% and "
            f"{per_budget} at 70% ({reps} simulated runs; LDS on the held-out fifth of each budget): pooled over "
            f"budgets (before) **{np.mean(pooled):.3f}** (sd {np.std(pooled):.2f}); within budgets, stratified "
            f"(`tis-ray attribute` now) **{np.mean(within):+.3f} ± {1.96 * se:.3f}** (sd {np.std(within):.2f}); its "
            f"95% bootstrap interval holds 0 in {covered / reps:.0%} of runs.", ""]


def leaked_against_honest(reps: int) -> list[str]:
    """Return the lines on a datamodel refitted on every trial scored on held-out trials it saw."""
    from tis_ray.attribution import ImportedScore, unseen_rows
    from tis_ray.errors import TisRayError

    leaked, honest = [], []
    for rep in range(reps):
        masks, outcomes, truth = planted_trials(300, 300, 0.5, 30, 0.3, seed=rep)
        model = fit_datamodel(masks, outcomes)
        held = model.heldout_rows
        leaked.append(lds(model.effects, masks[held], outcomes[held]))
        honest.append(lds(model.fit_effects, masks[held], outcomes[held]))
    ids = [f"trial_{i}" for i in range(300)]
    try:
        unseen_rows("leaked", ImportedScore(model.effects, frozenset(ids)), ids, held)
        refusal = "not refused"
    except TisRayError as exc:
        refusal = str(exc)
    return [f"Leaked against honest ({reps} simulated runs of 300 trials, 300-example pool, 30 planted at "
            f"effect / noise 0.3): on the held-out trials the datamodel refitted on every trial gets LDS "
            f"**{np.mean(leaked):.3f}**, the one fitted on the fit trials only **{np.mean(honest):.3f}**. Imported, "
            f"the leaked one is refused: `tis-ray: error: {refusal}`.", ""]


def datamodels_yaml_scale(ratios: list[float]) -> list[str]:
    """Return the table of the datamodel at 500 trials of a 10,000-example pool (100 planted)."""
    rows = []
    for ratio in ratios:
        start = time.perf_counter()
        got = simulate(500, 10_000, 0.5, 100, ratio)
        rows.append(f"| {ratio:g} | {got['auc']:.3f} | {got['closed_form_auc']:.3f} | {got['heldout_r2']:+.3f} | "
                    f"{time.perf_counter() - start:.0f} s |")
    return ["experiments/datamodels.yaml's scale: 500 trials (400 fitted, 100 held out) on random halves of a "
            "10,000-example pool, 100 planted examples (1%), ridge:", "",
            "| effect / noise | ROC AUC (ridge) | ROC AUC (closed form) | held-out R² | time |",
            "|---:|---:|---:|---:|---:|", *rows, ""]


def closed_form_against_simulation(grid: list[tuple[int, int, int, float]]) -> list[str]:
    """Return the table comparing the plan's closed-form AUC with the ridge datamodel's simulated AUC."""
    rows = []
    for trials, pool, planted, ratio in grid:
        got = simulate(trials, pool, 0.5, planted, ratio)
        rows.append(f"| {trials} | {pool} | {planted} | {ratio:g} | {got['auc']:.3f} | {got['closed_form_auc']:.3f} "
                    f"| {trials_for_auc(ratio, 0.5, planted)} | {got['heldout_r2']:+.3f} |")
    return ["The plan's closed form (the mean-difference estimator; `tis-ray plan` on a datamodels spec) against "
            "the ridge datamodel `tis-ray attribute` fits, random halves:", "",
            "| trials | pool | planted | effect / noise | AUC (ridge, simulated) | AUC (closed form) | trials for "
            "AUC 0.9 (closed form) | held-out R² |", "|---:|---:|---:|---:|---:|---:|---:|---:|", *rows, ""]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    reps = 40 if args.quick else 200
    grid = [(300, 300, 30, 0.3), (600, 300, 30, 0.3), (200, 1000, 10, 0.3), (500, 2000, 20, 0.2),
            (1000, 2000, 20, 0.2)]
    lines = [f"`python bench/bench_attribution.py{' --quick' if args.quick else ''}` on {machine()}.", ""]
    lines += random_score_on_mixed_budgets(reps, 20)
    lines += random_score_on_mixed_budgets(reps // 4, 100)
    lines += leaked_against_honest(5 if args.quick else 20)
    lines += closed_form_against_simulation(grid[:2] if args.quick else grid)
    lines += datamodels_yaml_scale([0.2] if args.quick else [0.2, 0.5])
    record("LDS and datamodel trials on planted truth (simulation)", "\n".join(lines))


if __name__ == "__main__":
    main()
