"""Seeds before GPU-hours: how many seeds each comparison of a spec needs to detect a given difference.

For every sampler of the spec's grid against its baseline and every compared metric, the std of the paired
differences comes from a pilot run when one is given (the pooled paired std of that comparison over its
budgets; of every comparison of the pilot when it lacks this one), else from the seed spread of 100 BERT-base
MNLI fine-tunes (tis_ray.statistics.SEED_STD_POINTS, sqrt(2) x for a paired difference of uncorrelated arms).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tis_ray.spec import SweepSpec
from tis_ray.statistics import (
    ALPHA,
    POWER,
    SEED_STD_POINTS,
    SEED_STD_SOURCE,
    minimum_detectable_difference,
    paired_std_from_seed_std,
    seeds_needed,
)

PLAN_COLUMNS = ["comparison", "metric", "difference", "paired_std", "std_from", "seeds_needed", "seeds_in_spec",
                "mde_with_spec_seeds"]


def pooled_paired_std(paired: pd.DataFrame) -> pd.Series:
    """Return the pooled std of paired differences per (setting, metric): the root of the df-weighted mean of
    the cells' variances (cells with at least 2 pairs and a std)."""
    usable = paired[(paired["n"] > 1) & paired["std"].notna()]
    df = usable["n"] - 1
    pooled = (usable["std"] ** 2 * df).groupby([usable["setting"], usable["metric"]]).sum() / df.groupby(
        [usable["setting"], usable["metric"]]).sum()
    return np.sqrt(pooled)


def pilot_paired_table(pilot: str, baseline: str) -> pd.DataFrame:
    """Return the paired comparisons of a pilot run directory or exported table (every compared metric)."""
    from tis_ray.export import read_table
    from tis_ray.report import final_rows, paired_vs_random

    rows = final_rows(read_table(pilot))
    return paired_vs_random(rows[rows["status"] == "completed"], baseline=baseline)


def planned_metrics(spec: SweepSpec) -> list[str]:
    """Return the metrics a sweep of `spec` compares: MNLI both ways, HANS overall and non-entailed per heuristic
    for the MNLI sources' sets; each other set's accuracy and the compare entries that name a metric."""
    from tis_ray.data.schema import HANS_HEURISTICS

    metrics = []
    for entry in spec.eval_sets:
        if entry == "hans":
            metrics += ["hans/acc", *(f"hans/{h}/non_entailed" for h in HANS_HEURISTICS)]
        elif isinstance(entry, str):
            metrics.append(f"{entry}/acc")
        else:
            metrics += [p for p in entry.compare or [f"{entry.name}/acc"] if not set("*?[") & set(p)]
    return metrics


def seed_plan(spec: SweepSpec, mnli_difference: float = 1.0, hans_difference: float = 5.0,
              pilot: pd.DataFrame | None = None, alpha: float = ALPHA, power: float = POWER) -> pd.DataFrame:
    """Return one row per (comparison, metric): the difference to detect (points), the paired std used and where
    it came from, the seeds needed at `power`, the spec's seeds and the difference those seeds can detect.

    `pilot`: a paired table (`pilot_paired_table`) whose observed stds replace the defaults."""
    from tis_ray.report import baseline_setting
    from tis_ray.samplers import sampler_label

    labels = [sampler_label(entry) for entry in spec.grid.samplers]
    baseline = spec.report.baseline
    base = baseline_setting(labels, baseline)
    observed = pooled_paired_std(pilot) if pilot is not None and not pilot.empty else pd.Series(dtype=float)
    n_spec = len(spec.grid.seeds)
    rows = []
    for setting in labels:
        if setting == base:
            continue
        for metric in planned_metrics(spec):
            difference = hans_difference if metric.startswith("hans") else mnli_difference
            std, source = float("nan"), ""
            if (setting, metric) in observed.index:
                std, source = float(observed[(setting, metric)]), "pilot (this comparison)"
            elif not observed.empty and metric in observed.index.get_level_values("metric"):
                std = float(np.sqrt((observed.xs(metric, level="metric") ** 2).mean()))
                source = "pilot (all comparisons)"
            if not std > 0:
                default = SEED_STD_POINTS.get(metric)
                std = paired_std_from_seed_std(default or SEED_STD_POINTS["hans/acc"])
                source = "default" if default else "default (HANS overall's, as no table has this set: --pilot)"
            rows.append({"comparison": f"{setting} vs {base or baseline}", "metric": metric,
                         "difference": difference, "paired_std": std, "std_from": source,
                         "seeds_needed": seeds_needed(difference, std, alpha, power), "seeds_in_spec": n_spec,
                         "mde_with_spec_seeds": minimum_detectable_difference(std, n_spec, alpha, power)})
    return pd.DataFrame(rows, columns=PLAN_COLUMNS)


def render_plan(plan: pd.DataFrame, power: float = POWER, alpha: float = ALPHA) -> str:
    """Return the plan as text: a line of what it assumes, the table, and what the largest need is."""
    if plan.empty:
        return "nothing to plan: the grid has no sampler besides the baseline"
    head = (f"Seeds per arm for a two-sided paired t-test at alpha {alpha:g} with {power:.0%} power (statsmodels "
            f"TTestPower). Default stds: {SEED_STD_SOURCE}.")
    worst = plan.loc[plan["seeds_needed"].idxmax()]
    tail = (f"most demanding: {worst['metric']} ({worst['comparison']}) needs {worst['seeds_needed']} seeds to detect "
            f"{worst['difference']:g} points; the spec has {worst['seeds_in_spec']}")
    return "\n".join([head, "", plan.to_markdown(index=False, floatfmt=".2f"), "", tail])
